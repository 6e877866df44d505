"""The Noisy Student job's configuration, and the `kerasarch noisy-student` options made from it.

Like `kerasarch.train.config`, this module imports neither TensorFlow nor Keras, so the
command line answers `--help` at once. Every field carries its help text as metadata;
`add_arguments` makes one option per field and `from_args` returns only the options typed,
which is what resuming needs: a field left out comes from the run's `noisy_student.json`,
a field given must agree with it (except `RESUMABLE_CHANGES`).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from kerasarch.train import config as train_config

# Fields that may differ when a run is resumed: `iterations` may only grow.
RESUMABLE_CHANGES = ("iterations", "verbose", "run_dir", "strategy", "data_dir", "loop")
# The trainer options a self-training job passes to each of its stages (teacher, students).
STAGE_OPTIONS = ("optimizer", "learning_rate", "schedule", "warmup_epochs", "weight_decay",
                 "label_smoothing", "precision", "jit", "strategy", "loop", "data_dir", "verbose",
                 "image_size")


def _field(default: Any, help: str, flag: str | None = None, choices: tuple | None = None,
           type: Any = None, shown: str | None = None) -> Any:
    metadata = {"help": help, "flag": flag, "choices": choices, "type": type, "shown": shown}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class NoisyStudentConfig:
    """A Noisy Student job (Xie et al. 2020). The defaults are for LeNet-5 on digits, untuned."""

    model: str = _field("lenet5", "the student's registry name (every iteration)", flag="model")
    dataset: str = _field("digits", "digits, a tfds name or folder:PATH (its train split is split "
                          "into labeled and unlabeled images; the test split stays untouched)")
    labels_per_class: int = _field(10, "labeled images per class, drawn (seeded) from the train "
                                   "split; the rest of it is the unlabeled set", type=int)
    teacher_model: str | None = _field(None, "registry name of the first teacher", shown="MODEL")
    teacher: str | None = _field(None, "start from this teacher instead of training one: a run "
                                 "folder (its best.keras) or a .keras file",
                                 shown="train one on the labeled images")
    iterations: int = _field(1, "student iterations; each student is the next teacher", type=int)
    epochs: int = _field(30, "epochs of each student (an epoch: one pass over the pseudo-labeled "
                         "images)", type=int)
    teacher_epochs: int | None = _field(None, "epochs of the first teacher (passes over the "
                                        "labeled images)", type=int, shown="--epochs")
    batch_size: int = _field(16, "labeled images per step", type=int)
    unlabeled_ratio: int = _field(7, "pseudo-labeled images per step, as a multiple of "
                                  "--batch-size (the paper: 14, then 28)", type=int)
    hard_labels: bool = _field(False, "one-hot pseudo labels (the teacher's argmax) instead of "
                               "its soft probabilities", type=bool)
    threshold: float = _field(0.0, "keep only images whose pseudo label's confidence is at least "
                              "this", type=float)
    balance: bool = _field(True, "balance the pseudo-labeled classes: duplicate images of small "
                           "classes, keep the most confident of large ones", type=bool,
                           flag="--no-balance")
    per_class: int | None = _field(None, "images per class after balancing", type=int,
                                   shown="the mean count of the kept images per class")
    randaugment_ops: int = _field(2, "RandAugment operations per image (the paper's N)", type=int)
    randaugment_magnitude: float = _field(
        5.0, "RandAugment magnitude, 0-10 (the paper: 27 of 30, i.e. 9; digits' 28-px digit in "
        "a 32-px field loses strokes at such translations)", type=float)
    dropout: float = _field(0.5, "dropout before the student's classifier (the paper: 0.5)",
                            type=float)
    stochastic_depth: float = _field(0.2, "drop rate of the last residual block, where the model "
                                     "has stochastic depth (the paper: 0.2)", type=float)
    test_split: str | None = _field(None, "test split", shown="the dataset's")
    seed: int = _field(0, "seed of the labeled draw, initialization, shuffling and noise", type=int)
    run_dir: str | None = _field(None, "output folder; an existing one is resumed",
                                 shown="runs/noisy-student-MODEL-DATASET-TIME")
    # the trainer's options for every stage (None: the model's recipe / the trainer's default)
    optimizer: str | None = _field(None, "optimizer", choices=train_config.OPTIMIZERS,
                                   shown="the model's recipe")
    learning_rate: float | None = _field(None, "learning rate", flag="--lr", type=float,
                                         shown="the model's recipe")
    schedule: str | None = _field(None, "learning-rate schedule", choices=train_config.SCHEDULES,
                                  shown="the model's recipe")
    warmup_epochs: float | None = _field(None, "warmup epochs", type=float, shown="the recipe's")
    weight_decay: float | None = _field(None, "weight decay", type=float, shown="the recipe's")
    label_smoothing: float | None = _field(None, "label smoothing", type=float, shown="the recipe's")
    image_size: int | None = _field(None, "input size", type=int, shown="the dataset's")
    precision: str = _field("float32", "dtype policy", choices=train_config.PRECISIONS)
    jit: bool = _field(False, "compile the train step with XLA", type=bool)
    strategy: str = _field("auto", "tf.distribute strategy", choices=train_config.STRATEGIES)
    loop: str = _field("auto", "training loop (see kerasarch train --help)", choices=train_config.LOOPS)
    data_dir: str | None = _field(None, "tfds data dir", shown="$KERASARCH_DATA_DIR, then tfds'")
    verbose: int = _field(1, "0 silent, 1 progress bars, 2 one line per epoch", type=int)

    def validate(self) -> None:
        """Raises `ValueError` naming the first bad field (models are checked by the trainer)."""
        for name in ("labels_per_class", "iterations", "epochs", "batch_size", "unlabeled_ratio",
                     "randaugment_ops", "teacher_epochs", "per_class"):
            value = getattr(self, name)
            if value is None and name in ("teacher_epochs", "per_class"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Invalid value for `{name}`: {value!r}. Expected an int >= 1.")
        for name, low, high in (("threshold", 0.0, 1.0), ("dropout", 0.0, 0.99),
                                ("stochastic_depth", 0.0, 0.99),
                                ("randaugment_magnitude", 0.0, 10.0)):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not low <= value <= high:
                raise ValueError(f"Invalid value for `{name}`: {value!r}. Expected a number in "
                                 f"[{low}, {high}].")

    def stage_options(self) -> dict[str, Any]:
        """The trainer options given to every stage (those set, not the defaults)."""
        default = NoisyStudentConfig()
        return {k: getattr(self, k) for k in STAGE_OPTIONS if getattr(self, k) != getattr(default, k)}


FIELDS = {f.name: f for f in dataclasses.fields(NoisyStudentConfig)}
_SHARED = {name: FIELDS[name] for name in (
    "model", "dataset", "labels_per_class", "teacher_model", "batch_size", "unlabeled_ratio",
    "randaugment_ops", "randaugment_magnitude", "dropout", "stochastic_depth", "test_split", "seed",
    "run_dir", *STAGE_OPTIONS)}


def _same(name: str, **changes: Any) -> Any:
    """A field of `NoisyStudentConfig` for another job (`changes`: other metadata)."""
    field = _SHARED[name]
    return _field(field.default, **{**field.metadata, **changes})


@dataclasses.dataclass(frozen=True)
class MPLConfig:
    """A Meta Pseudo Labels job (Pham et al. 2021). The defaults are for LeNet-5 on digits, untuned."""

    model: str = _same("model", help="the student's registry name")
    dataset: str = _same("dataset")
    labels_per_class: int = _same("labels_per_class")
    teacher_model: str | None = _same("teacher_model")
    epochs: int = _field(30, "epochs of teacher and student together (an epoch: one pass over the "
                         "unlabeled images)", type=int)
    finetune_epochs: int = _field(10, "epochs of the student's fine-tuning on the labeled images "
                                  "(0: none)", type=int)
    batch_size: int = _same("batch_size")
    unlabeled_ratio: int = _same("unlabeled_ratio", help="unlabeled images per step, as a multiple "
                                 "of --batch-size")
    supervised_weight: float = _field(1.0, "weight of the teacher's own cross-entropy on the "
                                      "labeled batch", type=float)
    randaugment_ops: int = _same("randaugment_ops")
    randaugment_magnitude: float = _same("randaugment_magnitude")
    dropout: float = _same("dropout", help="dropout before the classifiers (teacher and student)")
    stochastic_depth: float = _same("stochastic_depth")
    test_split: str | None = _same("test_split")
    seed: int = _same("seed")
    run_dir: str | None = _same("run_dir", shown="runs/mpl-MODEL-DATASET-TIME")
    optimizer: str | None = _same("optimizer")
    learning_rate: float | None = _same("learning_rate")
    schedule: str | None = _same("schedule")
    warmup_epochs: float | None = _same("warmup_epochs")
    weight_decay: float | None = _same("weight_decay")
    label_smoothing: float | None = _same("label_smoothing")
    image_size: int | None = _same("image_size")
    precision: str = _same("precision")
    jit: bool = _same("jit")
    strategy: str = _same("strategy")
    loop: str = _same("loop")
    data_dir: str | None = _same("data_dir")
    verbose: int = _same("verbose")

    def validate(self) -> None:
        """Raises `ValueError` naming the first bad field."""
        for name in ("labels_per_class", "epochs", "batch_size", "unlabeled_ratio", "randaugment_ops"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Invalid value for `{name}`: {value!r}. Expected an int >= 1.")
        if not isinstance(self.finetune_epochs, int) or self.finetune_epochs < 0:
            raise ValueError(f"Invalid value for `finetune_epochs`: {self.finetune_epochs!r}. "
                             "Expected an int >= 0.")
        if self.loop == "custom" or self.strategy == "multiworker":
            raise ValueError(f"Invalid value for `{'loop' if self.loop == 'custom' else 'strategy'}`: "
                             f"{self.loop if self.loop == 'custom' else self.strategy!r}. Meta Pseudo "
                             "Labels trains with model.fit (its own train step): the default, mirrored "
                             "or TPU strategy, and the fit loop.")
        for name, low, high in (("dropout", 0.0, 0.99), ("stochastic_depth", 0.0, 0.99),
                                ("randaugment_magnitude", 0.0, 10.0), ("supervised_weight", 0.0, 1e6)):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not low <= value <= high:
                raise ValueError(f"Invalid value for `{name}`: {value!r}. Expected a number in "
                                 f"[{low}, {high}].")

    stage_options = NoisyStudentConfig.stage_options


def _flag(field: dataclasses.Field) -> str:
    return field.metadata["flag"] or "--" + field.name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, cls: type = NoisyStudentConfig) -> None:
    """One option per field of `cls`; defaults are `SUPPRESS` (see `from_args`)."""
    for field in dataclasses.fields(cls):
        meta = field.metadata
        shown = meta["shown"] or ("off" if field.default is False else field.default)
        kwargs: dict[str, Any] = {"help": f"{meta['help']} (default: {shown})",
                                  "default": argparse.SUPPRESS}
        flag = _flag(field)
        if meta["type"] is bool:
            kwargs["action"] = "store_false" if field.default is True else "store_true"
            if field.default is True:
                kwargs["help"] = f"do not {meta['help']} (default: {field.name} on)"
        else:
            if meta["type"] is not None:
                kwargs["type"] = meta["type"]
            if meta["choices"]:
                kwargs["choices"] = meta["choices"]
        if not flag.startswith("-"):
            parser.add_argument(field.name, nargs="?", **kwargs)
        else:
            parser.add_argument(flag, dest=field.name, **kwargs)


def from_args(args: argparse.Namespace, cls: type = NoisyStudentConfig) -> dict[str, Any]:
    """The fields of `cls` typed on the command line."""
    given = vars(args)
    return {f.name: given[f.name] for f in dataclasses.fields(cls) if f.name in given}


def merge_with_saved(saved: dict[str, Any], given: dict[str, Any],
                     cls: type = NoisyStudentConfig) -> dict[str, Any]:
    """A resumed job's fields: the saved ones, with the given ones where they may change.

    Raises:
        ValueError: A given field contradicts the saved job, or `iterations` shrinks.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, value in given.items():
        if name not in fields:
            raise ValueError(f"Unknown {cls.__name__} option `{name}`.")
        before = saved.get(name, fields[name].default)
        if name == "iterations" and value < before:
            raise ValueError(f"The run was planned for {before} iterations; --iterations {value} "
                             "would shorten it (a resumed run may only raise it).")
        if name not in RESUMABLE_CHANGES and value != before:
            raise ValueError(
                f"{_flag(fields[name])}: the run folder holds a run with {name}={before!r}, "
                f"given {value!r}. Leave the option out to resume it, or choose another --run-dir."
            )
    return {**{k: v for k, v in saved.items() if k in fields}, **given}
