"""The trainer behind `kerasarch train`: one config in, one run folder out.

Running the same job again with the same `run_dir` resumes it from its last completed
epoch (see `kerasarch.train.run_folder` for the folder's layout and why a kill at any
moment leaves a usable checkpoint).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from kerasarch import data, export, registry
from kerasarch.train import distributed, recipes, run_folder, strategies
from kerasarch.train.schedules import WarmupSchedule
from kerasarch.train.transfer import transfer

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# Fields that may change when a run is resumed (they do not change what is trained).
RESUMABLE_CHANGES = ("epochs", "verbose", "run_dir", "strategy", "data_dir", "loop")


@dataclasses.dataclass
class TrainConfig:
    """A training job. `None` fields come from the model's recipe (`recipes.RECIPES`).

    Attributes:
        model: Registry name of the model.
        dataset: Dataset name for `kerasarch.data.load`.
        epochs: Passes over the training split.
        batch_size: Global examples per step (split over replicas).
        image_size: Input height and width; default the model's native size (digits: 32).
        augment: In-model augmentation preset (`kerasarch.preprocessing.AUGMENTATIONS`),
            None, or `"auto"`: `"shift"` for digits (a flip would change the class),
            `"flip"` otherwise.
        optimizer: `"sgd"` (momentum 0.9, Nesterov), `"adam"`, `"adamw"`, `"rmsprop"`.
        learning_rate: Learning rate at this batch size; default the recipe's, scaled
            linearly with the batch size for SGD and RMSprop.
        schedule: `"constant"`, `"step"` or `"cosine"`.
        warmup_epochs: Linear warmup length.
        weight_decay: Decoupled weight decay.
        label_smoothing: Cross-entropy label smoothing.
        mixup: MixUp alpha (0: off).
        cutmix: CutMix alpha (0: off).
        precision: `"float32"`, `"mixed_float16"` (with loss scaling) or `"mixed_bfloat16"`.
        jit: Compile the train step with XLA.
        strategy: `tf.distribute` strategy name (`strategies.STRATEGIES`).
        weights: Initial weights of the model (`"imagenet"` or a path), as in the contract.
        fine_tune: Transfer learning from `weights`: `0` trains only a new head (feature
            extraction), `N > 0` also the last N layers with weights, a layer name every
            layer from it on; `None` trains the whole model.
        train_split: Training split; default per source (see `default_splits`).
        val_split: Validation split.
        test_split: Test split (`""`: none).
        steps_per_epoch: Limit the steps of an epoch (default: the whole split).
        data_dir: tfds data dir.
        seed: Seed of initialization, shuffling, augmentation and the data split.
        run_dir: Output folder; default `runs/<model>-<dataset>-<timestamp>`.
        verbose: Keras verbosity (1: progress bars).
        loop: `"fit"` (Keras `model.fit`), `"custom"` (`distributed.fit_distributed`) or
            `"auto"`: the custom loop under `MultiWorkerMirroredStrategy`, where
            `model.fit` fails in Keras 3.15, `fit` elsewhere.
    """

    model: str = "lenet5"
    dataset: str = "digits"
    epochs: int = 30
    batch_size: int = 32
    image_size: int | None = None
    augment: str | None = "auto"
    optimizer: str | None = None
    learning_rate: float | None = None
    schedule: str | None = None
    warmup_epochs: float | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    mixup: float = 0.0
    cutmix: float = 0.0
    precision: str = "float32"
    jit: bool = False
    strategy: str = "auto"
    weights: str | None = None
    fine_tune: int | str | None = None
    train_split: str | None = None
    val_split: str | None = None
    test_split: str | None = None
    steps_per_epoch: int | None = None
    data_dir: str | None = None
    seed: int = 0
    run_dir: str | None = None
    verbose: int = 1
    loop: str = "auto"

    def validate(self) -> None:
        """Raises `ValueError` naming the first bad field."""
        registry.model_info(self.model)
        for field in ("epochs", "batch_size"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Invalid value for `{field}`: {value!r}. Expected an int >= 1.")
        choices = {
            "optimizer": (None, *recipes.OPTIMIZERS),
            "schedule": (None, *recipes.SCHEDULES),
            "precision": PRECISIONS,
            "strategy": strategies.STRATEGIES,
            "loop": ("auto", "fit", "custom"),
        }
        for field, valid in choices.items():
            if getattr(self, field) not in valid:
                raise ValueError(
                    f"Invalid value for `{field}`: {getattr(self, field)!r}. Expected one of {valid}."
                )
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(f"Invalid value for `learning_rate`: {self.learning_rate!r}. Expected > 0.")
        if self.fine_tune is not None and self.weights is None:
            raise ValueError("`fine_tune` needs pretrained `weights` ('imagenet' or a path).")


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a finished run produced."""

    run_dir: Path
    metrics: dict
    model: keras.Model | None = None


