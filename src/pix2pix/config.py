"""Frozen, typed configuration: model, data and training, with file load/save and overrides.

A run's whole configuration is one ``TrainConfig``; the CLI builds it, validates it, prints it and
saves it into the run directory, and the training loop never sees argparse.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .util.checks import check_choice, check_positive
# ModelConfig lives beside the architecture registry it is checked against; re-exported here
# because a TrainConfig is made of it.
from .models.config import ModelConfig
from .models.registry import check_discriminator_size, check_model

DIRECTIONS = ("AtoB", "BtoA")
PREPROCESS = ("resize_crop", "crop", "resize", "none")
GAN_MODES = ("vanilla", "lsgan", "hinge")
# The lr schedules of training/schedule.py.
LR_SCHEDULES = ("linear", "constant", "fit")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
SWITCHES = ("auto", "on", "off")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
# The perceptual loss's nets (training/perceptual.py builds them): the LPIPS backbones, and "vgg3",
# VGG16 up to its third LPIPS tap (relu3_3). A "+" list of them sums their distances; "NET@S" takes
# that net's distance on one random S x S crop of the pair per step (a cheaper estimate).
PERCEPTUAL_NETS = ("alex", "vgg", "vgg3")


def perceptual_parts(name: str) -> list[tuple[str, int]]:
    """The (net, crop side or 0) of a ``perceptual_net`` value, e.g. "alex+vgg3@64" ->
    [("alex", 0), ("vgg3", 64)]; ValueError naming the value when a part is unknown or repeated."""
    parts, valid = [], True
    for part in name.split("+"):
        net, at, crop = part.partition("@")
        side = int(crop) if crop.isdigit() else 0
        valid &= net in PERCEPTUAL_NETS and (not at or side >= 32)  # room for the deeper taps
        parts.append((net, side))
    if not valid or len({n for n, _ in parts}) != len(parts):
        raise ValueError(f"train.perceptual_net={name!r} is not valid; choose one of "
                         f"{', '.join(PERCEPTUAL_NETS)}, or several joined by '+' (e.g. alex+vgg3), "
                         f"each optionally on a random crop of 32 px or more (e.g. vgg3@64)")
    return parts


# Fields that hold seconds but also read durations ("90m", "2h30m"), as their flag does, so a
# config file or --set takes what --max-time takes.
DURATION_FIELDS = ("max_time",)


def parse_duration(text: str) -> float:
    """'90' (seconds), '45m', '2h30m', '1d' -> seconds; ValueError naming ``text`` otherwise."""
    if re.fullmatch(r"\d+(\.\d+)?", text.strip()):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([dhms])", text.strip().lower())
    if not parts or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s", "", text.lower()):
        raise ValueError(f"{text!r} is not a duration; write e.g. 3600, 90m or 2h30m")
    return sum(float(n) * {"d": 86400, "h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


# Validation metrics and whether a higher value is better.
METRICS = {"l1": False, "psnr": True, "ssim": True, "lpips": False, "fid": False}


@dataclass(frozen=True)
class DataConfig:
    """Where the pairs are and how they are jittered."""

    root: str = ""
    direction: str = "AtoB"
    image_size: int = 256
    # Resize target before the random crop; None means the paper's 286/256 ratio.
    load_size: Optional[int] = None
    preprocess: str = "resize_crop"
    flip: bool = True
    workers: int = 0
    train_split: str = "train"
    val_split: str = "val"
    verify: bool = True
    # Batches each loader worker prepares ahead of the compute (with workers > 0).
    prefetch: int = 2
    # Decode-once uint8 cache of the training split (pix2pix.data.cache): "auto" (on a GPU, when
    # it fits on disk), "on" or "off". cache_hash also checks the files' bytes (SHA-256), not
    # just their sizes and modification times.
    cache: str = "auto"
    cache_hash: bool = False
    # Jitter (resize, crop, flip) on the training device after a uint8 transfer: "auto" (on a
    # GPU), "on" or "off" (on the CPU, in the loader).
    device_jitter: str = "auto"

    @property
    def resolved_load_size(self) -> int:
        return self.load_size or int(round(self.image_size * 286 / 256))

    def validate(self) -> None:
        check_choice("data.direction", self.direction, DIRECTIONS)
        check_choice("data.preprocess", self.preprocess, PREPROCESS)
        check_positive("data.image_size", self.image_size)
        check_positive("data.workers", self.workers, allow_zero=True)
        check_positive("data.prefetch", self.prefetch)
        check_choice("data.cache", self.cache, SWITCHES)
        check_choice("data.device_jitter", self.device_jitter, SWITCHES)
        if self.load_size is not None and self.load_size < self.image_size:
            raise ValueError(f"data.load_size={self.load_size} is smaller than data.image_size="
                             f"{self.image_size}; it must be at least the crop size")


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation (`pix2pix distill`): the generator learns a teacher's outputs."""

    # Teacher: pretrained, checkpoint or run directory ("" is ordinary training).
    teacher: str = ""
    # Weight of L1(student output, teacher output); the loss to the real target stays l1_weight.
    teacher_weight: float = 100.0
    # Attention-transfer loss on decoder feature maps of matching size (0: off; U-Net families).
    feature_weight: float = 0.0
    # Start D from the teacher run's discriminator when the checkpoint has one of the same shape.
    teacher_discriminator: bool = True
    # Keep teacher outputs in memory: "auto" (when the jitter is off, so outputs repeat), "off".
    cache: str = "auto"
    cache_mb: int = 2048

    @property
    def enabled(self) -> bool:
        return bool(self.teacher)

    def validate(self) -> None:
        check_choice("distill.cache", self.cache, ("auto", "off"))
        for name in ("teacher_weight", "feature_weight", "cache_mb"):
            check_positive(f"distill.{name}", getattr(self, name), allow_zero=True)


