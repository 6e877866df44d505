"""Noisy Student (Xie et al. 2020): a teacher labels the unlabeled images, a noised student learns.

    run_dir/
      noisy_student.json      the job's configuration (checked when the run is resumed)
      teacher/                the first teacher: a `kerasarch train` run folder trained on the
                              labeled images only (absent when `teacher` names a model)
      iteration-K/
        pseudo_labels.npz     the teacher's probabilities and the kept, balanced targets
        student/              the student: a `kerasarch train` run folder (config.json,
                              history, checkpoints, best.keras, metrics.json, serving/)
        iteration.json, iteration.png   teacher and student test top-1, pseudo-label statistics
      summary.json            every iteration's record

Each stage runs through `trainer.fit` with a `trainer.Stage` (its own data and model), so
it keeps the trainer's run folder, checkpoints, strategies and precision; a killed run,
started again with the same `run_dir`, skips the finished stages, reads the saved pseudo
labels and resumes the stage it was in from its last checkpoint.

The steps, as the paper's algorithm 1 has them:
1. The teacher is trained on the labeled images (with the student's noise), or given.
2. The teacher, un-noised (`model.predict`: inference mode), labels the unlabeled images:
   soft labels, or hard ones; a confidence threshold; class balancing (`pseudo_labels`).
3. A student is trained from scratch on labeled plus pseudo-labeled images with noise:
   RandAugment on its inputs (an in-model augmentation, so it runs in training only),
   dropout before its classifier and stochastic depth where the architecture has it. A
   step reads `batch_size` labeled and `unlabeled_ratio * batch_size` pseudo-labeled images;
   its loss is the cross-entropy averaged over them all (each image weighs the same).
4. The student becomes the next iteration's teacher.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasarch import augment, data, registry
from kerasarch.train import pseudo_labels, run_folder, trainer
from kerasarch.train.self_training_config import MPLConfig, NoisyStudentConfig, merge_with_saved

log = logging.getLogger("kerasarch.train")

DROPOUT_ARGS = ("dropout_rate", "dropout")  # builder arguments: dropout before the classifier
DEPTH_ARGS = ("drop_connect_rate", "drop_path_rate")  # builder arguments: stochastic depth
RECORD = "noisy_student.json"


@dataclasses.dataclass(frozen=True)
class SelfTrainingResult:
    """A finished self-training run: its folder, one record per iteration, the last student."""

    run_dir: Path
    iterations: list[dict]
    model: keras.Model | None = None


# --- data ------------------------------------------------------------------------------------


def _arrays(name: str, split: str, image_size: int, channels: int, seed: int, data_dir):
    """A whole split as numpy arrays (uint8 pixels in the model's channels, int labels)."""
    if name == "digits":
        images, labels = data.load_digits(split, image_size=image_size, seed=seed)
        images = np.repeat(images, channels, axis=-1) if channels == 3 else images
        return images, labels, data.digits.CLASS_NAMES
    dataset, info = data.load(name, split, image_size=image_size, batch_size=256, seed=seed,
                              data_dir=data_dir, channels=channels)
    batches = list(dataset.as_numpy_iterator())
    images = np.concatenate([b[0] for b in batches]).round().clip(0, 255).astype(np.uint8)
    return images, np.concatenate([b[1] for b in batches]).astype(np.int64), info.class_names


def _image_size(cfg: NoisyStudentConfig) -> int:
    source = data.source_defaults(cfg.dataset)
    return cfg.image_size or source.image_size or registry.model_info(cfg.model).input_shape[0]


def evaluation_split(cfg) -> str:
    """The split the job reports test top-1 on: its test split, else the validation split."""
    source = data.source_defaults(cfg.dataset)
    return cfg.test_split or source.test_split or source.val_split


def load_split(cfg: NoisyStudentConfig) -> pseudo_labels.Split:
    """The job's train split cut into `labels_per_class` labeled images per class and the rest."""
    channels = registry.model_info(cfg.model).input_shape[2]
    source = data.source_defaults(cfg.dataset)
    images, labels, names = _arrays(cfg.dataset, source.train_split, _image_size(cfg), channels,
                                    cfg.seed, cfg.data_dir)
    return pseudo_labels.split_labeled(images, labels, cfg.labels_per_class, cfg.seed, names)


# --- the student's noise ---------------------------------------------------------------------


def noise_layer(cfg: NoisyStudentConfig, seed: int | None = None) -> keras.layers.Layer:
    """RandAugment (per image) on raw pixels, and the dataset's flip where a flip keeps the class."""
    flips = data.source_defaults(cfg.dataset).augment == "flip"  # digits: "shift", no flip
    layers = [augment.RandAugment(cfg.randaugment_ops, cfg.randaugment_magnitude,
                                  fill_value=128.0 if flips else 0.0, seed=seed,
                                  name="randaugment", dtype="float32")]
    if flips:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed, name="flip", dtype="float32"))
    return keras.Sequential(layers, name="noise")


