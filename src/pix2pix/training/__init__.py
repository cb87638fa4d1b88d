"""Training: pure steps, the loop, the lr schedule, run outputs, distributed helpers."""
from ..util.device import resolve_device
from .loop import TrainingDiverged, TrainingInterrupted, train
from .result import TrainResult
from .step import StepConfig, train_step

__all__ = ["train", "TrainResult", "train_step", "StepConfig", "TrainingInterrupted", "TrainingDiverged",
           "resolve_device"]
