"""The run folder: atomic checkpoints, resumption, history, curves, NaN guard.

    run_dir/
      config.json           the configuration, the resolved hyperparameters, image size,
                            splits and class names: everything needed to reproduce the run
      history.csv           one row per completed epoch, numbered from 1 like Keras' console
                            ("Epoch 3/10" is row `epoch=3`), with the learning rate (`lr`)
      curves.png            loss, top-1 and learning-rate curves (redrawn every ~10 s and at the end)
      checkpoint/epoch-NNNN.keras + .json   the latest completed epoch N (model, optimizer
                            and its iteration count) and the history up to it
      best.keras            THE RUN'S RESULT: the epoch with the best validation top-1 (the
                            last epoch when there is no validation split); metrics.json and
                            serving/ are made from it
      last.keras            the last epoch, labelled as such in metrics.json
      metrics.json, serving/ (TF Serving), logs/ (TensorBoard)

Every file is written to a temporary name in the same folder and moved into place with
`os.replace`, which is atomic on POSIX and Windows: a run killed at any instant leaves the
previous checkpoint whole, never a half-written one. A checkpoint counts only when both its
`.json` (written first) and its `.keras` exist.

Why not `keras.callbacks.BackupAndRestore` (Keras 3.15)? It keeps a `latest.weights.h5`
and `{"epoch", "batch"}` only, written in place with `save_weights` (no temporary file and
rename; `double_checkpoint` keeps one previous copy instead), and deletes its backup folder
when training ends (`delete_checkpoint=True`), so a finished run cannot be extended. It
keeps no history, no best model and no record of the configuration to check a resumed run
against, and it restores by setting `model._initial_epoch` inside `model.fit`, so the
custom `tf.distribute` loop (`distributed.fit_distributed`) cannot use it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import re
import shutil
import time
from pathlib import Path

import keras
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

CHECKPOINT = re.compile(r"^epoch-(\d{4,})\.keras$")
CURVES_EVERY_S = 10.0  # curves.png is redrawn at most this often during training, and at its end


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the run stopped."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A run's state after its last completed epoch.

    Attributes:
        path: The checkpoint's `.keras` file (model and optimizer).
        epoch: Epochs completed (1-based number of the last one).
        history: One row per completed epoch.
        best_val_top1: Best validation top-1 so far (-1: none).
        best_epoch: The epoch `best.keras` holds (None: no validation, best = last).
    """

    path: Path
    epoch: int
    history: tuple[dict, ...] = ()
    best_val_top1: float = -1.0
    best_epoch: int | None = None


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Writes `payload` to `path` through a temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_save_model(model: keras.Model, path: Path) -> None:
    """`model.save` to a temporary `.keras` file, then an atomic rename to `path`."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.keras")
    model.save(tmp)
    os.replace(tmp, path)


def atomic_copy(source: Path, path: Path) -> None:
    """Copies `source` to `path` through a temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    shutil.copyfile(source, tmp)
    os.replace(tmp, path)


def latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The newest complete checkpoint of a run folder, or None."""
    folder = Path(run_dir) / "checkpoint"
    if not folder.is_dir():
        return None
    found = []
    for path in folder.iterdir():
        match = CHECKPOINT.match(path.name)
        state = path.with_suffix(".json")
        if match and state.exists():
            found.append((int(match[1]), path, state))
    if not found:
        return None
    _, path, state_path = max(found)
    state = json.loads(state_path.read_text())
    return Checkpoint(path, state["epoch"], tuple(state["history"]), state.get("best_val_top1", -1.0),
                      state.get("best_epoch"))


def read_record(run_dir: Path) -> dict | None:
    """The run's `config.json` record, or None for a new run folder."""
    path = Path(run_dir) / "config.json"
    return json.loads(path.read_text()) if path.exists() else None


def remove_stale_temporaries(run_dir: Path) -> None:
    """Deletes temporary files a killed run left (never a complete file)."""
    for folder in (Path(run_dir), Path(run_dir) / "checkpoint"):
        if folder.is_dir():
            for path in folder.glob(".*.tmp-*"):
                path.unlink(missing_ok=True)


