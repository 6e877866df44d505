"""Export: SavedModels that TF Serving runs as is, LiteRT files, BatchNorm folding.

`saved_model(model, base, class_names)` writes `<base>/<model name>/<version>/`, the layout
TF Serving watches, with two signatures that both take *raw* images and run the data
pipeline's evaluation transform in the graph (so serving sees exactly the pixels
evaluation saw):

    serving_default   images: string [batch]  encoded JPEG / PNG / GIF / BMP
                      (REST clients send {"b64": "..."})
    predict_images    images: uint8 [batch, height, width, 3], any height and width

and both return `probabilities` (float32 [batch, classes]), `top_k_scores`,
`top_k_indices` and `top_k_labels` (class names). The SavedModel needs neither Python nor
kerasarch to run.

Input guards in the string signature: empty input, unknown formats, images whose *header*
claims more than `max_pixels` (checked before anything is decoded) or a zero size are
refused with an `InvalidArgumentError` that says what was wrong; truncated or corrupt data
fails in the decoder with its own message. Every image becomes 3-channel uint8 (grayscale,
RGBA, CMYK, 16-bit and palette images included; GIFs give their first frame).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerasarch.data import transforms
from kerasarch.layers import FoldedBatchNorm

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 50_000_000
FLATBUFFER_LIMIT = 2 ** 31  # a LiteRT flatbuffer holds at most 2 GiB
FORMATS = ("JPEG", "PNG", "GIF", "BMP")


def _bytes_at(head: tf.Tensor, start: int, count: int) -> tf.Tensor:
    return tf.cast(head[start:start + count], tf.int64)


def _big_endian(values: tf.Tensor) -> tf.Tensor:
    weights = tf.constant([256 ** i for i in range(int(values.shape[0]) - 1, -1, -1)], tf.int64)
    return tf.reduce_sum(values * weights)


def _little_endian(values: tf.Tensor) -> tf.Tensor:
    weights = tf.constant([256 ** i for i in range(int(values.shape[0]))], tf.int64)
    return tf.reduce_sum(values * weights)


def header_size(encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Reads `(format index, height, width)` from an image's header, without decoding it.

    Format index: 0 JPEG, 1 PNG, 2 GIF, 3 BMP, -1 unknown (then height = width = 0).
    For GIF this is the logical screen size; the frames' own descriptors are checked by
    giflib when it decodes (a frame larger than the screen is refused there).

    Args:
        encoded: Scalar `tf.string`.

    Returns:
        Three scalar `int64` tensors.
    """
    padded = encoded + tf.constant(b"\0" * 32)
    head = tf.io.decode_raw(tf.strings.substr(padded, 0, 32), tf.uint8)
    head = tf.reshape(head, [32])
    is_jpeg = tf.reduce_all(tf.equal(head[:3], [0xFF, 0xD8, 0xFF]))
    is_png = tf.reduce_all(tf.equal(head[:8], [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
    is_gif = tf.reduce_all(tf.equal(head[:4], [0x47, 0x49, 0x46, 0x38]))
    is_bmp = tf.reduce_all(tf.equal(head[:2], [0x42, 0x4D]))
    fmt = tf.where(is_jpeg, 0, tf.where(is_png, 1, tf.where(is_gif, 2, tf.where(is_bmp, 3, -1))))
    fmt = tf.cast(fmt, tf.int64)

    def jpeg():
        shape = tf.cast(tf.image.extract_jpeg_shape(encoded), tf.int64)
        return shape[0], shape[1]

    def png():
        return _big_endian(_bytes_at(head, 20, 4)), _big_endian(_bytes_at(head, 16, 4))

    def gif():
        return _little_endian(_bytes_at(head, 8, 2)), _little_endian(_bytes_at(head, 6, 2))

    def bmp():
        def signed(values):
            value = _little_endian(values)
            return tf.where(value >= 2 ** 31, value - 2 ** 32, value)

        return tf.abs(signed(_bytes_at(head, 22, 4))), tf.abs(signed(_bytes_at(head, 18, 4)))

    def unknown():
        return tf.constant(0, tf.int64), tf.constant(0, tf.int64)

    height, width = tf.switch_case(tf.cast(fmt + 1, tf.int32), [unknown, jpeg, png, gif, bmp])
    return fmt, height, width


def guarded_decode(encoded: tf.Tensor, max_pixels: int = DEFAULT_MAX_PIXELS) -> tf.Tensor:
    """Checks an encoded image's header, then decodes it to `uint8 [h, w, 3]`.

    Args:
        encoded: Scalar `tf.string`.
        max_pixels: Largest `height * width` accepted, as the header states it.

    Returns:
        The decoded image.

    Raises:
        tf.errors.InvalidArgumentError: Empty, unknown, oversized, zero-sized, truncated or
            corrupt input, with a message saying which.
    """
    checks = [
        tf.debugging.assert_positive(
            tf.strings.length(encoded), message="empty image: the request holds 0 bytes"
        )
    ]
    with tf.control_dependencies(checks):
        fmt, height, width = header_size(encoded)
    checks = [
        tf.debugging.assert_non_negative(
            fmt, message=f"unknown image format: expected {', '.join(FORMATS)} bytes"
        ),
        tf.debugging.assert_positive(
            tf.minimum(height, width), message="invalid image: its header gives a zero size"
        ),
        tf.debugging.assert_less_equal(
            height * width, tf.constant(max_pixels, tf.int64),
            message=f"image too large: its header claims more than {max_pixels} pixels "
            "(height x width); refused before decoding",
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(transforms.decode_image(encoded))


def _next_version(folder: Path) -> int:
    versions = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    return max(versions, default=0) + 1


def _image_size(model: keras.Model, image_size: int | None) -> int:
    height, width = model.input_shape[1:3]
    if image_size:
        return int(image_size)
    if height is None or height != width:
        raise ValueError(
            f"The model's input is {model.input_shape}; give `image_size` for the serving "
            "transform (the size images are resized and cropped to)."
        )
    return int(height)


def saved_model(
    model: keras.Model,
    base_path: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    top_k: int = 5,
    version: int | None = None,
    image_size: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    model_name: str | None = None,
    crop_fraction: float = transforms.CENTER_CROP_FRACTION,
) -> Path:
    """Writes a SavedModel for TF Serving at `<base_path>/<model_name>/<version>/`.

    Args:
        model: A model that takes raw pixels (kerasarch models do: their normalization is
            in the graph) and outputs class probabilities.
        base_path: TF Serving's model base path.
        class_names: Names for `top_k_labels`; default `"0"`, `"1"`, ...
        top_k: How many top classes the signatures return.
        version: Version folder; default one more than the newest already there.
        image_size: Serving resolution; default the model's input size.
        max_pixels: Largest image (height x width, from its header) the string signature
            accepts.
        model_name: Folder name; default `model.name`.
        crop_fraction: The evaluation transform's center crop (the data pipeline's 0.875;
            1.0 for sources evaluated uncropped, such as digits).

    Returns:
        The version folder written.

    Raises:
        ValueError: Bad `top_k`, `class_names` or a version that exists already.
    """
    classes = int(model.output_shape[-1])
    names = [str(i) for i in range(classes)] if class_names is None else [str(c) for c in class_names]
    if len(names) != classes:
        raise ValueError(f"{len(names)} class names for a model with {classes} outputs.")
    if not 1 <= top_k <= classes:
        raise ValueError(f"Invalid value for argument `top_k`: {top_k!r}. Expected 1..{classes}.")
    size = _image_size(model, image_size)
    folder = Path(base_path) / (model_name or model.name)
    version = version or _next_version(folder)
    path = folder / str(version)
    if path.exists():
        raise ValueError(f"{path} exists already; TF Serving versions are never overwritten.")
    labels = tf.constant(names)
    channels = model.input_shape[-1]

    def outputs(pixels):
        if channels == 1:
            pixels = tf.image.rgb_to_grayscale(pixels)
        probabilities = tf.cast(model(pixels, training=False), tf.float32)
        scores, indices = tf.math.top_k(probabilities, k=top_k)
        return {
            "probabilities": probabilities,
            "top_k_scores": scores,
            "top_k_indices": indices,
            "top_k_labels": tf.gather(labels, indices),
        }

    def from_bytes(images):
        pixels = tf.map_fn(
            lambda b: transforms.eval_transform(guarded_decode(b, max_pixels), size, crop_fraction),
            images, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
        )
        return outputs(pixels)

    def from_uint8(images):
        pixels = tf.map_fn(
            lambda image: transforms.eval_transform(image, size, crop_fraction),
            images, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
        )
        return outputs(pixels)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default", from_bytes,
        input_signature=[tf.TensorSpec([None], tf.string, name="images")],
    )
    archive.add_endpoint(
        "predict_images", from_uint8,
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")],
    )
    archive.write_out(str(path), verbose=False)
    _write_warmup(path, size)
    log.info("SavedModel written to %s", path)
    return path


def _write_warmup(path: Path, size: int) -> None:
    """TF Serving warmup records, when tensorflow-serving-api is installed."""
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError:
        return
    image = tf.io.encode_jpeg(tf.zeros([size, size, 3], tf.uint8)).numpy()
    extra = path / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(extra / "tf_serving_warmup_requests")) as writer:
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(signature_name="serving_default"),
        )
        request.inputs["images"].CopyFrom(tf.make_tensor_proto([image], tf.string))
        log_entry = prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)
        )
        writer.write(log_entry.SerializeToString())


