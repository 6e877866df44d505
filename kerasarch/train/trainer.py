"""The trainer behind `kerasarch train`: one config in, one run folder out.

`fit` reads as four steps: plan the run (config, recipe, data), build the model or resume
it from the run folder, loop over the epochs, finish (evaluate, save, export).

- One model per run: the run's result is `best.keras`, the epoch with the best validation
  top-1 (the last epoch when there is no validation split). `metrics.json`'s figures are
  measured on its weights, and the run's single TF Serving export (`serving/<name>/N`) is
  made from it; `last.keras` is the last epoch, reported apart under `last_epoch`.
- Resuming: running again with the same `run_dir` continues from the last completed epoch.
  Options left out are taken from the run's `config.json`; only `epochs` may grow (and
  `verbose`, `strategy`, `data_dir`, `run_dir`, `loop` may change); an option given with
  another value than the saved run's is refused. An extended run re-plans its learning-rate
  schedule for the new length from its current step on.
- Randomness is a function of `(seed, epoch)`: epoch k reads the k-th reshuffle of the
  seeded pipeline and its in-model augmentation starts from seeds derived from
  `(seed, k)`, and a resumed run restores the optimizer with its iteration count, so a
  run resumed after epoch k trains the same epochs as one never interrupted.
- Epochs are numbered from 1 everywhere: the console, `history.csv`, `metrics.json`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from kerasarch import augment, data, export, registry
from kerasarch.train import config as train_config
from kerasarch.train import distributed, model_setup, recipes, run_folder, schedules, strategies
from kerasarch.train.config import TrainConfig
from kerasarch.train.recipes import Hyperparameters, resolve_hyperparameters

log = logging.getLogger("kerasarch.train")

# config.py hard-codes its choices so that it imports no TensorFlow; they must agree.
assert train_config.OPTIMIZERS == recipes.OPTIMIZERS
assert train_config.SCHEDULES == recipes.SCHEDULES == schedules.KINDS
assert train_config.STRATEGIES == strategies.STRATEGIES
assert train_config.AUGMENTATIONS == augment.AUGMENTATIONS

PRECISIONS = train_config.PRECISIONS
SMALL_VALIDATION = 50  # fewer validation images than this: a warning


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a finished run produced (`model`: the run's result, best.keras's weights)."""

    run_dir: Path
    metrics: dict
    model: keras.Model | None = None


@dataclasses.dataclass(frozen=True)
class Plan:
    """A run resolved from its config: hyperparameters, sizes, splits and the run folder."""

    config: TrainConfig
    hp: Hyperparameters
    run_dir: Path
    image_size: int
    channels: int
    augment: str | None
    crop_fraction: float
    splits: tuple[tuple[str, str], ...]  # (role, split) for train, validation, test


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of another training method run through `fit` (self-training: Noisy Student, MPL).

    The stage keeps everything `fit` does (run folder, config.json, history, checkpoints,
    resumption, strategies, precision) and replaces only what it trains on and what it builds.

    Attributes:
        pipelines: `(plan, replicas) -> (splits, infos)`, in place of the dataset's splits;
            `infos["train"].num_examples` is the images of one epoch.
        build_model: `(plan, classes) -> keras.Model` (uncompiled), in place of the registry's.
        plan_changes: `Plan` fields that describe the stage (its augmentation, its splits).
        record: Written to config.json under `"stage"`.
        export: Make the run's TF Serving export (an intermediate stage needs none).
    """

    pipelines: Any
    build_model: Any = None
    plan_changes: dict = dataclasses.field(default_factory=dict)
    record: dict = dataclasses.field(default_factory=dict)
    export: bool = True


# --- plan ------------------------------------------------------------------------------------


def _given_fields(config: TrainConfig | None, fields: dict[str, Any]) -> dict[str, Any]:
    """The fields set explicitly: `fields`, and those of `config` that differ from the default."""
    given = {}
    if config is not None:
        default = TrainConfig()
        given = {f: v for f, v in dataclasses.asdict(config).items() if v != getattr(default, f)}
    unknown = set(fields) - set(train_config.FIELDS)
    if unknown:
        raise ValueError(f"Unknown training options: {sorted(unknown)}.")
    return {**given, **fields}


def _resolve_config(given: dict[str, Any]) -> tuple[TrainConfig, dict | None]:
    """The run's config and the run folder's saved record (None for a new run)."""
    config = TrainConfig(**given)
    if config.run_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        safe = config.dataset.replace("/", "_").replace(":", "_")
        return dataclasses.replace(config, run_dir=str(Path("runs") / f"{config.model}-{safe}-{stamp}")), None
    record = run_folder.read_record(Path(config.run_dir))
    if record is None:
        return config, None
    return TrainConfig(**train_config.merge_with_saved(record["config"], given)), record


def _plan(config: TrainConfig) -> Plan:
    info = registry.model_info(config.model)
    source = data.source_defaults(config.dataset)
    augment = source.augment if config.augment == "auto" else config.augment
    splits = (
        ("train", config.train_split or source.train_split),
        ("validation", config.val_split or source.val_split),
        ("test", source.test_split if config.test_split is None else config.test_split),
    )
    return Plan(
        config=config, hp=resolve_hyperparameters(config), run_dir=Path(config.run_dir),
        image_size=config.image_size or source.image_size or info.input_shape[0],
        channels=info.input_shape[2], augment=augment, crop_fraction=source.crop_fraction,
        splits=splits,
    )


def _prepare(x, y, one_hot: bool, classes: int, channels: int):
    """Float pixels in the model's channel count (gray <-> RGB), one-hot labels."""
    x = tf.cast(x, tf.float32)
    if x.shape[-1] == 1 and channels == 3:
        x = tf.image.grayscale_to_rgb(x)
    elif x.shape[-1] == 3 and channels == 1:
        x = tf.image.rgb_to_grayscale(x)
    return x, (y if one_hot else tf.one_hot(y, classes))