def default_splits(dataset: str) -> tuple[str, str, str]:
    """(train, validation, test) splits of a source; test `""` when it has none."""
    if dataset == "digits":
        return "train", "validation", "test"
    if dataset.startswith(data.core.FOLDER_PREFIX):
        root = Path(dataset[len(data.core.FOLDER_PREFIX):]).expanduser()
        if (root / "val").is_dir() or (root / "validation").is_dir():
            return "train", "validation", ""
        return "train[:90%]", "train[90%:]", ""
    if dataset.startswith(("imagenette/", "imagenet_resized/")):
        return "train", "validation", ""
    return "train", "test", ""


def resolve_hyperparameters(config: TrainConfig) -> dict[str, Any]:
    """The recipe's values where the config leaves `None`, and the scaled learning rate."""
    key, recipe = recipes.recipe_for(config.model)
    optimizer = config.optimizer or recipe.optimizer
    if optimizer == recipe.optimizer:
        base_lr, base_batch = recipe.base_lr, recipe.base_batch_size
    else:
        base_lr, base_batch = recipes.OPTIMIZER_DEFAULTS[optimizer]
    if config.learning_rate is not None:
        lr, rule = config.learning_rate, "given"
    elif optimizer in recipes.ADAPTIVE:
        lr, rule = base_lr, "adaptive optimizer: base rate, not scaled"
    else:
        lr = base_lr * config.batch_size / base_batch
        rule = f"linear scaling: {base_lr} x {config.batch_size} / {base_batch}"
    return {
        "recipe": key,
        "recipe_source": recipe.source,
        "optimizer": optimizer,
        "learning_rate": lr,
        "learning_rate_rule": rule,
        "schedule": config.schedule or recipe.schedule,
        "step_epochs": recipe.step_epochs,
        "step_fraction": recipe.step_fraction,
        "step_factor": recipe.step_factor,
        "warmup_epochs": recipe.warmup_epochs if config.warmup_epochs is None else config.warmup_epochs,
        "warmup_fraction": recipe.warmup_fraction if config.warmup_epochs is None else 0.0,
        "weight_decay": recipe.weight_decay if config.weight_decay is None else config.weight_decay,
        "label_smoothing": (
            recipe.label_smoothing if config.label_smoothing is None else config.label_smoothing
        ),
        "recipe_epochs": recipe.epochs,
    }


def make_schedule(hp: dict, steps_per_epoch: int, epochs: int) -> WarmupSchedule:
    """The learning-rate schedule of resolved hyperparameters for a run of this length."""
    total = steps_per_epoch * epochs
    if hp["step_fraction"]:  # a fraction of the run (BiT-HyperRule)
        step_every = int(round(hp["step_fraction"] * total))
    elif hp["step_epochs"] and hp["recipe_epochs"]:  # the paper's epochs, scaled to this run
        step_every = int(round(total * hp["step_epochs"] / hp["recipe_epochs"]))
    else:
        step_every = int(round(hp["step_epochs"] * steps_per_epoch))
    if hp["warmup_fraction"]:
        warmup_steps = int(round(hp["warmup_fraction"] * total))
    else:
        warmup_steps = int(round(hp["warmup_epochs"] * steps_per_epoch))
    return WarmupSchedule(
        hp["learning_rate"], total, warmup_steps, hp["schedule"], step_every, hp["step_factor"]
    )


