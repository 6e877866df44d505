"""Training: `fit(...)` runs one training job and writes its run folder."""

from kerasarch.train.trainer import RunResult, TrainConfig, fit

__all__ = ["RunResult", "TrainConfig", "fit"]
