"""The projected discriminator: frozen shipped AlexNet features, trainable heads, conditional on the
input, loaded into a new run, never updated by the optimiser, resumed from the checkpoint."""
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from pix2pix.config import DataConfig, ModelConfig, TrainConfig
from pix2pix.models import build_discriminator, check_discriminator_size
from pix2pix.models.projected import backbone_side
from pix2pix.models.registry import apply_spectral_norm
from pix2pix.training import train
from pix2pix.training.perceptual import load_pretrained_encoder, load_shipped_backbone

SMALL = ModelConfig(generator="unet_128", discriminator="projected", base_channels=4, d_base_channels=4)


def _shipped() -> dict[str, torch.Tensor]:
    convs = load_shipped_backbone("alex").convs
    return {f"backbone.{k}": v for k, v in convs.state_dict().items()}


def test_heads_see_the_input_beside_the_output_and_only_the_output_without_conditioning():
    d = build_discriminator(SMALL).eval()
    load_pretrained_encoder(d, "alex")
    a, b = torch.rand(1, 3, 64, 64) * 2 - 1, torch.rand(1, 3, 64, 64) * 2 - 1
    other_a = torch.rand(1, 3, 64, 64) * 2 - 1
    same, changed = d(torch.cat([a, b], 1)), d(torch.cat([other_a, b], 1))
    assert [o.shape[-1] for o in same] == [15, 7, 3]  # AlexNet's taps at 64 px: H/4, H/8, H/16
    assert all(not torch.allclose(x, y) for x, y in zip(same, changed))  # the condition matters
    plain = build_discriminator(ModelConfig(discriminator="projected", conditional=False, d_base_channels=4))
    assert len(plain(b)) == 3  # unconditional: the output's 3 channels alone
    with pytest.raises(ValueError, match="expects 3 input \\+ 3 output channels, got 3"):
        d(b)


def test_one_input_judged_three_times_runs_the_backbone_on_it_once_with_the_same_logits():
    d = build_discriminator(SMALL).eval()
    load_pretrained_encoder(d, "alex")
    calls = []
    d.backbone[0].register_forward_hook(lambda *_: calls.append(1))
    a, a2 = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    outputs = [torch.rand(2, 3, 64, 64) * 2 - 1 for _ in range(3)]
    cached = [d(torch.cat([a, b], 1)) for b in outputs]  # as a training step: real, fake, G's fake
    assert len(calls) == 3 + 1  # each output once, the shared input once
    fresh = []
    for b in outputs:
        d._cond_cache = None
        fresh.append(d(torch.cat([a, b], 1)))
    assert all(torch.equal(x, y) for c, f in zip(cached, fresh) for x, y in zip(c, f))
    calls.clear()
    d(torch.cat([a2, outputs[0]], 1))  # a new input (the next batch): its own features
    a2[0, 0, 0, 0] += 0.5  # changed in place: compared by value, so not stale either
    changed = d(torch.cat([a2, outputs[0]], 1))
    assert len(calls) == 4
    d._cond_cache = None
    assert all(torch.equal(x, y) for x, y in zip(changed, d(torch.cat([a2, outputs[0]], 1))))


def test_the_coarsest_map_and_the_size_check_agree():
    for size in (32, 64, 128, 256):
        d = build_discriminator(ModelConfig(discriminator="projected", d_base_channels=2, norm="none"))
        outs = d(torch.zeros(1, 6, size, size))
        assert outs[-1].shape[-1] == backbone_side(size) >= 1
        check_discriminator_size(ModelConfig(discriminator="projected"), size)
    with pytest.raises(ValueError, match="data.image_size=16 is too small for the projected discriminator"):
        check_discriminator_size(ModelConfig(discriminator="projected"), 16)


def test_spectral_norm_leaves_the_frozen_backbone_alone():
    d = apply_spectral_norm(build_discriminator(SMALL))
    assert not any("parametrizations" in k for k in d.backbone.state_dict())
    assert any("parametrizations" in k for k in d.heads.state_dict())


def test_a_run_starts_from_the_shipped_backbone_never_updates_it_and_resumes_with_it(tiny_dataset, tmp_path):
    cfg = TrainConfig(model=SMALL, data=DataConfig(root=str(tiny_dataset), image_size=128),
                      out=str(tmp_path / "run"), batch_size=2, epochs=2, decay_epochs=2, max_steps=3,
                      seed=0, device="cpu", log_every=1, sample_every=100, checkpoint_every=100,
                      tensorboard="off", precision="fp32")
    run = train(cfg, progress=False)
    ckpt = sorted((run / "checkpoints").glob("step_*"))[-1]
    weights = load_file(str(ckpt / "discriminator.safetensors"))
    shipped = _shipped()
    # The backbone is bit-exactly the shipped one after training (no gradient, no optimiser state)...
    for k, v in shipped.items():
        assert torch.equal(weights[k], v), k
    # ...while the heads trained away from their initialisation.
    fresh = build_discriminator(SMALL).state_dict()
    assert any(not torch.equal(weights[k], fresh[k]) for k in weights if k.startswith("heads.") and "weight" in k)
    opt_d = torch.load(ckpt / "state.pt", weights_only=False)["opt_d"]
    d = build_discriminator(SMALL)
    trainable = [p for p in d.parameters() if p.requires_grad]
    assert len(opt_d["param_groups"][0]["params"]) == len(trainable) == len(list(d.heads.parameters()))
    # A resumed run reads the backbone from its checkpoint and goes on.
    run2 = train(replace(cfg, max_steps=5), resume=True, progress=False)
    last = sorted((run2 / "checkpoints").glob("step_*"))[-1]
    assert last.name.endswith("5")
    weights = load_file(str(last / "discriminator.safetensors"))
    assert all(torch.equal(weights[k], v) for k, v in shipped.items())


def test_r1_takes_the_gradient_through_the_frozen_backbone_to_the_output_half():
    from pix2pix.models import build_generator
    from pix2pix.training.step import StepConfig, train_step

    torch.manual_seed(0)
    g, d = build_generator(SMALL), build_discriminator(SMALL)
    frozen = {k: v.clone() for k, v in d.backbone.state_dict().items()}
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam([p for p in d.parameters() if p.requires_grad], lr=1e-3)
    a, b = torch.rand(1, 3, 128, 128) * 2 - 1, torch.rand(1, 3, 128, 128) * 2 - 1
    metrics = train_step(g, d, opt_g, opt_d, a, b, StepConfig(r1_weight=1.0))
    assert float(metrics["loss/d_r1"]) > 0 and all(torch.isfinite(v) for v in metrics.values())
    assert all(torch.equal(v, frozen[k]) for k, v in d.backbone.state_dict().items())
    assert all(p.grad is None for p in d.backbone.parameters())
