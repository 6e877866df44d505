"""Each family's paper recipe, recorded as data, and the linear scaling rule.

A recipe is what the paper (or the reference implementation it names) trained with:
optimizer, base learning rate and the batch size it was given for, schedule, warmup and
regularization. `kerasarch train` starts from the model's recipe; every field can be
overridden on the command line. For SGD and RMSprop the learning rate follows the linear
scaling rule (Goyal et al., 2017): `lr = base_lr * batch_size / base_batch_size`; adaptive
optimizers (Adam, AdamW) keep `base_lr`.
"""

from __future__ import annotations

import dataclasses

from kerasarch import registry

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "cosine")
ADAPTIVE = ("adam", "adamw")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A training recipe.

    Attributes:
        optimizer: One of `OPTIMIZERS` (SGD: momentum 0.9, Nesterov).
        base_lr: Learning rate at `base_batch_size`.
        base_batch_size: The batch size `base_lr` was given for.
        schedule: `"constant"`, `"step"` or `"cosine"`.
        step_epochs: For `"step"`: divide the rate by `step_factor` every this many of the
            paper's `epochs`; a run of another length keeps the shape (30 of 90: every
            third of the run).
        step_fraction: For `"step"`: divide every this fraction of the run instead.
        step_factor: Divisor of each step.
        warmup_epochs: Linear warmup from 0 over this many epochs.
        warmup_fraction: Linear warmup over this fraction of the run instead.
        weight_decay: Decoupled weight decay (Keras optimizers' `weight_decay`).
        label_smoothing: Label smoothing of the cross-entropy.
        epochs: The paper's epoch count (for reference; `--epochs` decides).
        source: Where the numbers come from.
    """

    optimizer: str
    base_lr: float
    base_batch_size: int
    schedule: str = "constant"
    step_epochs: float = 0.0
    step_fraction: float = 0.0
    step_factor: float = 10.0
    warmup_epochs: float = 0.0
    warmup_fraction: float = 0.0
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    epochs: int = 0
    source: str = ""


RECIPES = {
    "lenet": Recipe(
        "adam", 1e-3, 32, epochs=30,
        source="kerasarch's digits default (LeCun et al. 1998 trained with stochastic "
        "diagonal Levenberg-Marquardt, which no framework ships); 98% on digits",
    ),
    "alexnet": Recipe(
        "sgd", 0.01, 128, schedule="step", step_epochs=30, weight_decay=5e-4, epochs=90,
        source="Krizhevsky et al. 2012, sec. 5: SGD momentum 0.9, lr 0.01 at batch 128, /10 "
        "on plateaus (three times in ~90 epochs), weight decay 5e-4",
    ),
    "vgg": Recipe(
        "sgd", 0.01, 256, schedule="step", step_epochs=25, weight_decay=5e-4, epochs=74,
        source="Simonyan and Zisserman 2015, sec. 3.1: batch 256, momentum 0.9, lr 0.01 /10 "
        "on plateaus (three times, 74 epochs), weight decay 5e-4, dropout 0.5",
    ),
    "resnet": Recipe(
        "sgd", 0.1, 256, schedule="step", step_epochs=30, weight_decay=1e-4, epochs=90,
        source="He et al. 2015, sec. 3.4: batch 256, lr 0.1 /10 on plateaus, momentum 0.9, "
        "weight decay 1e-4; the /10 every 30 epochs of 90 is torchvision's reference",
    ),
    "bit": Recipe(
        "sgd", 0.003, 512, schedule="step", step_fraction=0.3, warmup_fraction=0.05,
        source="Kolesnikov et al. 2019, BiT-HyperRule (fine-tuning): SGD momentum 0.9, lr "
        "0.003 at batch 512, linear warmup, /10 at 30%, 60%, 90% of the run, no weight decay",
    ),
}


# Where a user picks another optimizer than the recipe's: (base rate, its batch size).
OPTIMIZER_DEFAULTS = {
    "sgd": (0.1, 256),  # He et al. 2015 / Goyal et al. 2017
    "adam": (1e-3, 256),  # Kingma and Ba's default (adaptive: not scaled)
    "adamw": (1e-3, 256),  # Loshchilov and Hutter (adaptive: not scaled)
    "rmsprop": (0.016, 256),  # Inception v3 / EfficientNet: 0.256 at batch 4096, linearly
}


def recipe_for(model: str) -> tuple[str, Recipe]:
    """The recipe of a registered model, with the key it is recorded under."""
    family = registry.model_info(model).family
    key = "bit" if model.startswith("bit_") else family
    return key, RECIPES[key]