def write_history(run_dir: Path, history: list[dict], curves: bool = True) -> None:
    """Writes history.csv and, with `curves`, curves.png (loss, top-1, learning rate)."""
    if not history:
        return
    keys = list(dict.fromkeys(k for row in history for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(Path(run_dir) / "history.csv", buffer.getvalue().encode())
    if not curves:
        return
    figure = Figure(figsize=(12, 3.5), layout="constrained")
    loss_axis, acc_axis, lr_axis = figure.subplots(1, 3)
    epochs = [row["epoch"] for row in history]
    for key, axis in (("loss", loss_axis), ("top1", acc_axis)):
        for prefix in ("", "val_"):
            if prefix + key in keys:
                axis.plot(epochs, [row.get(prefix + key) for row in history], marker="o",
                          label="validation" if prefix else "training")
        axis.set_title(key)
        axis.legend()
    if "lr" in keys:
        lr_axis.plot(epochs, [row.get("lr") for row in history], marker="o")
    lr_axis.set_title("learning rate (at the epoch's first step)")
    for axis in (loss_axis, acc_axis, lr_axis):
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    atomic_write_bytes(Path(run_dir) / "curves.png", buffer.getvalue())


class RunFolder(keras.callbacks.Callback):
    """Keeps the run folder current at each epoch's end; stops on a NaN loss.

    Epochs are numbered from 1 in everything it writes (Keras' callbacks count from 0).

    Args:
        run_dir: The run folder.
        resume: The checkpoint a resumed run starts from.
        write: False on non-chief workers: they train but write nothing.
    """

    def __init__(self, run_dir: Path, resume: Checkpoint | None = None, write: bool = True):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.history = list(resume.history) if resume else []
        self.best = resume.best_val_top1 if resume else -1.0
        self.best_epoch = resume.best_epoch if resume else None
        self.write = write
        self.best_weights: list | None = None  # kept in memory by non-chief workers only
        self.diverged: str | None = None
        self._epoch = 0
        self._lr = None
        self._drawn_at: float | None = None  # time.monotonic() of the last curves.png
        self._drawn_rows = 0

    def on_epoch_begin(self, epoch, logs=None):
        from kerasarch.train.schedules import learning_rate_at

        self._epoch = epoch
        self._lr = learning_rate_at(self.model.optimizer) if self.model.optimizer else None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = (
                f"the training loss became {float(loss)} at epoch {self._epoch + 1}, "
                f"batch {batch + 1}"
            )
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged:
            return  # never checkpoint a diverged model
        metrics = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
        if not all(math.isfinite(v) for v in metrics.values()):
            self.diverged = f"a metric became non-finite at epoch {epoch + 1}: {metrics}"
            self.model.stop_training = True
            return
        row = {"epoch": epoch + 1, **({"lr": self._lr} if self._lr is not None else {}), **metrics}
        self.history.append(row)
        score = row.get("val_top1")
        improved = score is not None and score > self.best
        if improved:
            self.best, self.best_epoch = score, epoch + 1
        if self.write:
            self._checkpoint(epoch + 1, improved)
        elif improved:
            self.best_weights = self.model.get_weights()

    def _checkpoint(self, number: int, improved: bool) -> None:
        folder = self.run_dir / "checkpoint"
        folder.mkdir(parents=True, exist_ok=True)
        previous = [p for p in folder.iterdir() if CHECKPOINT.match(p.name)]
        name = f"epoch-{number:04d}"
        state = {"epoch": number, "history": self.history, "best_val_top1": self.best,
                 "best_epoch": self.best_epoch}
        atomic_write_bytes(folder / f"{name}.json", json.dumps(state, indent=1).encode())
        atomic_save_model(self.model, folder / f"{name}.keras")
        if improved:  # a file copy of the checkpoint, cheaper than serializing again
            atomic_copy(folder / f"{name}.keras", self.run_dir / "best.keras")
        for old in previous:
            if old.name != f"{name}.keras":
                old.unlink(missing_ok=True)
                old.with_suffix(".json").unlink(missing_ok=True)
        # history.csv every epoch; curves.png (0.3-0.6 s of matplotlib) at most every
        # CURVES_EVERY_S during training, and at its end: LeNet-5's 30 epochs on digits
        # spent a third of their time drawing it.
        now = time.monotonic()
        draw = self._drawn_at is None or now - self._drawn_at >= CURVES_EVERY_S
        write_history(self.run_dir, self.history, curves=draw)
        if draw:
            self._drawn_at, self._drawn_rows = now, len(self.history)

    def on_train_end(self, logs=None):
        if self.write and self.history and self._drawn_rows != len(self.history):
            write_history(self.run_dir, self.history)
            self._drawn_at, self._drawn_rows = time.monotonic(), len(self.history)
