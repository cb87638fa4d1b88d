"""Training: pure steps, the loop, the lr schedule, run outputs."""
from .loop import TrainingInterrupted, resolve_device, train
from .step import StepConfig, train_step

__all__ = ["train", "train_step", "StepConfig", "TrainingInterrupted", "resolve_device"]
