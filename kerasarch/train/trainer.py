"""The trainer behind `kerasarch train`: one config in, one run folder out.

A run folder holds everything needed to reproduce and use the run:

    config.json        the full configuration
    history.csv        per-epoch loss and accuracy (Keras CSVLogger)
    model.keras        the trained model
    saved_model/       the same model as a TensorFlow SavedModel
    metrics.json       test top-1 / top-5, loss, wall time
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from kerasarch import data, export, registry

OPTIMIZERS = ("adam", "sgd")


@dataclasses.dataclass
class TrainConfig:
    """A training job.

    Attributes:
        model: Registry name of the model.
        dataset: Dataset name for `kerasarch.data.load`.
        epochs: Passes over the training split.
        batch_size: Examples per step.
        image_size: Input height and width; default the model's native size.
        augment: In-model augmentation preset (`kerasarch.preprocessing.AUGMENTATIONS`),
            None, or `"auto"`: `"shift"` for digits (a flip would change the class),
            `"flip"` otherwise.
        optimizer: `"adam"` or `"sgd"` (momentum 0.9, Nesterov).
        learning_rate: Base learning rate.
        seed: Seed of initialization, shuffling and the data split.
        run_dir: Output folder; default `runs/<model>-<dataset>-<timestamp>`.
        verbose: Keras verbosity (1: progress bars).
    """

    model: str = "lenet5"
    dataset: str = "digits"
    epochs: int = 30
    batch_size: int = 32
    image_size: int | None = None
    augment: str | None = "auto"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    seed: int = 0
    run_dir: str | None = None
    verbose: int = 1

    def validate(self) -> None:
        """Raises `ValueError` naming the first bad field."""
        registry.model_info(self.model)
        for field in ("epochs", "batch_size"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Invalid value for `{field}`: {value!r}. Expected an int >= 1.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"Invalid value for `optimizer`: {self.optimizer!r}. Expected one of {OPTIMIZERS}."
            )
        if not self.learning_rate > 0:
            raise ValueError(f"Invalid value for `learning_rate`: {self.learning_rate!r}. Expected > 0.")


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a finished run produced."""

    run_dir: Path
    metrics: dict


def _optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(config.learning_rate, momentum=0.9, nesterov=True)
    return keras.optimizers.Adam(config.learning_rate)


def _default_run_dir(config: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.model}-{config.dataset}-{stamp}"


def fit(config: TrainConfig | None = None, **overrides: Any) -> RunResult:
    """Trains a registered model on a dataset and writes the run folder.

    Args:
        config: The job; default `TrainConfig()` (LeNet-5 on digits).
        **overrides: Fields of `TrainConfig` to change.

    Returns:
        The run folder and the test metrics.
    """
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    config.validate()
    run_dir = Path(config.run_dir) if config.run_dir else _default_run_dir(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    config.run_dir = str(run_dir)
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))

    keras.utils.set_random_seed(config.seed)
    info = registry.model_info(config.model)
    size = config.image_size or info.input_shape[0]
    channels = info.input_shape[2]
    splits = {}
    for split in ("train", "validation", "test"):
        dataset, data_info = data.load(
            config.dataset, split, image_size=size, batch_size=config.batch_size,
            training=split == "train", seed=config.seed,
        )
        if data_info.image_shape[2] == 1 and channels == 3:
            dataset = dataset.map(lambda x, y: (tf.image.grayscale_to_rgb(x), y))
        splits[split] = dataset
    augment = config.augment
    if augment == "auto":
        augment = "shift" if config.dataset == "digits" else "flip"
    model = registry.get_model(
        config.model,
        classes=data_info.num_classes,
        input_shape=(size, size, channels),
        augmentation=augment,
    )
    model.compile(
        optimizer=_optimizer(config),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="top1"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5"),
        ],
    )
    print(
        f"Training {config.model} on {config.dataset} ({data_info.num_classes} classes) for "
        f"{config.epochs} epochs, batch {config.batch_size}, {config.optimizer} "
        f"lr={config.learning_rate}, augmentation {augment}; run folder: {run_dir}"
    )
    start = time.perf_counter()
    model.fit(
        splits["train"],
        validation_data=splits["validation"],
        epochs=config.epochs,
        verbose=config.verbose,
        shuffle=False,  # the training split is shuffled by the pipeline, seeded
        callbacks=[keras.callbacks.CSVLogger(str(run_dir / "history.csv"))],
    )
    train_seconds = time.perf_counter() - start
    results = model.evaluate(splits["test"], verbose=0, return_dict=True)
    metrics = {
        "test_top1": float(results["top1"]),
        "test_top5": float(results["top5"]),
        "test_loss": float(results["loss"]),
        "train_seconds": round(train_seconds, 2),
        "epochs": config.epochs,
    }
    model.save(run_dir / "model.keras")
    export.saved_model(model, run_dir / "saved_model")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(
        f"Test top-1 {metrics['test_top1']:.2%}, top-5 {metrics['test_top5']:.2%} "
        f"({train_seconds:.1f} s of training). Saved {run_dir / 'model.keras'} and "
        f"{run_dir / 'saved_model'}."
    )
    return RunResult(run_dir=run_dir, metrics=metrics)
