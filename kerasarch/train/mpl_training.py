"""`meta_pseudo_labels(...)`: Meta Pseudo Labels as run folders, through the trainer.

    run_dir/
      mpl.json        the job's configuration (checked when the run is resumed)
      mpl/            teacher and student trained together: a `kerasarch train` run folder
                      whose checkpoints hold both models and both optimizers
                      (`MetaPseudoLabels`), so a killed run resumes inside this stage
      finetune/       the student fine-tuned on the labeled images (a run folder; the run's
                      TF Serving export is made here; with `finetune_epochs=0` there is none,
                      the student is `load_model("mpl/best.keras").student`)
      summary.json    test top-1 of the teacher, the student after MPL, the fine-tuned student

Why a `keras.Model` subclass with its own `train_step` rather than the trainer's custom
distributed loop: the trainer runs it with `model.fit` like any model, so checkpoints,
resumption, history and the default and mirrored strategies come with it (under
`tf.distribute`, Keras' optimizers sum the replicas' gradients in `apply`); the custom loop
(`--loop custom`, for multi-worker) computes a single supervised loss and cannot run it.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasarch import data, registry
from kerasarch.train import run_folder, self_training, trainer
from kerasarch.train.mpl_model import MetaPseudoLabels
from kerasarch.train.self_training_config import MPLConfig

log = logging.getLogger("kerasarch.train")
RECORD = "mpl.json"


def _pipelines(cfg: MPLConfig, split, plan, replicas):
    """Steps of `batch_size` labeled and `unlabeled_ratio * batch_size` unlabeled images."""
    classes = len(split.class_names)
    labeled = np.eye(classes, dtype=np.float32)[split.labeled_labels]
    unlabeled_batch = cfg.batch_size * cfg.unlabeled_ratio
    steps = math.ceil(len(split.unlabeled_images) / unlabeled_batch)
    seed = plan.config.seed
    first = self_training.epoch_stream(split.labeled_images, labeled, cfg.batch_size, steps, seed)
    second = self_training.epoch_stream(split.unlabeled_images,
                                        np.zeros((len(split.unlabeled_images), 1), np.float32),
                                        unlabeled_batch, steps, seed + 1)
    train = tf.data.Dataset.zip(first, second).map(
        lambda a, b: ({"labeled": a[0], "unlabeled": b[0]}, a[1]))
    return self_training.with_test_split(cfg, split, plan, train, steps)


def _build(cfg: MPLConfig, plan, classes: int) -> MetaPseudoLabels:
    seed = plan.config.seed
    teacher, _ = self_training.build_student(cfg, cfg.teacher_model or cfg.model, classes,
                                             plan.image_size, seed, input_noise=False)
    student, _ = self_training.build_student(cfg, cfg.model, classes, plan.image_size, seed + 1,
                                             input_noise=False)
    noise = self_training.noise_layer(cfg, seed)
    return MetaPseudoLabels(teacher, student, noise=noise, supervised_weight=cfg.supervised_weight,
                            seed=seed, name="meta_pseudo_labels")


def _fit(cfg: MPLConfig, run_dir: Path, epochs: int, batch: int, seed: int, stage: trainer.Stage):
    metrics_path = run_dir / "metrics.json"
    if metrics_path.exists() and json.loads(metrics_path.read_text()).get("epochs") == epochs:
        log.info("%s is trained; reading %s.", run_dir, run_dir / "best.keras")
        return keras.saving.load_model(run_dir / "best.keras"), json.loads(metrics_path.read_text())
    result = trainer.fit(stage=stage, model=cfg.model, dataset=cfg.dataset, epochs=epochs,
                         batch_size=batch, image_size=self_training._image_size(cfg), augment=None,
                         seed=seed, run_dir=str(run_dir), **cfg.stage_options())
    return result.model, result.metrics


def meta_pseudo_labels(config: MPLConfig | None = None, **fields: Any) -> dict:
    """Runs (or resumes) Meta Pseudo Labels, then fine-tunes the student on the labeled images.

    Args:
        config: The job; default `MPLConfig()` (LeNet-5 on digits, 10 labels per class).
        **fields: `MPLConfig` fields given explicitly; resuming, the others come from the
            run folder's `mpl.json`.

    Returns:
        The summary written to `summary.json`: the run folder and the test top-1 of the
        teacher, of the student after MPL and of the fine-tuned student.

    Raises:
        ValueError: A bad configuration, or one that contradicts the run folder's run.
    """
    cfg = self_training.resolve_config(config, fields, MPLConfig, RECORD, "mpl")
    cfg.validate()
    for name in {cfg.model, cfg.teacher_model or cfg.model}:
        registry.model_info(name)
    with trainer._console_logging():
        return _run(cfg)


def _run(cfg: MPLConfig) -> dict:
    run_dir = self_training.start_run(cfg, RECORD)
    split = self_training.load_split(cfg)
    log.info("Meta Pseudo Labels: %d labeled images (%d per class), %d unlabeled. Run folder: %s",
             len(split.labeled_labels), cfg.labels_per_class, len(split.unlabeled_images), run_dir)
    unlabeled_batch = cfg.batch_size * cfg.unlabeled_ratio
    record = {"method": "meta_pseudo_labels", "role": "teacher+student",
              "labeled_images": int(len(split.labeled_labels)),
              "unlabeled_images": int(len(split.unlabeled_images)),
              "labeled_batch": cfg.batch_size, "unlabeled_batch": unlabeled_batch,
              "supervised_weight": cfg.supervised_weight}
    described = (f"{data.source_defaults(cfg.dataset).train_split} ({cfg.labels_per_class}/class "
                 f"labeled + {len(split.unlabeled_images)} unlabeled)")
    changes = {"augment": f"randaugment(N={cfg.randaugment_ops}, M={cfg.randaugment_magnitude:g}) "
               "on the unlabeled batch", "splits": (("train", described),
                                                    ("test", self_training.evaluation_split(cfg)))}
    stage = trainer.Stage(pipelines=functools.partial(_pipelines, cfg, split),
                          build_model=functools.partial(_build, cfg), plan_changes=changes,
                          record=record, export=False)  # serving: the fine-tuned student
    mpl, mpl_metrics = _fit(cfg, run_dir / "mpl", cfg.epochs, cfg.batch_size + unlabeled_batch,
                            cfg.seed * 100, stage)
    test_images, test_labels, _ = self_training._arrays(
        cfg.dataset, self_training.evaluation_split(cfg), self_training._image_size(cfg),
        registry.model_info(cfg.model).input_shape[2], cfg.seed, cfg.data_dir)
    summary = {"run_dir": str(run_dir),
               "teacher_test_top1": self_training._accuracy(mpl.teacher, test_images, test_labels),
               "mpl_student_test_top1": mpl_metrics.get("test_top1")}
    if cfg.finetune_epochs:
        finetune = trainer.Stage(
            pipelines=functools.partial(self_training._stage_pipelines, cfg, split, None),
            build_model=lambda plan, classes: keras.saving.load_model(
                run_dir / "mpl" / "best.keras", compile=False).student,
            plan_changes={"augment": None, "splits": (("train", f"{described}: the labeled"),
                                                      ("test", self_training.evaluation_split(cfg)))},
            record={**record, "role": "fine-tuned student"})
        _, metrics = _fit(cfg, run_dir / "finetune", cfg.finetune_epochs, cfg.batch_size,
                          cfg.seed * 100 + 1, finetune)
        summary["finetuned_test_top1"] = metrics.get("test_top1")
    run_folder.atomic_write_bytes(run_dir / "summary.json", json.dumps(summary, indent=2).encode())
    log.info("Meta Pseudo Labels: test top-1 of the teacher %.2f%%, the student %.2f%%%s.",
             100 * summary["teacher_test_top1"], 100 * (summary["mpl_student_test_top1"] or 0),
             f", fine-tuned {100 * summary['finetuned_test_top1']:.2f}%"
             if "finetuned_test_top1" in summary else "")
    return summary
