"""Export benchmarks, side by side in one run: LiteRT sizes and agreement, BatchNorm
folding speed-up, SavedModel throughput beside the Keras model.

    python benchmarks/export_bench.py

1. LiteRT: resnet18 and resnet50 converted to float32, float16 and dynamic-range int8;
   file size and top-1 agreement with the Keras model on the real photos of
   ../shared/data/photos (random-init weights: the ImageNet files cannot be downloaded on
   these machines, so near-ties make the agreement a conservative figure).
2. BatchNorm folding: resnet50 inference images/s at batch 8, folded and not.
3. SavedModel (`serving_default`, JPEG bytes in) images/s at batch 1, 8 and 32 for resnet50
   and vgg16, beside the same Keras model called directly on already-decoded pixels
   (`model(x, training=False)` in a `tf.function`).

Writes benchmarks/results/export.md and .json.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import kerasarch
from kerasarch import export
from kerasarch.data import transforms

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "photos"
RESULTS = ROOT / "benchmarks" / "results"


def timed(fn, repeats: int) -> float:
    fn()  # warm-up / trace
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def litert_section(files: list[Path], work: Path) -> list[dict]:
    rows = []
    for name in ("resnet18", "resnet50"):
        keras.utils.set_random_seed(0)
        model = kerasarch.get_model(name)
        pixels = np.stack([transforms.eval_transform_encoded(tf.constant(f.read_bytes()), 224).numpy()
                           for f in files])
        reference = model.predict(pixels, verbose=0).argmax(-1)
        for quantization in export.QUANTIZATIONS:
            path = export.litert(model, work / f"{name}-{quantization}.tflite", quantization)
            interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=os.cpu_count())
            interpreter.allocate_tensors()
            inp = interpreter.get_input_details()[0]["index"]
            out = interpreter.get_output_details()[0]["index"]
            predicted, start = [], time.perf_counter()
            for image in pixels:
                interpreter.set_tensor(inp, image[None])
                interpreter.invoke()
                predicted.append(int(interpreter.get_tensor(out)[0].argmax()))
            seconds = (time.perf_counter() - start) / len(pixels)
            rows.append({
                "model": name, "quantization": quantization,
                "size_mib": round(path.stat().st_size / 2 ** 20, 1),
                "top1_agreement": round(float(np.mean(np.array(predicted) == reference)), 4),
                "ms_per_image": round(1000 * seconds, 1),
            })
            print(rows[-1], flush=True)
    return rows


def folding_section(batch: int = 8, repeats: int = 5) -> dict:
    model = kerasarch.resnet50()
    folded = export.fold_batchnorm(model)
    x = tf.constant(np.random.default_rng(0).integers(0, 256, (batch, 224, 224, 3)), tf.float32)
    results = {}
    for label, m in (("unfolded", model), ("folded", folded)):
        fn = tf.function(lambda x, m=m: m(x, training=False))
        results[label] = batch / timed(lambda fn=fn: fn(x), repeats)
    difference = float(np.max(np.abs(model.predict(x, verbose=0) - folded.predict(x, verbose=0))))
    row = {"batch": batch, "images_per_second": {k: round(v, 2) for k, v in results.items()},
           "speedup": round(results["folded"] / results["unfolded"], 3),
           "max_abs_difference": difference}
    print(row, flush=True)
    return row


def serving_section(files: list[Path], work: Path) -> list[dict]:
    rows = []
    encoded = [f.read_bytes() for f in files]
    for name in ("resnet50", "vgg16"):
        model = kerasarch.get_model(name)
        path = export.saved_model(model, work / "serving", top_k=5)
        served = tf.saved_model.load(str(path)).signatures["serving_default"]
        direct = tf.function(lambda x, model=model: model(x, training=False))
        for batch in (1, 8, 32):
            repeats = max(1, 32 // batch) if name == "resnet50" else max(1, 8 // batch)
            images = tf.constant([encoded[i % len(encoded)] for i in range(batch)])
            pixels = tf.stack([transforms.eval_transform_encoded(b, 224) for b in images])
            saved_rate = batch / timed(lambda images=images, f=served: f(images=images), repeats)
            keras_rate = batch / timed(lambda pixels=pixels, f=direct: f(pixels), repeats)
            rows.append({"model": name, "batch": batch,
                         "saved_model_images_per_second": round(saved_rate, 2),
                         "keras_images_per_second": round(keras_rate, 2),
                         "ratio": round(saved_rate / keras_rate, 3)})
            print(rows[-1], flush=True)
        keras.backend.clear_session()
    return rows


def main() -> None:
    files = sorted(PHOTOS.glob("n0*.JPEG"))
    if not files:
        raise SystemExit(f"no photos in {PHOTOS}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}",
            "photos": len(files),
            "litert": litert_section(files, work),
            "batchnorm_folding": folding_section(),
            "serving": serving_section(files, work),
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "export.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# Export benchmarks", "",
             f"`python benchmarks/export_bench.py` on {report['machine']}, one run.", "",
             f"## LiteRT ({len(files)} real photos, random-init weights)", "",
             "| model | quantization | size (MiB) | top-1 agreement with Keras | ms / image |",
             "|---|---|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['quantization']} | {r['size_mib']} | {r['top1_agreement']:.2%} | "
              f"{r['ms_per_image']} |" for r in report["litert"]]
    fold = report["batchnorm_folding"]
    lines += ["", "## BatchNorm folding (resnet50, batch 8)", "",
              "| graph | images/s |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in fold["images_per_second"].items()]
    lines += ["", f"Speed-up {fold['speedup']:.3f}x; largest output difference "
              f"{fold['max_abs_difference']:.2e}.", "",
              "## SavedModel (JPEG bytes in) beside the Keras model (decoded pixels in)", "",
              "| model | batch | SavedModel images/s | Keras images/s | ratio |",
              "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['batch']} | {r['saved_model_images_per_second']} | "
              f"{r['keras_images_per_second']} | {r['ratio']} |" for r in report["serving"]]
    (RESULTS / "export.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