def _pipelines(plan: Plan, replicas: int):
    config = plan.config
    out, infos = {}, {}
    for role, split in plan.splits:
        if not split:
            continue
        dataset, info = data.load(
            config.dataset, split, image_size=plan.image_size, batch_size=config.batch_size,
            training=role == "train", seed=config.seed, data_dir=config.data_dir,
            mixup_alpha=config.mixup if role == "train" else 0.0,
            cutmix_alpha=config.cutmix if role == "train" else 0.0,
        )
        prepare = functools.partial(
            _prepare, one_hot=info.one_hot, classes=info.num_classes, channels=plan.channels
        )
        dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
        if role == "train" and replicas > 1:
            # every replica needs a batch: drop a last partial batch smaller than that
            dataset = dataset.unbatch().batch(config.batch_size, drop_remainder=True)
        out[role], infos[role] = dataset.prefetch(tf.data.AUTOTUNE), info
    _warn_about_data(infos)
    return out, infos


def _warn_about_data(infos: dict) -> None:
    train = infos["train"]
    if train.num_classes < 2:
        warnings.warn(f"{train.name} [{train.split}] has a single class ({train.class_names}): "
                      "a classifier learns nothing from it.", stacklevel=4)
    validation = infos.get("validation")
    if validation is not None and validation.num_examples < SMALL_VALIDATION:
        warnings.warn(
            f"The validation split {validation.split!r} holds {validation.num_examples} images: "
            "its top-1, which picks best.keras, is noisy (give --val-split a larger part).",
            stacklevel=4,
        )
    if train.num_classes < 6:
        log.info("%d classes: top-5 accuracy is not reported (it says nothing below 6).",
                 train.num_classes)


def _steps_per_epoch(config: TrainConfig, examples: int, replicas: int) -> int:
    steps = examples // config.batch_size if replicas > 1 else math.ceil(examples / config.batch_size)
    return max(1, min(steps, config.steps_per_epoch or steps))


def _write_record(plan: Plan, replicas: int, class_names, stage: Stage | None = None) -> None:
    resolved = {**dataclasses.asdict(plan.hp), "image_size": plan.image_size,
                "augment": plan.augment, "crop_fraction": plan.crop_fraction,
                **{f"{role}_split": split for role, split in plan.splits}}
    record = {"config": dataclasses.asdict(plan.config), "resolved": resolved,
              "replicas": replicas, "classes": list(class_names)}
    if stage is not None:
        record["stage"] = stage.record
    run_folder.atomic_write_bytes(plan.run_dir / "config.json", json.dumps(record, indent=2).encode())


# --- loop ------------------------------------------------------------------------------------


def _skip_epochs(dataset: tf.data.Dataset, epochs: int) -> None:
    """Advances the pipeline's reshuffling to epoch `epochs` (each iterator is one reshuffle)."""
    for _ in range(epochs):
        iter(dataset)


