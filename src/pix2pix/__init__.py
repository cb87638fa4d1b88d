"""pix2pix: paired image-to-image translation with conditional GANs (Isola et al., CVPR 2017)."""
from .checkpoint import PretrainedInfo, load_pretrained, save_pretrained
from .config import DataConfig, ModelConfig, TrainConfig
from .inference.translator import Translator
from .metrics.quality import evaluate
from .models import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator

__version__ = "0.1.0"

__all__ = ["Translator", "TrainConfig", "ModelConfig", "DataConfig", "GENERATORS", "DISCRIMINATORS",
           "build_generator", "build_discriminator", "save_pretrained", "load_pretrained",
           "PretrainedInfo", "train", "TrainResult", "evaluate", "__version__"]


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True):
    """Train from a TrainConfig; returns a TrainResult (run directory, final step, checkpoint,
    last losses, why it stopped). See pix2pix.training.train."""
    from .training import train as _train

    return _train(cfg, resume=resume, progress=progress)


def __getattr__(name: str):
    # Loaded on first use, as train() is: `import pix2pix` does not pull in the training stack.
    if name == "TrainResult":
        from .training.result import TrainResult

        return TrainResult
    raise AttributeError(f"module 'pix2pix' has no attribute {name!r}")
