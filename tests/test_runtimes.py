"""ONNX Runtime and OpenVINO: exports that agree with Keras on real photos, the CLI flow, the extra."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import kerasarch
from kerasarch import export, extras
from kerasarch.export import onnx_session, openvino_model

from conftest import forward, raw_images

# The parity and CLI tests need the `runtimes` extra (in `dev`, so CI runs them); the
# missing-extra tests simulate its absence and run everywhere.
needs_runtimes = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("onnxruntime", "openvino", "tf2onnx", "onnx")),
    reason="the `runtimes` extra (onnxruntime, openvino, tf2onnx) is not installed",
)

SIZE = 64
TOLERANCE = 1e-4  # relative max difference in fp32


def relative_difference(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


@pytest.fixture(scope="module")
def resnet():
    """resnet18 at 64 px with in-graph augmentation and normalization; logits (a stricter check
    than near-uniform random-init probabilities)."""
    import keras

    keras.utils.set_random_seed(0)
    return kerasarch.resnet18(input_shape=(SIZE, SIZE, 3), classifier_activation=None,
                              augmentation="flip")


def _run(runtime: str, model, folder):
    if runtime == "onnx":
        return onnx_session(export.onnx(model, folder / "m.onnx"))
    return openvino_model(export.openvino(model, folder / "m.xml"))


@needs_runtimes
@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
@pytest.mark.parametrize("fold", [False, True], ids=["plain", "folded"])
def test_export_agrees_with_keras_on_real_photos(runtime, fold, resnet, tmp_path):
    model = export.fold_batchnorm(resnet) if fold else resnet
    layers = {layer.__class__.__name__ for layer in model.layers}
    assert "Normalize" in layers and ("FoldedBatchNorm" in layers) == fold
    photos = raw_images((SIZE, SIZE, 3), count=4)
    expected = forward(model, photos.astype(np.float32))
    predict = _run(runtime, model, tmp_path)
    actual = predict(photos.astype(np.float32))
    assert actual.shape == expected.shape == (4, 1000)
    assert relative_difference(actual, expected) < TOLERANCE
    assert predict(photos[:1].astype(np.float32)).shape == (1, 1000)  # any batch size


@needs_runtimes
def test_mixed_precision_model_exports_as_float32(resnet, tmp_path):
    import keras

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = kerasarch.resnet18(input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    finally:
        keras.config.set_dtype_policy("float32")
    mixed.set_weights(resnet.get_weights())
    photos = raw_images((SIZE, SIZE, 3), count=2).astype(np.float32)
    predict = onnx_session(export.onnx(mixed, tmp_path / "mixed.onnx"))
    assert relative_difference(predict(photos), forward(resnet, photos)) < TOLERANCE


def test_export_paths_are_checked(resnet, tmp_path):
    with pytest.raises(ValueError, match=r"`path`.*\.onnx"):
        export.onnx(resnet, tmp_path / "m.xml")
    with pytest.raises(ValueError, match=r"`path`.*\.xml"):
        export.openvino(resnet, tmp_path / "m.onnx")


@pytest.fixture(scope="module")
def lenet_file(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(1)
    path = tmp_path_factory.mktemp("model") / "lenet5.keras"
    kerasarch.lenet5().save(path)
    return path


@needs_runtimes
@pytest.mark.parametrize("fmt,file", [("onnx", "lenet5.onnx"), ("openvino", "lenet5.xml")])
def test_cli_export_then_run_in_the_runtime(fmt, file, lenet_file, tmp_path):
    import keras

    out = tmp_path / "export"
    done = subprocess.run(
        [sys.executable, "-m", "kerasarch", "export", str(lenet_file), "--format", fmt, "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"as {fmt} to {out / file}" in done.stdout
    images = raw_images((32, 32, 1), count=3).astype(np.float32)
    expected = forward(keras.saving.load_model(lenet_file), images)
    predict = onnx_session(out / file) if fmt == "onnx" else openvino_model(out / file)
    assert relative_difference(predict(images), expected) < TOLERANCE


@pytest.mark.parametrize("missing,call", [
    ("tf2onnx", lambda m, p: export.onnx(m, p / "m.onnx")),
    ("openvino", lambda m, p: export.openvino(m, p / "m.xml")),
    ("onnxruntime", lambda m, p: onnx_session(p / "m.onnx")),
])
def test_missing_runtime_names_the_extra(missing, call, monkeypatch, resnet, tmp_path):
    real = extras.importlib.import_module

    def import_module(name, *args):
        if name == missing:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real(name, *args)

    monkeypatch.setattr(extras.importlib, "import_module", import_module)
    with pytest.raises(extras.MissingExtraError, match=rf"`{missing}`.*kerasarch\[runtimes\]"):
        call(resnet, tmp_path)


def test_cli_missing_runtime_is_a_clear_error(monkeypatch, lenet_file, tmp_path, capsys):
    from kerasarch import cli

    real = extras.importlib.import_module
    monkeypatch.setattr(extras.importlib, "import_module",
                        lambda name, *a: (_ for _ in ()).throw(ImportError(name)) if name == "openvino"
                        else real(name, *a))
    status = cli.main(["export", str(lenet_file), "--format", "openvino", "--out", str(tmp_path)])
    assert status == 2
    assert "kerasarch[runtimes]" in capsys.readouterr().err
