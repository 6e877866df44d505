"""The run folder: atomic checkpoints, resumption, history, curves, NaN guard.

    run_dir/
      config.json           everything needed to reproduce the run
      history.csv           one row per completed epoch (rewritten atomically)
      curves.png            loss and top-1 curves
      checkpoint/epoch-NNNN.keras + .json   the latest completed epoch (model, optimizer,
                            schedule step) and the history up to it
      best.keras, last.keras, metrics.json, logs/ (TensorBoard)

Every file is written to a temporary name in the same folder and moved into place with
`os.replace`, which is atomic on POSIX and Windows: a run killed at any instant leaves the
previous checkpoint whole, never a half-written one. A checkpoint counts only when both its
`.json` (written first) and its `.keras` exist.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
from pathlib import Path

import keras
from matplotlib.figure import Figure

CHECKPOINT = re.compile(r"^epoch-(\d{4,})\.keras$")


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the run stopped."""


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


def latest_checkpoint(run_dir: Path) -> tuple[Path, dict] | None:
    """The newest complete checkpoint of a run folder and its state, or None."""
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
    _, path, state = max(found)
    return path, json.loads(state.read_text())


def remove_stale_temporaries(run_dir: Path) -> None:
    """Deletes temporary files a killed run left (never a complete file)."""
    for folder in (Path(run_dir), Path(run_dir) / "checkpoint"):
        if folder.is_dir():
            for path in folder.glob(".*.tmp-*"):
                path.unlink(missing_ok=True)


def write_history(run_dir: Path, history: list[dict]) -> None:
    """Writes history.csv and curves.png from the list of per-epoch logs."""
    if not history:
        return
    keys = list(history[0])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(Path(run_dir) / "history.csv", buffer.getvalue().encode())
    figure = Figure(figsize=(9, 3.5), layout="constrained")
    loss_axis, acc_axis = figure.subplots(1, 2)
    epochs = [row["epoch"] + 1 for row in history]
    for key, axis in (("loss", loss_axis), ("top1", acc_axis)):
        for prefix in ("", "val_"):
            if prefix + key in history[0]:
                axis.plot(epochs, [row[prefix + key] for row in history], marker="o",
                          label="validation" if prefix else "training")
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    atomic_write_bytes(Path(run_dir) / "curves.png", buffer.getvalue())


class RunFolder(keras.callbacks.Callback):
    """Keeps the run folder current at each epoch's end; stops on a NaN loss.

    Args:
        run_dir: The run folder.
        history: Rows of the epochs completed before (a resumed run).
        best: Best validation top-1 so far (a resumed run).
        write: False on non-chief workers: they train but write nothing.
    """

    def __init__(self, run_dir: Path, history: list[dict] | None = None,
                 best: float = -1.0, write: bool = True):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.history = list(history or [])
        self.best = best
        self.write = write
        self.diverged: str | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

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
        row = {"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}
        if not all(math.isfinite(v) for k, v in row.items() if k != "epoch"):
            self.diverged = f"a metric became non-finite at epoch {epoch + 1}: {row}"
            self.model.stop_training = True
            return
        self.history.append(row)
        if not self.write:
            return
        folder = self.run_dir / "checkpoint"
        folder.mkdir(parents=True, exist_ok=True)
        previous = [p for p in folder.iterdir() if CHECKPOINT.match(p.name)]
        name = f"epoch-{epoch + 1:04d}"
        state = {"epoch": epoch + 1, "history": self.history, "best_val_top1": self.best}
        score = row.get("val_top1")
        improved = score is not None and score > self.best
        if improved:
            self.best = score
            state["best_val_top1"] = score
        atomic_write_bytes(folder / f"{name}.json", json.dumps(state, indent=1).encode())
        atomic_save_model(self.model, folder / f"{name}.keras")
        if improved:  # a file copy of the checkpoint, cheaper than serializing again
            atomic_copy(folder / f"{name}.keras", self.run_dir / "best.keras")
        for old in previous:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
        write_history(self.run_dir, self.history)
