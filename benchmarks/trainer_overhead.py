"""The trainer's images/s beside a bare `model.fit`, same model, data and steps, one run.

    python benchmarks/trainer_overhead.py [--steps 15] [--epochs 2]

Both train a fresh ResNet-50 (random init, 10 classes) at batch 32, validating on
train[90%:] after each epoch, on the same kerasarch folder pipeline (160 px JPEGs made by
benchmarks/data_pipeline.py, cropped to --image-size). The trainer adds what a run needs:
the run-folder callback (an atomic checkpoint of model and optimizer every epoch,
history.csv, curves.png), the NaN guard and TensorBoard logging.
Writes benchmarks/results/trainer_overhead.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf

import kerasarch
from kerasarch import data, train

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images", default=str(ROOT / "build" / "bench-jpegs"))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not Path(args.images).is_dir():
        raise SystemExit(f"{args.images} is missing: run benchmarks/data_pipeline.py first")
    dataset = f"folder:{args.images}"
    images = args.steps * args.epochs * args.batch_size

    def bare() -> float:
        """A plain `model.fit`: same model, compile, pipelines and validation; no callbacks."""
        keras.utils.set_random_seed(0)
        pipeline, info = data.load(dataset, "train[:90%]", image_size=args.image_size,
                                   batch_size=args.batch_size, training=True)
        pipeline = pipeline.map(lambda x, y: (x, tf.one_hot(y, info.num_classes))).repeat()
        validation, _ = data.load(dataset, "train[90%:]", image_size=args.image_size,
                                  batch_size=args.batch_size)
        validation = validation.map(lambda x, y: (x, tf.one_hot(y, info.num_classes)))
        model = kerasarch.resnet50(input_shape=(args.image_size, args.image_size, 3),
                                   classes=info.num_classes, augmentation="flip")
        model.compile(optimizer=keras.optimizers.SGD(0.0125, momentum=0.9, nesterov=True,
                                                     weight_decay=1e-4),
                      loss="categorical_crossentropy",
                      metrics=[keras.metrics.CategoricalAccuracy(name="top1"),
                               keras.metrics.TopKCategoricalAccuracy(5, name="top5")])
        start = time.perf_counter()
        model.fit(pipeline, steps_per_epoch=args.steps, epochs=args.epochs, verbose=0,
                  validation_data=validation)
        return time.perf_counter() - start

    def trainer() -> float:
        run_dir = Path(tempfile.mkdtemp()) / "run"
        result = train.fit(model="resnet50", dataset=dataset, batch_size=args.batch_size,
                           image_size=args.image_size, verbose=0, test_split="",
                           strategy="default", epochs=args.epochs, steps_per_epoch=args.steps,
                           run_dir=str(run_dir))
        shutil.rmtree(run_dir.parent, ignore_errors=True)
        return result.metrics["train_seconds"]

    # Warm the process up (thread pools, oneDNN kernels, allocator), then alternate the two
    # loops so neither always runs first; each run starts from a fresh model, so both
    # include tracing.
    warm = kerasarch.resnet50(input_shape=(args.image_size, args.image_size, 3), classes=10)
    warm.compile(optimizer="sgd", loss="categorical_crossentropy")
    warm.fit(tf.zeros((64, args.image_size, args.image_size, 3)), tf.one_hot([0] * 64, 10),
             batch_size=args.batch_size, epochs=1, verbose=0)
    del warm
    rounds = []
    for _ in range(args.rounds):
        keras.backend.clear_session()
        bare_seconds = bare()
        keras.backend.clear_session()
        trainer_seconds = trainer()
        rounds.append((bare_seconds, trainer_seconds))
        print(f"bare {images / bare_seconds:.2f} img/s, trainer {images / trainer_seconds:.2f} img/s")
    bare_seconds = sum(r[0] for r in rounds) / len(rounds)
    trainer_seconds = sum(r[1] for r in rounds) / len(rounds)

    bare_rate, trainer_rate = images / bare_seconds, images / trainer_seconds
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}",
        "model": "resnet50", "batch_size": args.batch_size, "image_size": args.image_size,
        "steps_per_epoch": args.steps, "epochs": args.epochs, "images": images,
        "bare_fit_images_per_second": round(bare_rate, 2),
        "trainer_images_per_second": round(trainer_rate, 2),
        "ratio": round(trainer_rate / bare_rate, 3),
        "rounds_seconds_bare_trainer": [[round(a, 2), round(b, 2)] for a, b in rounds],
    }
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "trainer_overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "trainer_overhead.md").write_text(
        "# Trainer overhead\n\n"
        f"`python benchmarks/trainer_overhead.py` on {report['machine']}: ResNet-50, batch "
        f"{args.batch_size}, {args.image_size} px, {args.epochs} epochs x {args.steps} steps "
        f"({images} images) each, one run, the same folder pipeline and validation split; "
        "both times include tracing a fresh model.\n\n"
        "| loop | images/s |\n|---|---:|\n"
        f"| bare `model.fit` | {bare_rate:.2f} |\n"
        f"| `kerasarch.train.fit` (checkpoint every epoch, history, curves, TensorBoard) | "
        f"{trainer_rate:.2f} |\n\n"
        f"Ratio trainer / bare: **{report['ratio']:.3f}** (mean time of {args.rounds} "
        "alternating rounds after a warm-up; both loops use SGD with weight decay and the "
        "same metrics).\n"
    )


if __name__ == "__main__":
    main()
