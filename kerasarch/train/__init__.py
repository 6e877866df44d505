"""Training: `fit(...)` runs (or resumes) one training job and writes its run folder."""

from kerasarch.train.recipes import RECIPES, Recipe, recipe_for
from kerasarch.train.run_folder import TrainingDivergedError
from kerasarch.train.schedules import WarmupSchedule
from kerasarch.train.strategies import make_strategy
from kerasarch.train.trainer import RunResult, TrainConfig, fit, resolve_hyperparameters
from kerasarch.train.transfer import transfer

__all__ = [
    "RECIPES",
    "Recipe",
    "RunResult",
    "TrainConfig",
    "TrainingDivergedError",
    "WarmupSchedule",
    "fit",
    "make_strategy",
    "recipe_for",
    "resolve_hyperparameters",
    "transfer",
]