def build_student(cfg: NoisyStudentConfig, model: str, classes: int, image_size: int,
                  seed: int | None = None, input_noise: bool = True) -> tuple[keras.Model, dict]:
    """A noised model: RandAugment on its inputs, dropout, stochastic depth where it has it.

    The builder's own dropout and stochastic-depth arguments are used where it has them;
    a model without a dropout argument gets a `Dropout` layer right before `predictions`.

    `input_noise=False` leaves RandAugment out (Meta Pseudo Labels noises the batch once,
    outside the two models).

    Returns:
        The (uncompiled) model and a description of its noise.
    """
    info = registry.model_info(model)
    parameters = inspect.signature(registry.builder(model)).parameters
    shape = (image_size, image_size, info.input_shape[2])
    kwargs: dict[str, Any] = {}
    noise: dict[str, Any] = {"randaugment": {"num_ops": cfg.randaugment_ops,
                                             "magnitude": cfg.randaugment_magnitude} if input_noise else None}
    dropout_arg = next((a for a in DROPOUT_ARGS if a in parameters), None)
    depth_arg = next((a for a in DEPTH_ARGS if a in parameters), None)
    if dropout_arg:
        kwargs[dropout_arg] = cfg.dropout
    if depth_arg:
        kwargs[depth_arg] = cfg.stochastic_depth
    if "aux_logits" in parameters:
        kwargs["aux_logits"] = False  # one output: the pseudo labels train the main classifier
    built = registry.get_model(model, classes=classes, input_shape=shape,
                               augmentation=noise_layer(cfg, seed) if input_noise else None, **kwargs)
    if not dropout_arg and cfg.dropout > 0:
        head = built.get_layer("predictions")
        x = keras.layers.Dropout(cfg.dropout, seed=seed, name="noise_dropout")(head.input)
        built = keras.Model(built.inputs, head(x), name=built.name)
    noise["dropout"] = {"rate": cfg.dropout, "where": dropout_arg or "before predictions"}
    noise["stochastic_depth"] = ({"rate": cfg.stochastic_depth, "argument": depth_arg} if depth_arg
                                 else f"{model} has no residual blocks to drop")
    return built, noise


# --- one stage through the trainer ------------------------------------------------------------


def epoch_stream(images: np.ndarray, targets: np.ndarray, batch: int, steps: int, seed: int):
    """An epoch of `steps` batches of `batch` images, a new order for each iterator (each epoch)."""
    count = len(images)
    repeats = math.ceil(batch * steps / count)
    images_t, targets_t = tf.constant(images), tf.constant(targets)
    order = tf.data.Dataset.range(count).repeat(repeats).shuffle(
        count * repeats, seed=seed, reshuffle_each_iteration=True)
    return order.batch(batch, drop_remainder=True).take(steps).map(
        lambda i: (tf.cast(tf.gather(images_t, i), tf.float32), tf.gather(targets_t, i)))


def _stage_pipelines(cfg: NoisyStudentConfig, split: pseudo_labels.Split, pseudo, plan, replicas):
    """The `trainer.Stage.pipelines` of a teacher (`pseudo` None) or a student."""
    classes = len(split.class_names)
    labeled = np.eye(classes, dtype=np.float32)[split.labeled_labels]
    seed, batch = plan.config.seed, cfg.batch_size
    if pseudo is None:
        steps = math.ceil(len(labeled) / batch)
        train = epoch_stream(split.labeled_images, labeled, batch, steps, seed)
    else:
        steps = math.ceil(len(pseudo.kept) / (batch * cfg.unlabeled_ratio))
        first = epoch_stream(split.labeled_images, labeled, batch, steps, seed)
        second = epoch_stream(split.unlabeled_images[pseudo.kept], pseudo.targets,
                               batch * cfg.unlabeled_ratio, steps, seed + 1)
        train = tf.data.Dataset.zip(first, second).map(
            lambda a, b: (tf.concat([a[0], b[0]], 0), tf.concat([a[1], b[1]], 0)))
    return with_test_split(cfg, split, plan, train, steps)


def with_test_split(cfg, split: pseudo_labels.Split, plan, train, steps: int):
    """A stage's `(splits, infos)`: its training batches and the job's untouched test split."""
    test, test_info = data.load(cfg.dataset, evaluation_split(cfg), image_size=plan.image_size,
                                batch_size=256, seed=cfg.seed, data_dir=cfg.data_dir,
                                channels=plan.channels)
    prepare = functools.partial(trainer._prepare, one_hot=False, classes=len(split.class_names),
                                channels=plan.channels)
    info = data.DatasetInfo(cfg.dataset, plan.splits[0][1], split.class_names,
                            steps * plan.config.batch_size, split.labeled_images.shape[1:])
    splits = {"train": train.prefetch(tf.data.AUTOTUNE),
              "test": test.map(prepare).prefetch(tf.data.AUTOTUNE)}
    return splits, {"train": info, "test": test_info}


