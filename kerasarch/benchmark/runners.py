"""What the benchmark times: a model in each runtime, its peers, and the matmul yardstick.

Each maker returns `predict(images) -> numpy`, a function of one float32 numpy batch of raw
pixels in [0, 255] that runs to completion before it returns (TensorFlow's eager calls,
ONNX Runtime, OpenVINO and LiteRT are all synchronous on the CPU).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np

from kerasarch import registry

PRECISION_POLICY = {"fp32": "float32", "bf16": "mixed_bfloat16"}
RUNTIMES = ("tf", "litert", "onnx", "openvino")
Predict = Callable[[np.ndarray], np.ndarray]


def machine() -> dict[str, object]:
    """The machine the figures belong to: CPU model string, cores, TensorFlow version."""
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "arch": platform.machine(),
            "tensorflow": tf.__version__, "keras": keras.__version__}


@contextlib.contextmanager
def dtype_policy(precision: str) -> Iterator[None]:
    """Builds under `precision`'s Keras dtype policy (`"fp32"`, `"bf16"`), then restores the old one."""
    if precision not in PRECISION_POLICY:
        raise ValueError(f"Invalid value for argument `precision`: {precision!r}. "
                         f"Expected one of {tuple(PRECISION_POLICY)}.")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(PRECISION_POLICY[precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def input_shape(name: str, image_size: int | None) -> tuple[int, int, int]:
    """The model's input shape at `image_size` (default: its native size)."""
    height, width, channels = registry.model_info(name).input_shape
    return (image_size, image_size, channels) if image_size else (height, width, channels)


def build(name: str, image_size: int | None = None, precision: str = "fp32",
          weights_from: keras.Model | None = None) -> keras.Model:
    """A kerasarch model (random weights, or those of `weights_from`) under `precision`."""
    with dtype_policy(precision):
        model = registry.get_model(name, input_shape=input_shape(name, image_size))
    if weights_from is not None:
        model.set_weights(weights_from.get_weights())
    return model


def tf_predict(model: keras.Model, preprocess: Callable | None = None) -> Predict:
    """The model's inference step as a traced `tf.function` (what `model.predict` runs per batch)."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def step(images):
        images = preprocess(images) if preprocess is not None else images
        return tf.cast(model(images, training=False), tf.float32)

    return lambda images: step(tf.constant(images)).numpy()


def tf_train_step(model: keras.Model, images: np.ndarray, preprocess: Callable | None = None):
    """One optimizer step on a fixed batch (`model.train_on_batch`, SGD, sparse cross-entropy)."""
    import tensorflow as tf

    if preprocess is not None:
        inputs = keras.Input(model.input_shape[1:])
        model = keras.Model(inputs, model(preprocess(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    labels = tf.zeros([len(images)], tf.int32)
    images = tf.constant(images)
    return lambda: model.train_on_batch(images, labels)


def twin(name: str, image_size: int | None = None, precision: str = "fp32"):
    """The keras.applications model a variant reproduces (`twin=`), and its `preprocess_input`.

    Returns:
        `(model, preprocess)`, or None where the variant declares no twin.
    """
    found = twin_builder(name)
    if found is None:
        return None
    builder, preprocess = found
    with dtype_policy(precision):
        model = builder(weights=None, input_shape=input_shape(name, image_size))
    return model, preprocess


def twin_builder(name: str) -> tuple[Callable, Callable] | None:
    """The keras.applications builder a variant declares as its twin, and its `preprocess_input`."""
    declared = registry.model_info(name).twin
    return keras_application(declared) if declared else None


def keras_application(spec: str) -> tuple[Callable, Callable]:
    """The builder and `preprocess_input` a twin spec (`"module.Class"`) names in keras.applications."""
    module_name, cls = spec.rsplit(".", 1)
    module = importlib.import_module(f"keras.applications.{module_name}")
    # keras.applications.mobilenet_v3 exports only preprocess_input / decode_predictions: the
    # MobileNetV3Small/Large classes are public at the package level alone
    builder = getattr(module, cls, None) or getattr(keras.applications, cls)
    return builder, module.preprocess_input


def twin_label(name: str) -> str | None:
    """`"keras.applications ResNet50"`, or None without a twin."""
    declared = registry.model_info(name).twin
    return f"keras.applications {declared.rsplit('.', 1)[1]}" if declared else None


def litert_predict(model: keras.Model, batch_size: int, folder: Path,
                   quantization: str = "float32") -> Predict:
    """The model as a LiteRT flatbuffer (`quantization`: as `export.litert`), resized to `batch_size`."""
    import tensorflow as tf

    from kerasarch.export import litert

    path = litert(model, folder / f"{model.name}-{quantization}.tflite", quantization)
    with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation in favour of ai_edge_litert
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=os.cpu_count())
    source = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(source, [batch_size, *model.input_shape[1:]])
    interpreter.allocate_tensors()
    target = interpreter.get_output_details()[0]["index"]

    def predict(images: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(source, np.asarray(images, np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(target)

    return predict


def onnx_predict(model: keras.Model, folder: Path) -> Predict:
    """The model exported to ONNX, run by ONNX Runtime."""
    from kerasarch.export import onnx, onnx_session

    return onnx_session(onnx(model, folder / f"{model.name}.onnx"))


def openvino_predict(model: keras.Model, folder: Path, precision: str = "fp32") -> Predict:
    """The model exported to OpenVINO IR, compiled for the CPU at `precision`."""
    from kerasarch.export import openvino, openvino_model

    return openvino_model(openvino(model, folder / f"{model.name}.xml"), precision)


def runtime_precisions(runtime: str) -> tuple[str, ...]:
    """The precisions a runtime computes in on this machine."""
    if runtime == "tf":
        return ("fp32", "bf16")
    if runtime == "openvino":
        from kerasarch.export.openvino import bf16_supported

        return ("fp32", "bf16") if bf16_supported() else ("fp32",)
    return ("fp32",)


def matmul(precision: str, size: int = 2048) -> Callable[[], object]:
    """One `size` x `size` matrix product in TensorFlow at `precision`: the FLOP-rate yardstick."""
    import tensorflow as tf

    dtype = tf.bfloat16 if precision == "bf16" else tf.float32
    a = tf.random.stateless_normal([size, size], seed=[0, 1], dtype=dtype)
    b = tf.random.stateless_normal([size, size], seed=[1, 2], dtype=dtype)
    return tf.function(lambda: tf.matmul(a, b))


def openvino_matmul(size: int = 2048) -> Callable[[], object]:
    """The same fp32 product compiled by OpenVINO's CPU plugin: the yardstick of its own kernels.

    OpenVINO's convolutions can outrun TensorFlow's matmul on the same cores; this rate says
    how far its fp32 kernels go on this machine (the MFU of the OpenVINO runtime).

    Raises:
        MissingExtraError: openvino is not installed (the `runtimes` extra).
    """
    from kerasarch.extras import require

    ov = require("openvino", "OpenVINO inference")
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    left = ops.parameter([size, size], np.float32)
    right = ops.constant(rng.standard_normal((size, size), np.float32))
    graph = ov.Model([ops.matmul(left, right, False, False)], [left], "matmul")
    request = ov.Core().compile_model(graph, "CPU", {"PERFORMANCE_HINT": "LATENCY"}).create_infer_request()
    values = rng.standard_normal((size, size), np.float32)
    return lambda: request.infer([values])
