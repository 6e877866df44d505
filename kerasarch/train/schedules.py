"""Learning-rate schedules with linear warmup, as a serializable Keras schedule."""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasarch.layers import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak_lr`, then constant, step or cosine decay.

    Keras has warmup only inside `CosineDecay`; one class covers the three shapes the
    recipes use, so a run's schedule is one serializable object in its checkpoints.

    Args:
        peak_lr: Rate at the end of warmup.
        total_steps: Steps in the run (the cosine reaches 0 there).
        warmup_steps: Steps of linear warmup from 0.
        kind: `"constant"`, `"step"` or `"cosine"`.
        step_every: For `"step"`: steps between divisions.
        step_factor: For `"step"`: the divisor.
    """

    def __init__(
        self,
        peak_lr: float,
        total_steps: int,
        warmup_steps: int = 0,
        kind: str = "constant",
        step_every: int = 0,
        step_factor: float = 10.0,
    ):
        if kind not in ("constant", "step", "cosine"):
            raise ValueError(f"Unknown schedule {kind!r}; expected constant, step or cosine.")
        self.peak_lr = float(peak_lr)
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = max(int(warmup_steps), 0)
        self.kind = kind
        self.step_every = int(step_every)
        self.step_factor = float(step_factor)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        if self.kind == "cosine":
            span = max(self.total_steps - self.warmup_steps, 1)
            progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
            rate = 0.5 * self.peak_lr * (1.0 + ops.cos(math.pi * progress))
        elif self.kind == "step" and self.step_every > 0:
            drops = ops.floor(ops.maximum(step - self.warmup_steps, 0.0) / self.step_every)
            rate = self.peak_lr / ops.power(self.step_factor, drops)
        else:
            rate = ops.convert_to_tensor(self.peak_lr, "float32")
        if self.warmup_steps > 0:
            warm = self.peak_lr * (step + 1.0) / self.warmup_steps
            rate = ops.where(step < self.warmup_steps, warm, rate)
        return rate

    def get_config(self):
        return {
            "peak_lr": self.peak_lr, "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps, "kind": self.kind,
            "step_every": self.step_every, "step_factor": self.step_factor,
        }