def _loop(plan: Plan, model, strategy, splits, steps: int, start_epoch: int, callbacks: list,
          chief: bool) -> bool:
    """Trains from `start_epoch` to `config.epochs`; returns whether it used the custom loop."""
    config = plan.config
    custom = config.loop == "custom" or (
        config.loop == "auto" and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    )
    if start_epoch >= config.epochs:
        return custom
    # One pass over `train` is one epoch; each pass is a new iterator: the next reshuffle.
    train = splits["train"].take(steps)
    _skip_epochs(train, start_epoch)
    callbacks = [model_setup.EpochSeeds(config.seed), model_setup.MainOutputLogs(), *callbacks]
    if custom:
        distributed.fit_distributed(
            model, strategy, train, config.epochs, steps, global_batch_size=config.batch_size,
            label_smoothing=plan.hp.label_smoothing, validation_data=splits.get("validation"),
            initial_epoch=start_epoch, callbacks=callbacks, verbose=config.verbose,
            show_progress=chief,
        )
    else:
        # The epochs as one stream, so the passes happen in order whatever iterators
        # model.fit creates and drops (it does not always reuse the dataset's iterator).
        stream = tf.data.Dataset.range(start_epoch, config.epochs).flat_map(lambda _: train)
        validation = model_setup.fit_targets(model, splits.get("validation"))
        model.fit(model_setup.fit_targets(model, stream), validation_data=validation, epochs=config.epochs,
                  steps_per_epoch=steps, initial_epoch=start_epoch, verbose=config.verbose,
                  callbacks=callbacks, shuffle=False)  # the pipeline shuffles, seeded per epoch
    return custom


# --- finish ----------------------------------------------------------------------------------


def _scores(model, strategy, custom: bool, dataset, role: str) -> dict[str, float]:
    if custom:
        results = distributed.evaluate_distributed(model, strategy, dataset)
    else:
        results = model_setup.main_output_logs(model, model.evaluate(
            model_setup.fit_targets(model, dataset), verbose=0, return_dict=True))
    return {f"{role}_{k}": float(results[k]) for k in ("top1", "top5", "loss") if k in results}


def _use_best_weights(model, folder: run_folder.RunFolder, best_epoch: int, last_epoch: int) -> None:
    if best_epoch == last_epoch:
        return
    if folder.best_weights is not None:  # a non-chief worker keeps them (chief's file may lag)
        model.set_weights(folder.best_weights)
        return
    best = keras.saving.load_model(folder.run_dir / "best.keras", compile=False)
    model.set_weights(best.get_weights())


def _export_once(plan: Plan, model, previous: dict, best_epoch: int, class_names) -> dict:
    """The run's serving export of best.keras: kept when it holds that epoch already."""
    before = previous.get("serving") or {}
    if before.get("epoch") == best_epoch and Path(before.get("path", "")).exists():
        return before
    path = export.saved_model(  # a new version only when the best model changed
        model, plan.run_dir / "serving", class_names=class_names,
        top_k=min(5, len(class_names)), image_size=plan.image_size,
        crop_fraction=plan.crop_fraction,
    )
    return {"path": str(path), "epoch": best_epoch}


def _finish(plan: Plan, model, strategy, custom: bool, splits, infos, folder, resume,
            seconds: float, chief: bool, export_serving: bool = True) -> dict:
    role = "test" if "test" in splits else "validation"
    last_epoch = folder.history[-1]["epoch"] if folder.history else 0
    best_epoch = folder.best_epoch or last_epoch
    last_scores = _scores(model, strategy, custom, splits[role], role)
    if chief:
        run_folder.atomic_save_model(model, plan.run_dir / "last.keras")
        if best_epoch == last_epoch:
            run_folder.atomic_copy(plan.run_dir / "last.keras", plan.run_dir / "best.keras")
    _use_best_weights(model, folder, best_epoch, last_epoch)
    scores = last_scores if best_epoch == last_epoch else _scores(model, strategy, custom, splits[role], role)
    metrics = {"model": f"best.keras (epoch {best_epoch})", **scores}
    if best_epoch != last_epoch:
        metrics["last_epoch"] = {"model": f"last.keras (epoch {last_epoch})", **last_scores}
    metrics.update(train_seconds=round(seconds, 2), epochs=plan.config.epochs,
                   resumed_from_epoch=resume.epoch if resume else None)
    if chief:
        path = plan.run_dir / "metrics.json"
        previous = json.loads(path.read_text()) if path.exists() else {}
        if export_serving:
            metrics["serving"] = _export_once(plan, model, previous, best_epoch,
                                              infos["train"].class_names)
        run_folder.atomic_write_bytes(path, json.dumps(metrics, indent=2).encode())
    return metrics


@contextlib.contextmanager
def _console_logging():
    """Shows the `kerasarch` logger's INFO lines on stdout unless it has handlers of its own.

    (TensorFlow gives the root logger a handler on its own, so the root's are not a sign
    that the application configured logging; configure the `kerasarch` logger to take over.)
    """
    logger = logging.getLogger("kerasarch")
    if logger.handlers:
        yield
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # TensorFlow may give the root logger a handler meanwhile
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _start_line(plan: Plan, resume, start_epoch: int, classes: int, examples: int, replicas: int) -> str:
    config, hp = plan.config, plan.hp
    return (
        f"{'Resuming' if resume else 'Training'} {config.model} on {config.dataset} "
        f"({classes} classes, {examples} training images) "
        + (f"from epoch {start_epoch + 1} " if resume else "")
        + f"for {config.epochs} epochs, batch {config.batch_size} over {replicas} replica(s), "
        f"{config.precision}; {hp.optimizer} lr={hp.learning_rate:g} ({hp.learning_rate_rule}), "
        f"{hp.schedule} schedule, weight decay {hp.weight_decay}, label smoothing "
        f"{hp.label_smoothing}, augmentation {plan.augment}, {plan.image_size} px; recipe "
        f"'{hp.recipe}'. Run folder: {plan.run_dir}"
    )