# --- BatchNorm folding ---------------------------------------------------------------------


def _consumers(model: keras.Model, tensor) -> list[keras.layers.Layer]:
    found = []
    for layer in model.layers:
        try:
            inputs = layer.input
        except (AttributeError, ValueError):
            continue
        inputs = inputs if isinstance(inputs, list | tuple) else [inputs]
        if any(t is tensor for t in inputs):
            found.append(layer)
    return found


def fold_batchnorm(model: keras.Model) -> keras.Model:
    """Folds every BatchNormalization that directly follows a convolution into it.

    For inference only: `y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta` is one
    convolution with kernel `w * s` and bias `(b - mean) * s + beta`, `s = gamma /
    sqrt(var + eps)`. The folded BatchNorm becomes a pass-through `FoldedBatchNorm` layer
    (same name, so the graph keeps its layout), which TensorFlow's graph optimizer removes. A BatchNorm is
    folded only when the convolution feeds nothing else and has no activation.

    Args:
        model: A Functional model (its weights are not changed).

    Returns:
        A new model computing the same function at inference.
    """
    pairs: dict[str, keras.layers.Layer] = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization) or layer.axis not in (-1, [-1], [3], 3):
            continue
        source = next((c for c in model.layers if c.__class__ is keras.layers.Conv2D
                       and getattr(c, "output", None) is layer.input), None)
        if source is None or source.activation is not keras.activations.linear:
            continue
        if len(_consumers(model, source.output)) != 1:
            continue
        pairs[source.name] = layer
    folded_convs = {}
    for conv_name, bn in pairs.items():
        conv = model.get_layer(conv_name)
        kernel = np.asarray(conv.kernel)
        bias = np.asarray(conv.bias) if conv.use_bias else np.zeros(kernel.shape[-1], kernel.dtype)
        gamma = np.asarray(bn.gamma) if bn.scale else 1.0
        beta = np.asarray(bn.beta) if bn.center else 0.0
        scale = gamma / np.sqrt(np.asarray(bn.moving_variance) + bn.epsilon)
        folded_convs[conv_name] = (kernel * scale, (bias - np.asarray(bn.moving_mean)) * scale + beta)
    folded_bns = {bn.name for bn in pairs.values()}

    def clone(layer):
        if layer.name in folded_bns:
            return FoldedBatchNorm(name=layer.name)
        config = layer.get_config()
        if layer.name in folded_convs:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    folded = keras.models.clone_model(model, clone_function=clone)
    for layer in folded.layers:
        if layer.name in folded_convs:
            layer.set_weights(list(folded_convs[layer.name]))
        elif layer.name not in folded_bns and layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return folded