def _run_stage(cfg: NoisyStudentConfig, split, role: str, run_dir: Path, model: str, epochs: int,
               seed: int, pseudo=None, iteration: int = 0) -> tuple[keras.Model, dict]:
    """Trains (or resumes, or reads back) one stage; returns its best model and metrics.

    Only the last iteration's student gets a TF Serving export (`kerasarch export` makes one
    of any stage's folder).
    """
    metrics_path = run_dir / "metrics.json"
    if metrics_path.exists() and json.loads(metrics_path.read_text()).get("epochs") == epochs:
        log.info("%s: the %s is trained; reading %s.", run_dir, role, run_dir / "best.keras")
        return keras.saving.load_model(run_dir / "best.keras"), json.loads(metrics_path.read_text())
    size = _image_size(cfg)
    batch = cfg.batch_size * (1 if pseudo is None else 1 + cfg.unlabeled_ratio)
    labeled = f"{cfg.labels_per_class}/class labeled"
    described = labeled if pseudo is None else f"{labeled} + {len(pseudo.kept)} pseudo-labeled"
    noise: dict = {}

    def build(plan, classes):
        built, noise_record = build_student(cfg, model, classes, plan.image_size, plan.config.seed)
        noise.update(noise_record)
        return built

    record = {"method": "noisy_student", "role": role, "iteration": iteration,
              "labeled_images": int(len(split.labeled_labels)),
              "pseudo_labeled_images": None if pseudo is None else int(len(pseudo.kept)),
              "labeled_batch": cfg.batch_size,
              "pseudo_labeled_batch": None if pseudo is None else cfg.batch_size * cfg.unlabeled_ratio}
    stage = trainer.Stage(
        pipelines=functools.partial(_stage_pipelines, cfg, split, pseudo),
        build_model=build,
        plan_changes={"augment": f"randaugment(N={cfg.randaugment_ops}, M={cfg.randaugment_magnitude:g})",
                      "splits": (("train", f"{data.source_defaults(cfg.dataset).train_split} "
                                  f"({described})"), ("test", evaluation_split(cfg)))},
        record=record,
        export=role == "student" and iteration == cfg.iterations,
    )
    result = trainer.fit(stage=stage, model=model, dataset=cfg.dataset, epochs=epochs,
                         batch_size=batch, image_size=size, augment=None, seed=seed,
                         run_dir=str(run_dir), **cfg.stage_options())
    return result.model, result.metrics


# --- the job ---------------------------------------------------------------------------------


def resolve_config(config, fields: dict, cls: type = NoisyStudentConfig, record: str = RECORD,
                   prefix: str = "noisy-student"):
    """The job's config: `config` and `fields` given, the run folder's saved ones otherwise."""
    default = cls()
    given = {}
    if config is not None:
        given = {f: v for f, v in dataclasses.asdict(config).items() if v != getattr(default, f)}
    given.update(fields)
    unknown = set(given) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"Unknown {cls.__name__} options: {sorted(unknown)}.")
    cfg = cls(**given)
    if cfg.run_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        safe = cfg.dataset.replace("/", "_").replace(":", "_")
        folder = Path("runs") / f"{prefix}-{cfg.model}-{safe}-{stamp}"
        return dataclasses.replace(cfg, run_dir=str(folder))
    path = Path(cfg.run_dir) / record
    if path.exists():
        saved = json.loads(path.read_text())["config"]
        cfg = cls(**merge_with_saved(saved, given, cls))
    return cfg


def _accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    return float((pseudo_labels.teacher_probabilities(model, images).argmax(1) == labels).mean())


def _teacher_path(teacher: str) -> Path:
    path = Path(teacher)
    path = path / "best.keras" if path.is_dir() else path
    if not path.exists() or path.suffix != ".keras":
        raise ValueError(f"Invalid value for `teacher`: {teacher!r}. Expected a run folder "
                         "with a best.keras or a .keras file.")
    return path


def _first_teacher(cfg: NoisyStudentConfig, split, run_dir: Path) -> tuple[keras.Model, dict]:
    if cfg.teacher is not None:
        path = _teacher_path(cfg.teacher)
        teacher = keras.saving.load_model(path)
        test_images, test_labels, _ = _arrays(
            cfg.dataset, evaluation_split(cfg), _image_size(cfg), teacher.input_shape[-1], cfg.seed,
            cfg.data_dir)
        return teacher, {"source": str(path), "test_top1": _accuracy(teacher, test_images, test_labels)}
    model = cfg.teacher_model or cfg.model
    teacher, metrics = _run_stage(cfg, split, "teacher", run_dir / "teacher", model,
                                  cfg.teacher_epochs or cfg.epochs, cfg.seed * 100)
    return teacher, {"source": str(run_dir / "teacher" / "best.keras"),
                     "test_top1": metrics.get("test_top1")}


