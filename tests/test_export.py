"""Export: the TF Serving SavedModel contract, input guards, BatchNorm folding, LiteRT."""

from __future__ import annotations

import importlib
import io
import json
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasarch
from kerasarch import export
from kerasarch.data import transforms

from conftest import COVERED_BY, FULL_SUITE, forward, shared_data_or_skip

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


def test_the_cli_default_pixel_limit_is_the_exporters():
    # the CLI keeps its own copy so that `kerasarch export --help` needs no TensorFlow
    from kerasarch import cli_export

    assert cli_export.DEFAULT_MAX_PIXELS == export.DEFAULT_MAX_PIXELS


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


# The one entry in a SavedModel's variables checkpoint that is no weight: the serialized
# object graph (a scalar string).
NON_WEIGHT_ENTRIES = {"_CHECKPOINTABLE_OBJECT_GRAPH"}


def _stored_values(path: Path) -> int:
    """How many values the SavedModel's variables checkpoint stores, its object graph aside."""
    entries = tf.train.list_variables(str(path / "variables" / "variables"))
    assert NON_WEIGHT_ENTRIES <= {name for name, _ in entries}
    return sum(int(np.prod(shape)) for name, shape in entries if name not in NON_WEIGHT_ENTRIES)


def _assert_weights_stored_once(path: Path, model: keras.Model, served) -> None:
    params = model.count_params()
    assert _stored_values(path) == params
    data_size = sum(f.stat().st_size for f in (path / "variables").glob("variables.data-*"))
    assert abs(data_size - 4 * params) <= 0.02 * 4 * params, (data_size, 4 * params)
    # the revived object still lists the weights, each once
    assert len(served.variables) == len(model.weights)
    assert sum(int(np.prod(v.shape)) for v in served.variables) == params
    assert len(served.trainable_variables) == len(model.trainable_weights)


def test_saved_model_stores_each_weight_once(exported, served, model):
    # ResNet-18 used to write 2 x 11.2M values (87 MB at 224 px, against 43 MB as LiteRT)
    _assert_weights_stored_once(exported[1], model, served)


def test_export_of_a_model_loaded_from_a_keras_file(tmp_path):
    """The CLI exports what `keras.saving.load_model` returns: a compiled, trained model."""
    keras.utils.set_random_seed(2)
    model = kerasarch.lenet5()  # 32x32 grayscale: the signatures convert RGB to gray
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(np.random.default_rng(0).integers(0, 256, (8, 32, 32, 1)).astype("float32"),
              np.arange(8) % 10, epochs=1, verbose=0)
    model.save(tmp_path / "lenet5.keras")
    loaded = keras.saving.load_model(tmp_path / "lenet5.keras")
    assert loaded.optimizer.variables  # the optimizer state came back, and is not exported
    path = export.saved_model(loaded, tmp_path / "serving", top_k=3, crop_fraction=1.0)
    served = tf.saved_model.load(str(path))
    _assert_weights_stored_once(path, model, served)
    images = np.random.default_rng(1).integers(0, 256, (3, 40, 48, 3)).astype("uint8")
    pixels = np.stack([transforms.eval_transform(tf.constant(i), 32, 1.0).numpy() for i in images])
    expected = model.predict(tf.image.rgb_to_grayscale(pixels), verbose=0)
    out = served.signatures["predict_images"](images=tf.constant(images))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    png = tf.io.encode_png(images[0]).numpy()
    out = served.signatures["serving_default"](images=tf.constant([png]))
    np.testing.assert_allclose(out["probabilities"].numpy()[0], expected[0], atol=1e-5)


# --- input guards ---------------------------------------------------------------------------


def _png_claiming(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)))


