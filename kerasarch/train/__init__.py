"""Training: `fit(...)` runs (or resumes) one training job and writes its run folder.

The names below load on first use (PEP 562), so `import kerasarch.train.config` (the
command line's options) imports no TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RECIPES": "kerasarch.train.recipes",
    "Recipe": "kerasarch.train.recipes",
    "Hyperparameters": "kerasarch.train.recipes",
    "recipe_for": "kerasarch.train.recipes",
    "resolve_hyperparameters": "kerasarch.train.recipes",
    "TrainingDivergedError": "kerasarch.train.run_folder",
    "SchedulePlan": "kerasarch.train.schedules",
    "plan_schedule": "kerasarch.train.schedules",
    "make_strategy": "kerasarch.train.strategies",
    "RunResult": "kerasarch.train.trainer",
    "fit": "kerasarch.train.trainer",
    "TrainConfig": "kerasarch.train.config",
    "transfer": "kerasarch.train.transfer_learning",
    "top_k_hits": "kerasarch.train.metrics",
    "noisy_student": "kerasarch.train.self_training",
    "NoisyStudentConfig": "kerasarch.train.self_training_config",
    "SelfTrainingResult": "kerasarch.train.self_training",
    "Stage": "kerasarch.train.trainer",
    "meta_pseudo_labels": "kerasarch.train.mpl_training",
    "MPLConfig": "kerasarch.train.self_training_config",
    "MetaPseudoLabels": "kerasarch.train.mpl_model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kerasarch.train' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