def _check_sizes(cfg: NoisyStudentConfig) -> None:
    registry.model_info(cfg.model)
    if cfg.teacher_model is not None:
        student = registry.model_info(cfg.model).params.total
        teacher = registry.model_info(cfg.teacher_model).params.total
        if student < teacher:
            log.warning("The student %s (%d parameters) is smaller than the teacher %s (%d): Noisy "
                        "Student uses an equal or larger student.", cfg.model, student,
                        cfg.teacher_model, teacher)


def _pseudo_labels(cfg: NoisyStudentConfig, teacher, split, path: Path) -> pseudo_labels.PseudoLabels:
    if path.exists():
        return pseudo_labels.load(path)
    probabilities = pseudo_labels.teacher_probabilities(teacher, split.unlabeled_images)
    labels = pseudo_labels.pseudo_label(probabilities, hard=cfg.hard_labels, threshold=cfg.threshold,
                                        balanced=cfg.balance, per_class=cfg.per_class)
    path.parent.mkdir(parents=True, exist_ok=True)
    pseudo_labels.save(labels, path)
    return labels


def noisy_student(config: NoisyStudentConfig | None = None, **fields: Any) -> SelfTrainingResult:
    """Runs (or resumes) Noisy Student self-training and writes its run folder.

    Args:
        config: The job; default `NoisyStudentConfig()` (LeNet-5 on digits, 10 labels per
            class). Its fields that differ from the defaults count as given.
        **fields: `NoisyStudentConfig` fields given explicitly. Resuming a run folder, the
            fields left out come from its `noisy_student.json`.

    Returns:
        The run folder, one record per iteration (teacher and student test top-1, the
        pseudo-label statistics) and the last student (best weights).

    Raises:
        ValueError: A bad configuration, or one that contradicts the run folder's run.
    """
    cfg = resolve_config(config, fields)
    cfg.validate()
    _check_sizes(cfg)
    if cfg.teacher is not None:
        _teacher_path(cfg.teacher)  # before the run folder records the job
    with trainer._console_logging():
        return _iterate(cfg)


def start_run(cfg: NoisyStudentConfig | MPLConfig, record: str) -> Path:
    """Creates the job's run folder and writes its configuration to `record` there.

    A resumed run is checked against that file (`resolve_config`).
    """
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_folder.atomic_write_bytes(run_dir / record, json.dumps(
        {"config": dataclasses.asdict(cfg)}, indent=2).encode())
    return run_dir


def _iterate(cfg: NoisyStudentConfig) -> SelfTrainingResult:
    run_dir = start_run(cfg, RECORD)
    split = load_split(cfg)
    log.info("Noisy Student: %d labeled images (%d per class), %d unlabeled; %d iteration(s). "
             "Run folder: %s", len(split.labeled_labels), cfg.labels_per_class,
             len(split.unlabeled_images), cfg.iterations, run_dir)
    teacher, teacher_record = _first_teacher(cfg, split, run_dir)
    records = []
    for iteration in range(1, cfg.iterations + 1):
        folder = run_dir / f"iteration-{iteration}"
        labels = _pseudo_labels(cfg, teacher, split, folder / "pseudo_labels.npz")
        student, metrics = _run_stage(cfg, split, "student", folder / "student", cfg.model, cfg.epochs,
                                      cfg.seed * 100 + iteration, labels, iteration)
        record = {"iteration": iteration, "teacher": teacher_record,
                  "student": {"source": str(folder / "student" / "best.keras"),
                              "test_top1": metrics.get("test_top1")},
                  "pseudo_labels": pseudo_labels.statistics(labels, split.hidden_labels,
                                                            split.class_names)}
        run_folder.atomic_write_bytes(folder / "iteration.json", json.dumps(record, indent=2).encode())
        pseudo_labels.write_figure(record, folder / "iteration.png")
        log.info("Iteration %d: teacher test top-1 %.2f%%, student %.2f%% (%d pseudo-labeled "
                 "images, %.1f%% of them right).", iteration, 100 * (teacher_record["test_top1"] or 0),
                 100 * (metrics.get("test_top1") or 0), record["pseudo_labels"]["training_images"],
                 100 * record["pseudo_labels"]["pseudo_label_accuracy_kept"])
        records.append(record)
        teacher, teacher_record = student, record["student"]
    run_folder.atomic_write_bytes(run_dir / "summary.json", json.dumps(
        {"config": dataclasses.asdict(cfg), "iterations": records}, indent=2).encode())
    return SelfTrainingResult(run_dir, records, teacher)
