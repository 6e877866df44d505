"""Export: the TF Serving SavedModel contract, input guards, BatchNorm folding, LiteRT."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasarch
from kerasarch import export
from kerasarch.data import transforms

from conftest import shared_data_or_skip

SIZE = 96
NAMES = [f"class {i}" for i in range(10)]


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(1)
    return kerasarch.resnet18(input_shape=(SIZE, SIZE, 3), classes=10)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    path = export.saved_model(model, base, class_names=NAMES, top_k=3)
    return base, path


@pytest.fixture(scope="module")
def served(exported):
    return tf.saved_model.load(str(exported[1]))


def _files():
    data = shared_data_or_skip()
    return [data / "photos" / "n01440764_tench.JPEG", data / "photos" / "cat.bmp",
            data / "odd" / "hopper.png", data / "odd" / "hopper.gif",
            data / "photos" / "n03417042_garbage_truck.JPEG"]  # grayscale JPEG


def test_tf_serving_layout_and_versions(exported, model):
    base, path = exported
    assert path == base / "resnet18" / "1" and (path / "saved_model.pb").exists()
    again = export.saved_model(model, base, class_names=NAMES)
    assert again == base / "resnet18" / "2"
    with pytest.raises(ValueError, match="exists already"):
        export.saved_model(model, base, class_names=NAMES, version=1)


def test_train_serve_parity_for_both_signatures(served, model):
    files = _files()
    encoded = [f.read_bytes() for f in files]
    # the evaluation pipeline + the Keras model
    pixels = np.stack([transforms.eval_transform_encoded(tf.constant(b), SIZE).numpy() for b in encoded])
    expected = model.predict(pixels, verbose=0)
    outputs = served.signatures["serving_default"](images=tf.constant(encoded))
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, rtol=0, atol=1e-4)
    for i, b in enumerate(encoded):
        image = transforms.decode_image(tf.constant(b))[None]
        one = served.signatures["predict_images"](images=image)
        np.testing.assert_allclose(one["probabilities"].numpy()[0], expected[i], rtol=0, atol=1e-4)
    top = np.argsort(-expected, axis=1)[:, :3]
    np.testing.assert_array_equal(outputs["top_k_indices"].numpy(), top)
    labels = [[v.decode() for v in row] for row in outputs["top_k_labels"].numpy()]
    assert labels == [[NAMES[j] for j in row] for row in top]
    np.testing.assert_allclose(outputs["top_k_scores"].numpy(), np.take_along_axis(expected, top, 1),
                               atol=1e-4)


LOADER = """
import json, sys
import tensorflow as tf
served = tf.saved_model.load(sys.argv[1])
images = [open(p, "rb").read() for p in sys.argv[2:]]
out = served.signatures["serving_default"](images=tf.constant(images))
assert not any(m.startswith("kerasarch") for m in sys.modules), "kerasarch was imported"
print(json.dumps(out["probabilities"].numpy().tolist()))
"""


def test_saved_model_runs_without_kerasarch(exported, served):
    files = [str(f) for f in _files()[:2]]
    proc = subprocess.run([sys.executable, "-c", LOADER, str(exported[1]), *files],
                          capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    probs = np.array(json.loads(proc.stdout.strip().splitlines()[-1]))
    here = served.signatures["serving_default"](
        images=tf.constant([Path(f).read_bytes() for f in files]))["probabilities"].numpy()
    np.testing.assert_allclose(probs, here, atol=1e-6)


def test_saved_model_cli_lists_both_signatures(exported):
    proc = subprocess.run(
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir",
         str(exported[1]), "--all"], capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    for signature in ("serving_default", "predict_images"):
        assert f"signature_def['{signature}']" in text
    assert "dtype: DT_STRING" in text and "dtype: DT_UINT8" in text
    assert "shape: (-1)" in text and "shape: (-1, -1, -1, 3)" in text
    for output in ("probabilities", "top_k_scores", "top_k_indices", "top_k_labels"):
        assert output in text


# --- input guards ---------------------------------------------------------------------------


def _png_claiming(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)))


def _bad_requests():
    data = shared_data_or_skip()
    tench = (data / "photos" / "n01440764_tench.JPEG").read_bytes()
    return {
        "png 60000x60000": (_png_claiming(60000, 60000), "image too large"),
        "zero bytes": (b"", "empty image"),
        "truncated jpeg": (tench[: len(tench) // 3], "JPEG"),
        "html page": (b"<html><body>Not found</body></html>", "unknown image format"),
        "random bytes": (np.random.default_rng(0).bytes(5000), "unknown image format"),
        # a 32x32 logical screen whose frame claims 65535 wide: giflib refuses the frame
        "gif bomb": ((data / "odd" / "decompression_bomb.gif").read_bytes(), "Invalid GIF data"),
        "gif zero width": ((data / "odd" / "zero_width.gif").read_bytes(), "zero size"),
    }


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2 ** 20


def test_bad_inputs_fail_clearly_and_the_server_keeps_answering(served):
    serve = served.signatures["serving_default"]
    good = tf.constant([_files()[0].read_bytes()])
    reference = serve(images=good)["probabilities"].numpy()
    for name, (payload, message) in _bad_requests().items():
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            serve(images=tf.constant([payload]))
            pytest.fail(f"{name} was accepted")
        np.testing.assert_allclose(serve(images=good)["probabilities"].numpy(), reference, atol=1e-6)
    # memory stays bounded under a stream of hostile requests
    bomb = tf.constant([_png_claiming(60000, 60000)])
    for _ in range(5):
        with pytest.raises(tf.errors.InvalidArgumentError):
            serve(images=bomb)
    before = _rss_mb()
    for _ in range(100):
        with pytest.raises(tf.errors.InvalidArgumentError):
            serve(images=bomb)
        serve(images=good)
    assert _rss_mb() - before < 100


@pytest.mark.parametrize(
    "filename",
    ["odd/pil_sample_cmyk.jpg", "odd/i_trns.png", "odd/tiff_16bit_RGB_target.png", "odd/p_16.png",
     "odd/pil123rgba.png", "odd/hopper_gray.jpg", "odd/iss634.gif", "odd/rgb32bf-rgba.bmp"],
)
def test_odd_but_valid_images_are_served(served, filename):
    payload = (shared_data_or_skip() / filename).read_bytes()
    out = served.signatures["serving_default"](images=tf.constant([payload]))
    np.testing.assert_allclose(out["probabilities"].numpy().sum(), 1.0, atol=1e-5)


def test_header_size_reader():
    from PIL import Image

    for path in _files():
        fmt, height, width = export.header_size(tf.constant(path.read_bytes()))
        image = Image.open(path)
        assert (int(height), int(width)) == (image.height, image.width) and int(fmt) >= 0
    fmt, height, width = export.header_size(tf.constant(_png_claiming(60000, 50000)))
    assert (int(fmt), int(height), int(width)) == (1, 50000, 60000)


# --- BatchNorm folding --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "vgg11_bn"])
def test_fold_batchnorm_keeps_the_outputs(name):
    model = kerasarch.get_model(name, input_shape=(64, 64, 3), include_top=False, pooling="avg")
    rng = np.random.default_rng(0)
    for layer in model.layers:  # non-trivial statistics, or folding would be a no-op
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c),
                               rng.normal(0, 0.2, c), rng.uniform(0.5, 2.0, c)])
    folded = export.fold_batchnorm(model)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    images = np.random.default_rng(1).integers(0, 256, (4, 64, 64, 3)).astype("float32")
    a, b = model.predict(images, verbose=0), folded.predict(images, verbose=0)
    assert np.max(np.abs(a - b)) < 1e-4 * max(1.0, np.abs(a).max())


# --- LiteRT ----------------------------------------------------------------------------------


def _run_litert(path, images):
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for image in images:
        interpreter.set_tensor(inp["index"], image[None].astype(np.float32))
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.stack(results)


# Conversion time goes with the weights: 1-2 minutes each for the BiT variants of
# 200M-400M parameters and 20-45 s for the deeper ResNets on this 2-core machine. The suite
# converts one variant of every block type (resnet18/34/50, resnet50v2, wide_resnet50_2,
# bit_r50x1, every VGG, AlexNet, LeNet-5); the deeper and wider siblings below use the same
# layers. All of them were converted and matched Keras when the test was written (bit_r50x3
# 62 s, bit_r152x2 78 s, bit_r101x3 108 s); KERASARCH_FULL_LITERT=1 converts them all again.
# bit_r152x4 exceeds the flatbuffer limit (next test).
SIBLINGS = {"resnet101", "resnet152", "resnet101v2", "resnet152v2", "wide_resnet101_2",
            "bit_r101x1", "bit_r50x3", "bit_r101x3", "bit_r152x2"}
SLOW_TO_CONVERT = {"bit_r152x4"} | (set() if os.environ.get("KERASARCH_FULL_LITERT") else SIBLINGS)
LITERT_MODELS = [n for n in kerasarch.list_models() if n not in SLOW_TO_CONVERT]


@pytest.mark.parametrize("name", LITERT_MODELS)
def test_litert_conversion_for_every_model(name, tmp_path):
    info = kerasarch.model_info(name)
    channels = info.input_shape[2]
    if info.fixed_size_with_top and info.params.total < 1_000_000:  # LeNet-5: whole model
        size = info.input_shape[0]
        model = kerasarch.get_model(name)
    else:  # the backbone at a small size: conversion time goes with the weights
        size = max(info.min_size, 64)
        model = kerasarch.get_model(name, include_top=False, pooling="avg",
                                    input_shape=(size, size, channels))
    path = export.litert(model, tmp_path / f"{name}.tflite")
    images = np.random.default_rng(0).integers(0, 256, (2, size, size, channels))
    expected = model.predict(images, verbose=0)
    np.testing.assert_allclose(_run_litert(path, images), expected,
                               atol=1e-4 * max(1.0, np.abs(expected).max()))


def test_litert_refuses_a_model_over_the_flatbuffer_limit(model, tmp_path, monkeypatch):
    # bit_r152x4's 3.5 GiB of float32 weights exceed the 2 GiB flatbuffer limit; the same
    # check on a small model with a small limit
    monkeypatch.setattr(export, "FLATBUFFER_LIMIT", 1_000_000)
    with pytest.raises(ValueError, match="at most"):
        export.litert(model, tmp_path / "too_big.tflite")
    assert not (tmp_path / "too_big.tflite").exists()
    assert kerasarch.model_info("bit_r152x4").params.total * 4 >= 2 ** 31


def test_cli_export_both_formats(model, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    out = tmp_path / "out"
    for args in (["--format", "saved_model"], ["--format", "litert", "--quantization", "int8"]):
        proc = subprocess.run(
            [sys.executable, "-m", "kerasarch", "export", str(path), "--out", str(out), *args,
             "--fold-batchnorm"], capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Exported" in proc.stdout
    assert (out / "resnet18" / "1" / "saved_model.pb").exists()
    tflite = out / "resnet18-int8.tflite"
    float_size = sum(int(np.prod(w.shape)) for w in model.weights) * 4
    assert 0 < tflite.stat().st_size < float_size / 2  # int8 weights: about a quarter


@pytest.mark.parametrize("quantization", ["float32", "float16"])
def test_litert_agrees_with_keras_on_real_photos(quantization, tmp_path):
    files = sorted((shared_data_or_skip() / "photos").glob("n0*.JPEG"))
    keras.utils.set_random_seed(0)
    model = kerasarch.resnet18()
    pixels = np.stack([transforms.eval_transform_encoded(tf.constant(f.read_bytes()), 224).numpy()
                       for f in files])
    expected = model.predict(pixels, verbose=0).argmax(-1)
    path = export.litert(model, tmp_path / f"resnet18-{quantization}.tflite", quantization)
    agreement = np.mean(_run_litert(path, pixels).argmax(-1) == expected)
    print(f"resnet18 {quantization}: {path.stat().st_size / 2**20:.1f} MiB, "
          f"top-1 agreement {agreement:.2%} on {len(files)} photos")
    assert agreement >= 0.99


def test_tf_serving_warmup_records(exported, served):
    pytest.importorskip("tensorflow_serving", reason="tensorflow-serving-api is a dev extra")
    from tensorflow_serving.apis import prediction_log_pb2

    records = exported[1] / "assets.extra" / "tf_serving_warmup_requests"
    entries = list(tf.data.TFRecordDataset(str(records)).as_numpy_iterator())
    assert len(entries) == 1
    log_entry = prediction_log_pb2.PredictionLog.FromString(entries[0])
    request = log_entry.predict_log.request
    assert request.model_spec.signature_name == "serving_default"
    images = tf.make_ndarray(request.inputs["images"])
    out = served.signatures["serving_default"](images=tf.constant(images))
    assert out["probabilities"].shape == (1, 10)
