"""The training job's configuration, and the `kerasarch train` options generated from it.

This module imports neither TensorFlow nor Keras, so the command line can build its parser
(and answer `--help`) in a fraction of a second. Every field of `TrainConfig` carries its
help text, command-line flag and choices as field metadata; `add_arguments` turns them
into the `train` subcommand's options and `from_args` returns only the options the user
typed, which is what resuming a run needs: a field left out is taken from the run's saved
`config.json`, a field given explicitly must agree with it (except `RESUMABLE_CHANGES`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

# The choices, hard-coded here so validating them needs no TensorFlow; the trainer asserts
# they match `recipes.OPTIMIZERS`, `recipes.SCHEDULES`, `strategies.STRATEGIES` and
# `augment.AUGMENTATIONS`.
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "cosine")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
AUGMENTATIONS = ("flip", "shift", "randaugment")
LOOPS = ("auto", "fit", "custom")

# Fields that may differ from the saved run when it is resumed (they do not change what is
# trained); `epochs` may only grow.
RESUMABLE_CHANGES = ("epochs", "verbose", "run_dir", "strategy", "data_dir", "loop", "export")


def _field(default: Any, help: str, flag: str | None = None, choices: tuple | None = None,
           type: Any = None, shown: str | None = None) -> Any:
    """A dataclass field with its command-line metadata (`shown`: the default as --help says it)."""
    metadata = {"help": help, "flag": flag, "choices": choices, "type": type, "shown": shown}
    return dataclasses.field(default=default, metadata=metadata)


RECIPE = "the model's recipe"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training job. Fields left `None` come from the model's recipe (`recipes.RECIPES`).

    Each field's metadata holds its help text (read it with `dataclasses.fields`), which is
    also the `kerasarch train` option's help.
    """

    model: str = _field("lenet5", "registry name of the model (`kerasarch models` lists them)",
                        flag="model")
    dataset: str = _field("digits", "digits, a tfds name (imagenette/160px-v2, cifar10) or folder:PATH")
    epochs: int = _field(30, "passes over the training split (a resumed run may only raise it)",
                         type=int)
    batch_size: int = _field(32, "global batch size (split over replicas)", type=int)
    image_size: int | None = _field(None, "input height and width", type=int,
                                    shown="the dataset's (digits: 32), else the model's native size")
    augment: str | None = _field(
        "auto", "in-model augmentation preset: auto (shift for digits, flip otherwise), "
        f"{', '.join(AUGMENTATIONS)}, or none", choices=("auto", *AUGMENTATIONS, "none"),
    )
    optimizer: str | None = _field(None, "optimizer (SGD: momentum 0.9, Nesterov)", choices=OPTIMIZERS,
                                   shown=RECIPE)
    learning_rate: float | None = _field(
        None, "learning rate", flag="--lr", type=float,
        shown="the recipe's, linearly scaled to the batch size for SGD and RMSprop",
    )
    schedule: str | None = _field(None, "learning-rate schedule", choices=SCHEDULES, shown=RECIPE)
    warmup_epochs: float | None = _field(None, "epochs of linear learning-rate warmup", type=float,
                                         shown=RECIPE)
    weight_decay: float | None = _field(None, "decoupled weight decay", type=float, shown=RECIPE)
    label_smoothing: float | None = _field(None, "cross-entropy label smoothing", type=float,
                                           shown=RECIPE)
    mixup: float = _field(0.0, "MixUp alpha (0: off)", type=float)
    cutmix: float = _field(0.0, "CutMix alpha (0: off)", type=float)
    precision: str = _field("float32", "dtype policy (mixed_float16 adds loss scaling)",
                            choices=PRECISIONS)
    jit: bool = _field(False, "compile the train step with XLA", type=bool)
    strategy: str = _field("auto", "tf.distribute strategy (auto: multi-worker from $TF_CONFIG, "
                           "TPU, several GPUs, else one device)", choices=STRATEGIES)
    weights: str | None = _field(
        None, "initial weights: imagenet, a .weights.h5 or .keras file, or a run folder (its "
        "best.keras); layers are matched by name and the head is new when the classes differ",
        shown="random initialization",
    )
    fine_tune: int | str | None = _field(
        None, "transfer learning from --weights: 0 = train a new head only (feature extraction), "
        "N = also the last N layers with weights, or a layer name to unfreeze from",
        shown="train every layer",
    )
    train_split: str | None = _field(None, "training split", shown="the dataset's")
    val_split: str | None = _field(None, "validation split", shown="the dataset's")
    test_split: str | None = _field(None, "test split ('' for none)", shown="the dataset's")
    steps_per_epoch: int | None = _field(None, "limit the steps of an epoch", type=int,
                                         shown="the whole training split")
    data_dir: str | None = _field(None, "tfds data dir", shown="$KERASARCH_DATA_DIR, then tfds'")
    seed: int = _field(0, "seed of initialization, shuffling, augmentation and the data split",
                       type=int)
    run_dir: str | None = _field(None, "output folder; an existing run folder is resumed",
                                 shown="runs/MODEL-DATASET-TIME")
    verbose: int = _field(1, "0 silent, 1 progress bars, 2 one line per epoch", type=int)
    loop: str = _field("auto", "fit (Keras model.fit), custom (the tf.distribute loop) or auto "
                       "(custom under MultiWorkerMirroredStrategy, where model.fit fails)",
                       choices=LOOPS)
    export: bool = _field(True, "end with the TF Serving export of best.keras in RUN/serving "
                          "(--no-export skips it; `kerasarch export RUN` makes it later)", type=bool)

    def validate(self) -> None:
        """Raises `ValueError` naming the first bad field (the model name needs the registry)."""
        from kerasarch import registry  # imports Keras: only when a job is checked

        registry.model_info(self.model)
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Invalid value for `{name}`: {value!r}. Expected an int >= 1.")
        choices = {
            "optimizer": (None, *OPTIMIZERS),
            "schedule": (None, *SCHEDULES),
            "precision": PRECISIONS,
            "strategy": STRATEGIES,
            "loop": LOOPS,
            "augment": ("auto", None, *AUGMENTATIONS),
        }
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(
                    f"Invalid value for `{name}`: {getattr(self, name)!r}. Expected one of {valid}."
                )
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(f"Invalid value for `learning_rate`: {self.learning_rate!r}. Expected > 0.")
        if self.fine_tune is not None and self.weights is None:
            raise ValueError("`fine_tune` needs pretrained `weights` ('imagenet', a file or a run folder).")


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _flag(field: dataclasses.Field) -> str:
    return field.metadata["flag"] or "--" + field.name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds one option per `TrainConfig` field to the `train` subcommand's parser.

    Every option's default is `argparse.SUPPRESS`, so the parsed namespace holds only what
    the user typed (`from_args`); `--help` shows the real default in each option's help.
    """
    for field in dataclasses.fields(TrainConfig):
        meta = field.metadata
        shown = meta["shown"] or field.default
        if isinstance(field.default, bool):
            shown = "on" if field.default else "off"
        kwargs: dict[str, Any] = {"help": f"{meta['help']} (default: {shown})",
                                  "default": argparse.SUPPRESS}
        flag = _flag(field)
        if meta["type"] is bool:  # an option on by default gets its --no- form
            kwargs["action"] = argparse.BooleanOptionalAction if field.default else "store_true"
        else:
            if meta["type"] is not None:
                kwargs["type"] = meta["type"]
            if meta["choices"]:
                kwargs["choices"] = meta["choices"]
        if not flag.startswith("-"):
            parser.add_argument(field.name, nargs="?", **kwargs)
        else:
            parser.add_argument(flag, dest=field.name, **kwargs)


def _convert(name: str, value: Any) -> Any:
    if name == "augment" and value == "none":
        return None
    if name == "fine_tune" and isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The `TrainConfig` fields the user gave on the command line, as `fit` keywords."""
    given = vars(args)
    return {name: _convert(name, given[name]) for name in FIELDS if name in given}