def _final_line(plan: Plan, metrics: dict, seconds: float) -> str:
    role = "test" if "test_top1" in metrics else "validation"
    top5 = f", top-5 {metrics[f'{role}_top5']:.2%}" if f"{role}_top5" in metrics else ""
    return (
        f"{role.capitalize()} top-1 {metrics[f'{role}_top1']:.2%}{top5} of {metrics['model']} "
        f"({seconds:.1f} s of training). Saved {plan.run_dir / 'best.keras'} (the run's result), "
        f"{plan.run_dir / 'last.keras'}"
        + (f" and the TF Serving export {plan.run_dir / 'serving'}." if "serving" in metrics else ".")
        + ("" if plan.config.export else f" No serving export (--no-export): "
           f"`kerasarch export {plan.run_dir}` makes one.")
    )


def fit(config: TrainConfig | None = None, callbacks: list | None = None, stage: Stage | None = None,
        **fields: Any) -> RunResult:
    """Trains a registered model on a dataset and writes (or resumes) the run folder.

    Args:
        config: The job; default `TrainConfig()` (LeNet-5 on digits). Its fields that differ
            from the defaults count as given.
        callbacks: Extra Keras callbacks.
        stage: Another method's data and model for this run (`kerasarch.train.self_training`).
        **fields: `TrainConfig` fields given explicitly (`from_args` passes what the user
            typed). Resuming a run folder, the fields left out come from its config.json.

    Returns:
        The run folder, the final metrics (of best.keras) and the model (best weights).

    Raises:
        ValueError: A bad configuration, or one that contradicts the run folder's run.
        kerasarch.train.TrainingDivergedError: The loss became NaN; the last good
            checkpoint is left intact and named in the message.
    """
    config, record = _resolve_config(_given_fields(config, fields))
    config.validate()
    plan = _plan(config)
    if stage is not None:
        plan = dataclasses.replace(plan, **stage.plan_changes)
    # the global seed first: tf.data's op seeds are combined with it
    keras.utils.set_random_seed(config.seed)
    with _console_logging():
        strategy = strategies.make_strategy(config.strategy)
        chief, replicas = strategies.is_chief(strategy), strategy.num_replicas_in_sync
        splits, infos = (stage.pipelines if stage else _pipelines)(plan, replicas)
        classes, examples = infos["train"].num_classes, infos["train"].num_examples
        steps = _steps_per_epoch(config, examples, replicas)
        resume = run_folder.latest_checkpoint(plan.run_dir) if record else None
        model = model_setup.build_or_resume(plan, strategy, steps, classes, resume,
                                            build=stage.build_model if stage else None)
        start_epoch = resume.epoch if resume else 0
        if chief:
            plan.run_dir.mkdir(parents=True, exist_ok=True)
            run_folder.remove_stale_temporaries(plan.run_dir)
            _write_record(plan, replicas, infos["train"].class_names, stage)
        if start_epoch >= config.epochs:
            log.info("%s holds a finished run (%d epochs); evaluating it again.", plan.run_dir,
                     start_epoch)
        log.info(_start_line(plan, resume, start_epoch, classes, examples, replicas))
        folder = run_folder.RunFolder(plan.run_dir, resume, write=chief)
        extra = [folder, *(callbacks or [])]
        if chief:
            extra.append(keras.callbacks.TensorBoard(str(plan.run_dir / "logs"), write_graph=False))
        start = time.perf_counter()
        custom = _loop(plan, model, strategy, splits, steps, start_epoch, extra, chief)
        seconds = time.perf_counter() - start
        if folder.diverged:
            last = run_folder.latest_checkpoint(plan.run_dir)
            where = (f"the last good checkpoint is {last.path} (epoch {last.epoch})"
                     if last else "no epoch completed, so there is no checkpoint")
            raise run_folder.TrainingDivergedError(
                f"Training stopped: {folder.diverged}; {where}. Lower the learning rate "
                f"(it was {plan.hp.learning_rate:g}) or use --precision float32."
            )
        metrics = _finish(plan, model, strategy, custom, splits, infos, folder, resume, seconds, chief,
                          export_serving=config.export and (stage is None or stage.export))
        log.info(_final_line(plan, metrics, seconds))
    return RunResult(run_dir=plan.run_dir, metrics=metrics, model=model)