def _webp_claiming(width: int, height: int) -> bytes:
    """A VP8X (extended WebP) header whose canvas is `width x height`, with no image data."""
    chunk = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (width - 1).to_bytes(3, "little") \
        + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _bad_requests():
    """`{name: (payload, the message expected for it alone in a request)}`."""
    data = shared_data_or_skip()
    tench = (data / "photos" / "n01440764_tench.JPEG").read_bytes()
    webp = (data / "odd" / "hopper.webp").read_bytes()
    return {
        "png 60000x60000": (_png_claiming(60000, 60000), "image 1 of 1: image too large"),
        "webp 60000x60000": (_webp_claiming(60000, 60000), "image 1 of 1: image too large"),
        "zero bytes": (b"", "image 1 of 1: empty image"),
        "truncated jpeg": (tench[: len(tench) // 3], "image 1 of 1: truncated image: the JPEG data"),
        "truncated png": ((data / "odd" / "truncated_image.png").read_bytes(),
                          "image 1 of 1: truncated image: the PNG data"),
        "truncated webp": (webp[: len(webp) // 2], "image 1 of 1: truncated image: the WebP data"),
        "html page": (b"<html><body>Not found</body></html>", "image 1 of 1: unknown image format"),
        "random bytes": (np.random.default_rng(0).bytes(5000), "image 1 of 1: unknown image format"),
        # a 32x32 logical screen whose frame claims 65535 wide: giflib refuses the frame (its
        # own message, which cannot say which image of a batch it was)
        "gif bomb": ((data / "odd" / "decompression_bomb.gif").read_bytes(), "Invalid GIF data"),
        "gif zero width": ((data / "odd" / "zero_width.gif").read_bytes(), "image 1 of 1: invalid image: "
                           "its header gives a zero size"),
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
     "odd/pil123rgba.png", "odd/hopper_gray.jpg", "odd/iss634.gif", "odd/rgb32bf-rgba.bmp",
     "odd/hopper.webp", "odd/flower.jpg", "odd/icc_profile_big.jpg", "odd/junk_jpeg_header.jpg",
     "odd/truncated_app14.jpg", "odd/apng_mode_16bit.png", "odd/png_decompression_dos.png"],
)
def test_odd_but_valid_images_are_served(served, filename):
    payload = (shared_data_or_skip() / filename).read_bytes()
    out = served.signatures["serving_default"](images=tf.constant([payload]))
    np.testing.assert_allclose(out["probabilities"].numpy().sum(), 1.0, atol=1e-5)


def test_a_bad_image_in_a_batch_is_named_by_its_index(served):
    serve = served.signatures["serving_default"]
    tench = _files()[0].read_bytes()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="image 3 of 4: truncated image: the JPEG data ends before its end marker"):
        serve(images=tf.constant([tench, tench, tench[: len(tench) // 2], tench]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="image 2 of 3: image too large"):
        serve(images=tf.constant([tench, _png_claiming(60000, 60000), b""]))  # the first refusal
    with pytest.raises(tf.errors.InvalidArgumentError, match="image 4 of 4: empty image"):
        serve(images=tf.constant([tench, tench, tench, b""]))
    assert serve(images=tf.constant([tench] * 4))["probabilities"].shape == (4, 10)


def _header(payload: bytes) -> list[int]:
    return [int(v) for v in export.header_size(tf.constant(payload))]


def test_header_size_reader():
    from PIL import Image

    data = shared_data_or_skip()
    webps = [data / "odd" / "hopper.webp", data / "odd" / "transparent.webp", data / "odd" / "iss634.webp"]
    for path in [*_files(), *webps]:
        fmt, height, width = export.header_size(tf.constant(path.read_bytes()))
        image = Image.open(path)
        assert (int(height), int(width)) == (image.height, image.width), path.name
        assert export.FORMATS[int(fmt)] == ("JPEG" if image.format == "MPO" else image.format).replace(
            "WEBP", "WebP"), path.name
    assert _header(_png_claiming(60000, 50000)) == [1, 50000, 60000]
    assert _header(_webp_claiming(60000, 50000)) == [4, 50000, 60000]
    # the lossy (VP8) and lossless (VP8L) bitstream headers, written by Pillow at odd sizes
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 203, 3), dtype=np.uint8))
    for options in ({"lossless": False}, {"lossless": True}):
        buffer = io.BytesIO()
        image.save(buffer, format="WEBP", **options)
        chunk = buffer.getvalue()[12:16]
        assert chunk == (b"VP8L" if options["lossless"] else b"VP8 ")
        assert _header(buffer.getvalue()) == [4, 37, 203]


def test_truncation_check_agrees_with_the_decoders():
    """Every odd file TensorFlow decodes passes; the truncated ones are caught before decoding."""
    odd = shared_data_or_skip() / "odd"
    for path in sorted(p for p in odd.iterdir() if p.is_file()):
        encoded = tf.constant(path.read_bytes())
        fmt = export.header_size(encoded)[0]
        try:
            tf.io.decode_image(encoded, expand_animations=False)
            decodes = True
        except tf.errors.InvalidArgumentError:
            decodes = False
        cut = bool(export.truncated(encoded, fmt)) if int(fmt) >= 0 else False
        assert not (decodes and cut), f"{path.name} decodes but was called truncated"
    for name in ("truncated_jpeg.jpg", "truncated_image.png", "truncated_end_chunk.png", "broken.png"):
        encoded = tf.constant((odd / name).read_bytes())
        assert bool(export.truncated(encoded, export.header_size(encoded)[0])), name


def test_webp_is_served(served):
    data = shared_data_or_skip()
    payload = (data / "odd" / "hopper.webp").read_bytes()
    out = served.signatures["serving_default"](images=tf.constant([payload]))
    image = transforms.decode_image(tf.constant(payload))[None]
    expected = served.signatures["predict_images"](images=image)["probabilities"].numpy()
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-6)


def test_webp_with_alpha_is_served(served):
    # TensorFlow's decode_image refuses RGBA WebP with channels=3; the shared decoder
    # (kerasarch.data.decode) reads it, in training and in serving alike.
    payload = (shared_data_or_skip() / "odd" / "transparent.webp").read_bytes()
    out = served.signatures["serving_default"](images=tf.constant([payload]))
    np.testing.assert_allclose(out["probabilities"].numpy().sum(), 1.0, atol=1e-5)


def test_exif_orientation_is_applied_when_serving(served):
    """A phone photo's EXIF orientation: served upright, as Pillow's exif_transpose shows it."""
    from PIL import Image, ImageOps

    odd = shared_data_or_skip() / "odd"
    for name in ("hopper_orientation_3.jpg", "hopper_orientation_6.jpg"):
        with Image.open(odd / name) as image:
            upright = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        payload = (odd / name).read_bytes()
        from_bytes = served.signatures["serving_default"](images=tf.constant([payload]))
        from_pixels = served.signatures["predict_images"](images=tf.constant(upright[None]))
        stored = served.signatures["predict_images"](
            images=tf.io.decode_jpeg(payload, channels=3)[None])
        got, want = from_bytes["probabilities"].numpy(), from_pixels["probabilities"].numpy()
        np.testing.assert_allclose(got, want, atol=2e-3)
        # and the file as stored (rotated) gives a different answer: the test can tell
        assert np.abs(stored["probabilities"].numpy() - want).max() > 10 * np.abs(got - want).max()


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
    a, b = forward(model, images), forward(folded, images)
    assert np.max(np.abs(a - b)) < 1e-4 * max(1.0, np.abs(a).max())


OLD_FOLDED_FILE = """
import sys, keras, numpy as np
import kerasarch
model = keras.saving.load_model(sys.argv[1])
print(type(model.get_layer("bn")).__name__, model.predict(np.ones((1, 8, 8, 3)), verbose=0).sum())
"""


def test_folded_models_load_after_a_plain_import_kerasarch(tmp_path):
    """FoldedBatchNorm is registered by `import kerasarch` alone, as the other layers are."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(inputs)
    outputs = keras.layers.BatchNormalization(name="bn")(x)
    folded = export.fold_batchnorm(keras.Model(inputs, outputs))
    old = tmp_path / "folded.keras"
    folded.save(old)
    with zipfile.ZipFile(old) as archive:
        config = json.loads(archive.read("config.json"))
    bn = next(layer for layer in config["config"]["layers"] if layer["name"] == "bn")
    assert bn["registered_name"] == "kerasarch>FoldedBatchNorm"
    proc = subprocess.run([sys.executable, "-c", OLD_FOLDED_FILE, str(old)], capture_output=True,
                          text=True, timeout=300, cwd=Path(kerasarch.__file__).parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    name, total = proc.stdout.split()[-2:]
    expected = folded.predict(np.ones((1, 8, 8, 3)), verbose=0).sum()
    assert name == "FoldedBatchNorm" and abs(float(total) - expected) < 1e-4


# --- LiteRT ----------------------------------------------------------------------------------


def _run_litert(path, images, threads: int | None = None):
    interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for image in images:
        interpreter.set_tensor(inp["index"], image[None].astype(np.float32))
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.stack(results)


# Conversion time goes with the depth of the graph (20-110 s a model on this 2-core
# machine, even for a backbone at 64 px). The default run converts one model for each set of
# layer types, the custom layers included: LRN (googlenet), weight-standardized convolutions
# (bit_r50x1), GroupedDepthwiseConv2D and LayerScale (convnext_tiny), squeeze-excitation,
# swish and stochastic depth (efficientnet_b0), hard-swish (mobilenet_v3_small), depthwise
# convolutions (mobilenet). The other models are made of the same layer types (ResNets,
# DenseNets, Inceptions; ScaledResidual is an add and a multiply); all of them were
# converted and matched Keras in the full run that wrote this rule, which
# `KERASARCH_FULL_SUITE=1` repeats. bit_r152x4 exceeds the flatbuffer limit (next test).
LITERT_DISTINCT = {"lenet5", "alexnet", "vgg11", "vgg11_bn", "resnet18", "bit_r50x1", "googlenet",
                   "mobilenet", "mobilenet_v3_small", "convnext_tiny", "efficientnet_b0"}
LITERT_MODELS = [n for n in kerasarch.list_models() if n != "bit_r152x4"
                 and (n in LITERT_DISTINCT or (FULL_SUITE and n not in COVERED_BY))]


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
    expected = forward(model, images)
    np.testing.assert_allclose(_run_litert(path, images), expected,
                               atol=1e-4 * max(1.0, np.abs(expected).max()))


def test_litert_refuses_a_model_over_the_flatbuffer_limit(model, tmp_path, monkeypatch):
    # bit_r152x4's 3.5 GiB of float32 weights exceed the 2 GiB flatbuffer limit; the same
    # check on a small model with a small limit (the module, which the function shadows)
    monkeypatch.setattr(importlib.import_module("kerasarch.export.litert"), "FLATBUFFER_LIMIT", 1_000_000)
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


@pytest.fixture(scope="module")
def photos_through_keras():
    """ResNet-18, the shared real photos as its eval transform gives them, and its top-1."""
    files = sorted((shared_data_or_skip() / "photos").glob("n0*.JPEG"))
    keras.utils.set_random_seed(0)
    model = kerasarch.resnet18()
    pixels = np.stack([transforms.eval_transform_encoded(tf.constant(f.read_bytes()), 224).numpy()
                       for f in files])
    # called directly, batch by batch: `predict` would first trace a function for one use
    expected = np.concatenate([forward(model, pixels[i:i + 32]) for i in range(0, len(pixels), 32)])
    return model, pixels, expected.argmax(-1)


@pytest.mark.parametrize("quantization", ["float32", "float16"])
def test_litert_agrees_with_keras_on_real_photos(quantization, photos_through_keras, tmp_path):
    model, pixels, expected = photos_through_keras
    path = export.litert(model, tmp_path / f"resnet18-{quantization}.tflite", quantization)
    agreement = np.mean(_run_litert(path, pixels, threads=2).argmax(-1) == expected)
    print(f"resnet18 {quantization}: {path.stat().st_size / 2**20:.1f} MiB, "
          f"top-1 agreement {agreement:.2%} on {len(pixels)} photos")
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
