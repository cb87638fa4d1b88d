"""Training: pure steps, the loop, the lr schedule, run outputs, distributed helpers."""
from .loop import TrainingDiverged, TrainingInterrupted, resolve_device, train
from .step import StepConfig, train_step

__all__ = ["train", "train_step", "StepConfig", "TrainingInterrupted", "TrainingDiverged",
           "resolve_device"]