# --- LiteRT -----------------------------------------------------------------------------------

QUANTIZATIONS = ("float32", "float16", "int8")


def litert(
    model: keras.Model,
    path: str | os.PathLike,
    quantization: str = "float32",
    fold_bn: bool = False,
) -> Path:
    """Converts a model to a LiteRT (TFLite) flatbuffer.

    Args:
        model: The model; it takes raw pixels, as kerasarch models do.
        path: The `.tflite` file to write.
        quantization: `"float32"`, `"float16"` (weights stored as float16) or `"int8"`
            (dynamic-range: int8 weights, float activations).
        fold_bn: Fold BatchNorm into convolutions first.

    Returns:
        The file written.

    Raises:
        ValueError: Unknown quantization, or a model over the 2 GB flatbuffer limit.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"Invalid value for argument `quantization`: {quantization!r}. Expected one of {QUANTIZATIONS}."
        )
    if fold_bn:
        model = fold_batchnorm(model)
    bytes_per_weight = {"float32": 4, "float16": 2, "int8": 1}[quantization]
    size = sum(int(np.prod(w.shape)) for w in model.weights) * bytes_per_weight
    if size >= FLATBUFFER_LIMIT:
        raise ValueError(
            f"{model.name} has {size / 2 ** 30:.2f} GiB of {quantization} weights; a LiteRT "
            f"flatbuffer holds at most {FLATBUFFER_LIMIT / 2 ** 30:.2f} GiB. Use a smaller "
            "quantization ('float16', 'int8') or a smaller model."
        )
    # Through a SavedModel with a fixed batch of 1: converting the concrete function
    # directly captures the variables unreliably (NaN convolutions in TF 2.21).
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serve", lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([1, *model.input_shape[1:]], tf.float32, name="images")],
    )
    with tempfile.TemporaryDirectory() as tmp:
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serve"])
        if quantization == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantization == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        flatbuffer = converter.convert()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flatbuffer)
    return path