@dataclass(frozen=True)
class TrainConfig:
    """One training run: model, data and optimisation."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    out: str = "runs/pix2pix"
    batch_size: int = 1
    # lr is constant for `epochs`, then falls linearly to zero over `decay_epochs` (the paper's).
    epochs: int = 100
    decay_epochs: int = 100
    max_steps: Optional[int] = None
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    # linear (the paper's), constant, or fit: the paper's shape fitted to where the run really ends
    # (--max-time or max_steps), so a time-boxed run ends with its lr at zero (training/schedule.py).
    lr_schedule: str = "linear"
    gan_mode: str = "vanilla"
    gan_weight: float = 1.0
    l1_weight: float = 100.0
    # Shift-equivariance term |G(shift a) - shift G(a)| (less video flicker; 0: off, see docs/training.md).
    shift_weight: float = 0.0
    # Feature matching (pix2pixHD, weight 10 there): L1 between D's intermediate activations on the
    # real and the fake pair, added to G's loss (0: off, as in the paper).
    feature_matching_weight: float = 0.0
    seed: int = 0
    device: str = "auto"
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    num_samples: int = 4
    # ---- speed: mixed precision (bf16, or fp16 with loss scaling), memory layout, compilation.
    # "auto": bf16 autocast where the hardware computes bf16 natively (a GPU with bf16, a CPU
    # with AVX512-BF16 or AMX: faster, and quality-neutral in benchmarks/precision_quality.py),
    # fp32 elsewhere. See pix2pix.util.precision.
    precision: str = "auto"
    channels_last: bool = False
    compile: str = "off"
    # Batch-norm statistics over all processes' batches (multi-process runs with model.norm=batch).
    sync_batchnorm: bool = False
    # ---- validation: metrics on the val split every val_every steps (0: never); best/ keeps the
    # checkpoint with the best best_metric ("" to keep none).
    val_every: int = 0
    val_metrics: str = "l1,psnr,ssim"
    val_max_images: int = 64
    best_metric: str = "l1"
    # ---- watching: TensorBoard "auto" (when installed), "on" or "off"; a W&B project ("" is off).
    tensorboard: str = "auto"
    wandb_project: str = ""
    # Exponential moving average of G's weights (e.g. 0.999; 0 is off), used for samples and export.
    ema: float = 0.0
    # Stop cleanly (with a checkpoint) after this many seconds of this invocation.
    max_time: Optional[float] = None
    # ---- recipe options (0 / 1: the paper's). Perceptual loss weight: distance between the
    # LPIPS backbone's unit-normalised features of output and target (see perceptual.py), on
    # `perceptual_net` (PERCEPTUAL_NETS, or several joined by "+"). D's learning rate is
    # lr * d_lr_mult (two time scales).
    perceptual_weight: float = 0.0
    perceptual_net: str = "alex"
    d_lr_mult: float = 1.0
    # Fine-tuning: start from this model's weights (a pretrained, run or checkpoint directory; ""
    # is a fresh start). Only weights carry over; optimisers and schedule start fresh.
    init_from: str = ""
    # Shrink and perturb (Ash & Adams 2020) the fine-tuned generator's convolution weights:
    # w = init_shrink * w_source + init_perturb * w_fresh (this run's own initial draw). 1 / 0
    # copies the source exactly.
    init_shrink: float = 1.0
    init_perturb: float = 0.0
    # Discriminator regularisers (off: the paper's). d_augment: paired differentiable augmentation
    # of every pair D sees, a comma list of translation, cutout, color (training/augment.py; needs
    # kornia). r1_weight: R1 gradient penalty gamma on real pairs, as at
    # 128² (scaled with the pixel count, so one value suits every size: training/augment.py).
    # r1_every: lazy R1, the penalty on every r1_every-th D step at r1_every times the weight
    # (StyleGAN2's 16), so the other steps skip its second backward pass (1: every step).
    d_augment: str = ""
    r1_weight: float = 0.0
    r1_every: int = 16
    # Warnings for a failing run (flat or identical outputs, a discriminator that has won,
    # validation getting worse: training/health.py), checked from this step on; every run's
    # first outputs are flat.
    health_after: int = 200
    distill: DistillConfig = field(default_factory=DistillConfig)

    @property
    def val_metric_list(self) -> list[str]:
        return [m.strip() for m in self.val_metrics.split(",") if m.strip()]

    def validate(self) -> None:
        check_model(self.model)
        self.data.validate()
        check_choice("train.gan_mode", self.gan_mode, GAN_MODES)
        check_choice("train.device", self.device, DEVICES)
        check_choice("train.lr_schedule", self.lr_schedule, LR_SCHEDULES)
        for name in ("batch_size", "lr", "log_every", "sample_every", "checkpoint_every",
                     "keep_checkpoints", "num_samples", "r1_every"):
            check_positive(name, getattr(self, name))
        perceptual_parts(self.perceptual_net)
        check_positive("d_lr_mult", self.d_lr_mult)
        check_positive("init_shrink", self.init_shrink)
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be in [0, 1) (Adam's decay rates)")
        check_discriminator_size(self.model, self.data.image_size)
        check_positive("health_after", self.health_after, allow_zero=True)
        for name in ("epochs", "decay_epochs", "l1_weight", "gan_weight", "perceptual_weight",
                     "shift_weight", "feature_matching_weight", "r1_weight", "init_perturb"):
            check_positive(name, getattr(self, name), allow_zero=True)
        if self.feature_matching_weight > 0 and self.gan_weight == 0:
            raise ValueError(f"feature_matching_weight={self.feature_matching_weight} needs the "
                             f"discriminator, but gan_weight is 0 (no D is trained); set --gan-weight "
                             f"above 0 or --feature-matching 0")
        if self.epochs + self.decay_epochs == 0 and not self.max_steps:
            raise ValueError("nothing to train: epochs + decay_epochs is 0 and max_steps is not set")
        if self.max_steps is not None:
            check_positive("max_steps", self.max_steps)
        self.distill.validate()
        teacher_loss = self.distill.teacher_weight if self.distill.enabled else 0.0
        if self.l1_weight == 0 and self.gan_weight == 0 and self.perceptual_weight == 0 \
                and teacher_loss == 0:
            raise ValueError("l1_weight, gan_weight and perceptual_weight are all 0: the generator "
                             "would learn nothing")
        if not self.data.root:
            raise ValueError("data.root is empty: pass --data DIR (a folder with train/ inside)")
        self._validate_scale()

    def _validate_scale(self) -> None:
        check_choice("train.precision", self.precision, PRECISIONS)
        check_choice("train.compile", self.compile, COMPILE_MODES)
        check_choice("train.tensorboard", self.tensorboard, ("auto", "on", "off"))
        check_positive("val_every", self.val_every, allow_zero=True)
        check_positive("val_max_images", self.val_max_images)
        for name in self.val_metric_list:
            check_choice("val_metrics entry", name, tuple(METRICS))
        if self.best_metric:
            check_choice("best_metric", self.best_metric, tuple(METRICS))
            if self.val_every and self.best_metric not in self.val_metric_list:
                raise ValueError(f"best_metric={self.best_metric!r} is not among val_metrics="
                                 f"{self.val_metrics!r}; add it there or pick one of those")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema={self.ema!r} must be in [0, 1): a decay such as 0.999, or 0 for off")
        if self.max_time is not None:
            check_positive("max_time", self.max_time)
        if self.sync_batchnorm and self.model.norm != "batch":
            raise ValueError(f"sync_batchnorm is on but model.norm={self.model.norm!r}; it only "
                             f"applies to batch norm (instance norm needs no syncing)")


def to_dict(cfg: Any) -> dict:
    """Every field, nested (what merge and --set work on)."""
    return dataclasses.asdict(cfg)


def config_dict(cfg: Any) -> dict:
    """The config as printed and saved: :func:`to_dict` without sections that do not apply (a
    plain training run has no ``distill`` block). Reading it back gives the same config."""
    data = to_dict(cfg)
    if isinstance(cfg, TrainConfig) and not cfg.distill.enabled:
        data.pop("distill", None)
    return data


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(path: str, value: Any, tp: Any) -> Any:
    """Convert a value from a file or the command line to the field's declared type, or fail."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(path, value, args[0])
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ValueError(f"{path} must be a mapping, got {value!r}")
        return from_dict(tp, value, prefix=f"{path}.")
    if path in DURATION_FIELDS and isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as e:
            raise ValueError(f"{path}={value!r} is not valid: {e}") from None
    try:
        if tp is bool:
            if isinstance(value, str):
                low = value.lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if isinstance(value, (bool, int)):
                return bool(value)
            raise ValueError
        if tp is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if tp is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if tp is str:
            # A file's null for a text field means "off", as "" does (best_metric, wandb_project).
            return "" if value is None else str(value)
    except (TypeError, ValueError):
        raise ValueError(f"{path}={value!r} is not a valid {getattr(tp, '__name__', tp)}") from None
    return value