def _optimizer(hp: dict, steps_per_epoch: int, epochs: int, precision: str):
    schedule = make_schedule(hp, steps_per_epoch, epochs)
    decay = hp["weight_decay"] or None
    name = hp["optimizer"]
    if name == "sgd":
        optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, weight_decay=decay)
    elif name == "adam":
        optimizer = keras.optimizers.Adam(schedule, weight_decay=decay)
    elif name == "adamw":
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=decay or 0.05)
    else:
        optimizer = keras.optimizers.RMSprop(schedule, rho=0.9, momentum=0.9, epsilon=1.0,
                                             weight_decay=decay)
    if precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _default_run_dir(config: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = config.dataset.replace("/", "_").replace(":", "_")
    return Path("runs") / f"{config.model}-{safe}-{stamp}"


def _check_resume(run_dir: Path, config: TrainConfig) -> None:
    saved = json.loads((run_dir / "config.json").read_text())["config"]
    mine = dataclasses.asdict(config)
    changed = [k for k in mine if k not in RESUMABLE_CHANGES and saved.get(k) != mine[k]]
    if changed:
        raise ValueError(
            f"{run_dir} holds a run with a different configuration ({', '.join(changed)}); "
            "resume it with the same arguments, or choose another --run-dir."
        )


def _prepare(x, y, one_hot: bool, classes: int, channels: int):
    """Float pixels, grayscale to RGB where the model wants 3 channels, one-hot labels."""
    x = tf.cast(x, tf.float32)
    if x.shape[-1] == 1 and channels == 3:
        x = tf.image.grayscale_to_rgb(x)
    return x, (y if one_hot else tf.one_hot(y, classes))


def _pipelines(config: TrainConfig, size: int, channels: int, replicas: int):
    train_split, val_split, test_split = default_splits(config.dataset)
    train_split = config.train_split or train_split
    val_split = config.val_split or val_split
    test_split = test_split if config.test_split is None else config.test_split
    out, infos = {}, {}
    for role, split in (("train", train_split), ("validation", val_split), ("test", test_split)):
        if not split:
            continue
        dataset, info = data.load(
            config.dataset, split, image_size=size, batch_size=config.batch_size,
            training=role == "train", seed=config.seed, data_dir=config.data_dir,
            mixup_alpha=config.mixup if role == "train" else 0.0,
            cutmix_alpha=config.cutmix if role == "train" else 0.0,
        )
        prepare = functools.partial(
            _prepare, one_hot=info.one_hot, classes=info.num_classes, channels=channels
        )
        dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
        if role == "train" and replicas > 1:
            # every replica needs a batch: drop a last partial batch smaller than that
            dataset = dataset.unbatch().batch(config.batch_size, drop_remainder=True)
        out[role], infos[role] = dataset.prefetch(tf.data.AUTOTUNE), info
    return out, infos


def _build_model(config: TrainConfig, size: int, channels: int, classes: int, augment):
    shape = (size, size, channels)
    if config.fine_tune is None:
        return registry.get_model(
            config.model, classes=classes, input_shape=shape, augmentation=augment,
            weights=config.weights,
        )
    info = registry.model_info(config.model)
    pretrained = registry.get_model(
        config.model, weights=config.weights, include_top=True, classes=info.classes,
        input_shape=shape if not info.fixed_size_with_top else None, augmentation=augment,
    )
    mode = "feature_extraction" if config.fine_tune in (0, "0") else "fine_tune"
    unfreeze = config.fine_tune
    if isinstance(unfreeze, str) and unfreeze.isdigit():
        unfreeze = int(unfreeze)
    return transfer(pretrained, classes, mode=mode, unfreeze=unfreeze or None)


def fit(config: TrainConfig | None = None, callbacks: list | None = None, **overrides: Any) -> RunResult:
    """Trains a registered model on a dataset and writes (or resumes) the run folder.

    Args:
        config: The job; default `TrainConfig()` (LeNet-5 on digits).
        callbacks: Extra Keras callbacks.
        **overrides: Fields of `TrainConfig` to change.

    Returns:
        The run folder and the final metrics.

    Raises:
        ValueError: A bad configuration, or a run folder holding a different run.
        kerasarch.train.TrainingDivergedError: The loss became NaN; the last good
            checkpoint is left intact and named in the message.
    """
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    config.validate()
    run_dir = Path(config.run_dir) if config.run_dir else _default_run_dir(config)
    config.run_dir = str(run_dir)
    strategy = strategies.make_strategy(config.strategy)
    chief = strategies.is_chief(strategy)
    replicas = strategy.num_replicas_in_sync
    hp = resolve_hyperparameters(config)

    keras.utils.set_random_seed(config.seed)
    info = registry.model_info(config.model)
    size = config.image_size or (32 if config.dataset == "digits" else info.input_shape[0])
    channels = info.input_shape[2]
    splits, infos = _pipelines(config, size, channels, replicas)
    classes = infos["train"].num_classes
    steps = math.ceil(infos["train"].num_examples / config.batch_size)
    if replicas > 1:
        steps = infos["train"].num_examples // config.batch_size
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)
    augment = config.augment
    if augment == "auto":
        augment = "shift" if config.dataset == "digits" else "flip"

    resume = run_folder.latest_checkpoint(run_dir) if (run_dir / "config.json").exists() else None
    if resume:
        _check_resume(run_dir, config)
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        with strategy.scope():
            if resume:
                model = keras.saving.load_model(resume[0])
            else:
                model = _build_model(config, size, channels, classes, augment)
                model.compile(
                    optimizer=_optimizer(hp, steps, config.epochs, config.precision),
                    loss=keras.losses.CategoricalCrossentropy(label_smoothing=hp["label_smoothing"]),
                    metrics=[
                        keras.metrics.CategoricalAccuracy(name="top1"),
                        keras.metrics.TopKCategoricalAccuracy(k=min(5, classes), name="top5"),
                    ],
                    jit_compile=config.jit,
                )
    finally:
        keras.config.set_dtype_policy(previous_policy)

    if config.jit and not model.jit_compile:
        unsupported = [layer.name for layer in model.layers
                       if not getattr(layer, "supports_jit", True)] or ["the augmentation"]
        print(f"--jit: Keras compiles without XLA: {', '.join(unsupported)} does not support "
              "it (Keras' random augmentation layers do not); try --augment none.")
    initial_epoch = resume[1]["epoch"] if resume else 0
    history = resume[1]["history"] if resume else []
    if chief:
        run_dir.mkdir(parents=True, exist_ok=True)
        run_folder.remove_stale_temporaries(run_dir)
        if not resume:
            record = {"config": dataclasses.asdict(config), "resolved": hp,
                      "replicas": replicas, "classes": list(infos["train"].class_names)}
            run_folder.atomic_write_bytes(run_dir / "config.json", json.dumps(record, indent=2).encode())
    already_done = bool(resume) and initial_epoch >= config.epochs
    if already_done:
        print(f"{run_dir} holds a finished run ({initial_epoch} epochs); evaluating it again.")
    print(
        f"{'Resuming' if resume else 'Training'} {config.model} on {config.dataset} "
        f"({classes} classes, {infos['train'].num_examples} training images) "
        + (f"from epoch {initial_epoch + 1} " if resume else "")
        + f"for {config.epochs} epochs, batch {config.batch_size} over {replicas} replica(s), "
        f"{config.precision}; {hp['optimizer']} lr={hp['learning_rate']:g} "
        f"({hp['learning_rate_rule']}), {hp['schedule']} schedule, weight decay "
        f"{hp['weight_decay']}, label smoothing {hp['label_smoothing']}, augmentation {augment}; "
        f"recipe '{hp['recipe']}'. Run folder: {run_dir}",
        flush=True,
    )
    folder_callback = run_folder.RunFolder(
        run_dir, history, best=resume[1]["best_val_top1"] if resume else -1.0, write=chief
    )
    callbacks = [folder_callback, *(callbacks or [])]
    if chief:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False))
    custom = config.loop == "custom" or (
        config.loop == "auto"
        and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    )
    start = time.perf_counter()
    if initial_epoch < config.epochs and custom:
        distributed.fit_distributed(
            model, strategy, splits["train"].repeat(), config.epochs, steps,
            global_batch_size=config.batch_size, label_smoothing=hp["label_smoothing"],
            validation_data=splits.get("validation"), initial_epoch=initial_epoch,
            callbacks=callbacks, verbose=config.verbose, show_progress=chief,
        )
    elif initial_epoch < config.epochs:
        model.fit(
            splits["train"].repeat() if config.steps_per_epoch else splits["train"],
            validation_data=splits.get("validation"),
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps if config.steps_per_epoch else None,
            verbose=config.verbose,
            callbacks=callbacks,
        )
    train_seconds = time.perf_counter() - start
    if folder_callback.diverged:
        last = run_folder.latest_checkpoint(run_dir)
        where = (f"the last good checkpoint is {last[0]} (epoch {last[1]['epoch']})"
                 if last else "no epoch completed, so there is no checkpoint")
        raise run_folder.TrainingDivergedError(
            f"Training stopped: {folder_callback.diverged}; {where}. Lower the learning rate "
            f"(it was {hp['learning_rate']:g}) or use --precision float32."
        )
    evaluate_on = "test" if "test" in splits else "validation"
    if custom:
        results = distributed.evaluate_distributed(model, strategy, splits[evaluate_on])
    else:
        results = model.evaluate(splits[evaluate_on], verbose=0, return_dict=True)
    metrics = {
        f"{evaluate_on}_top1": float(results["top1"]),
        f"{evaluate_on}_top5": float(results["top5"]),
        f"{evaluate_on}_loss": float(results["loss"]),
        "train_seconds": round(train_seconds, 2),
        "epochs": config.epochs,
        "resumed_from_epoch": initial_epoch if resume else None,
    }
    if chief:
        run_folder.atomic_save_model(model, run_dir / "last.keras")
        if not (run_dir / "best.keras").exists():
            run_folder.atomic_save_model(model, run_dir / "best.keras")
        if not (already_done and (run_dir / "serving").exists()):
            export.saved_model(  # a resumed run adds a version
                model, run_dir / "serving", class_names=infos["train"].class_names,
                top_k=min(5, classes), image_size=size,
                crop_fraction=1.0 if config.dataset == "digits" else 0.875,
            )
        run_folder.atomic_write_bytes(run_dir / "metrics.json", json.dumps(metrics, indent=2).encode())
    top1 = metrics[f"{evaluate_on}_top1"]
    print(
        f"{evaluate_on.capitalize()} top-1 {top1:.2%}, top-5 {metrics[f'{evaluate_on}_top5']:.2%} "
        f"({train_seconds:.1f} s of training). Saved {run_dir / 'last.keras'}, "
        f"{run_dir / 'best.keras'} and the TF Serving export {run_dir / 'serving'}.",
        flush=True,
    )
    return RunResult(run_dir=run_dir, metrics=metrics, model=model)