def merge_with_saved(saved: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The fields of a resumed run: the saved ones, with the given ones where they may change.

    Args:
        saved: The run's saved configuration (`config.json`'s `"config"`).
        given: The fields given explicitly for this call.

    Returns:
        The merged fields.

    Raises:
        ValueError: A given field contradicts the saved run (naming it and both values),
            or `epochs` shrinks.
    """
    for name, value in given.items():
        if name not in FIELDS:
            raise ValueError(f"Unknown training option `{name}`.")
        before = saved.get(name, FIELDS[name].default)
        if name == "epochs" and value < before:
            raise ValueError(
                f"The run was planned for {before} epochs; --epochs {value} would shorten it "
                "(a resumed run may only raise --epochs)."
            )
        if name not in RESUMABLE_CHANGES and value != before:
            raise ValueError(
                f"{_flag(FIELDS[name])}: the run folder holds a run with {name}={before!r}, "
                f"given {value!r}. Leave the option out to resume it, or choose another --run-dir."
            )
    merged = {name: saved[name] for name in FIELDS if name in saved}
    merged.update(given)
    return merged


def refuse_contradictions(given: dict[str, Any]) -> None:
    """Raises `merge_with_saved`'s ValueError where `given` contradicts its run folder's run.

    `train.fit` checks the same; the command line calls this first, so that a refusal comes
    at once rather than after the seconds TensorFlow's import takes.
    """
    record = Path(given.get("run_dir") or "") / "config.json"
    if given.get("run_dir") and record.is_file():
        merge_with_saved(json.loads(record.read_text())["config"], given)