def _suggest(key: str, prefix: str, valid) -> str:
    """`` (did you mean lr?)`` when a valid key is close to ``key`` (a likely typo), else ""."""
    close = difflib.get_close_matches(key, [prefix + k for k in valid], n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def from_dict(cls: type, data: dict, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a (possibly partial) nested dict; unknown keys are errors."""
    hints = _field_types(cls)
    unknown = set(data) - set(hints)
    if unknown:
        named = ", ".join(prefix + k + _suggest(prefix + k, prefix, hints) for k in sorted(unknown))
        raise ValueError(f"unknown config key(s) {named}; valid keys: {', '.join(prefix + k for k in hints)}")
    kwargs = {k: _coerce(prefix + k, v, hints[k]) for k, v in data.items()}
    return cls(**kwargs)


def saved_train_config(data: dict) -> "TrainConfig":
    """A run's saved TrainConfig (its config.json or checkpoint), read as it trained: fields added
    since keep the behaviour of the code that wrote it (R1 was on every step before r1_every)."""
    data = dict(data)
    if "r1_every" not in data and float(data.get("r1_weight", 0) or 0) > 0:
        data["r1_every"] = 1
    return from_dict(TrainConfig, data)


def merge(cfg: Any, data: dict) -> Any:
    """Overlay a nested mapping (a config file, the CLI's options) on dataclass ``cfg``.

    Sections merge key by key, so ``{"model": {"norm": "instance"}}`` keeps the other model
    fields; every value is checked against its field's type and unknown keys are errors.
    """
    def overlay(base: dict, top: dict) -> dict:
        out = dict(base)
        for k, v in top.items():
            out[k] = overlay(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
        return out

    return from_dict(type(cfg), overlay(to_dict(cfg), data))


def apply_overrides(cfg: Any, overrides: list[str]) -> Any:
    """Apply ``a.b=c`` strings (``--set``) to a dataclass, each value checked against its type."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value, e.g. model.norm=instance")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"override {item!r}: {part!r} is not a config section")
            node = node[part]
        if parts[-1] not in node:
            prefix = ".".join(parts[:-1]) + "." if len(parts) > 1 else ""
            raise ValueError(f"override {item!r}: unknown key {key!r}{_suggest(key.strip(), prefix, node)}")
        node[parts[-1]] = value
    return from_dict(type(cfg), data)


def load_config_file(path: str | Path) -> dict:
    """Read a YAML or JSON config file into a dict."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ValueError(f"config file {path} is not valid YAML{where}: {problem}; fix that line "
                             f"(YAML nests with spaces, not tabs)") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"config file {path} is not valid JSON at line {e.lineno}, column "
                             f"{e.colno}: {e.msg}; fix that line (or use a .yaml file)") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping at the top level")
    return data


def save_config(cfg: Any, path: str | Path) -> None:
    from .util.fsutil import atomic_write_text

    atomic_write_text(path, json.dumps(config_dict(cfg), indent=2) + "\n")
