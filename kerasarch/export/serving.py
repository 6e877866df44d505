"""The TF Serving SavedModel: its two signatures and the guarded decoding of raw bytes."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from kerasarch import heads
from kerasarch.data import transforms
from kerasarch.export.headers import FORMATS, header_size, truncated

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 50_000_000


def _decode(encoded: tf.Tensor) -> tf.Tensor:
    """The one decoder the string signature uses: encoded bytes to `uint8 [h, w, 3]`.

    The training pipeline's decoder, so serving decodes exactly as training did.
    """
    return transforms.decode_image(encoded)


def _refuse_unless(condition: tf.Tensor, reason: str | tf.Tensor, label: tf.Tensor | str | None):
    """An assertion whose message is `"<label>: <reason>"` (just the reason without a label)."""
    message = reason if label is None else tf.strings.join([label, ": ", reason])
    return tf.debugging.Assert(condition, [message])


def guarded_decode(
    encoded: tf.Tensor,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    label: str | tf.Tensor | None = None,
) -> tf.Tensor:
    """Checks an encoded image's header, then decodes it to `uint8 [h, w, 3]`.

    Refused before decoding: empty input, an unknown format, a header giving a zero size or
    more than `max_pixels`, and data that ends before its format's end marker (see
    `headers.truncated`). Corrupt data that passes these fails in the decoder with the
    decoder's own message.

    Args:
        encoded: Scalar `tf.string`.
        max_pixels: Largest `height * width` accepted, as the header states it.
        label: Names the image in the error messages (the string signature passes
            `"image 3 of 4"`); none by default.

    Returns:
        The decoded image.

    Raises:
        tf.errors.InvalidArgumentError: Empty, unknown, oversized, zero-sized, truncated or
            corrupt input, with a message saying which (and `label`).
    """
    checks = [_refuse_unless(tf.strings.length(encoded) > 0,
                             "empty image: the request holds 0 bytes", label)]
    with tf.control_dependencies(checks):
        fmt, height, width = header_size(encoded)
    checks = [
        _refuse_unless(fmt >= 0, f"unknown image format: expected {', '.join(FORMATS)} bytes", label),
        _refuse_unless(tf.minimum(height, width) > 0,
                       "invalid image: its header gives a zero size", label),
        _refuse_unless(
            height * width <= max_pixels,
            f"image too large: its header claims more than {max_pixels} pixels (height x width); "
            "refused before decoding", label,
        ),
    ]
    with tf.control_dependencies(checks):
        reason = tf.strings.join(["truncated image: the ", tf.gather(FORMATS, fmt),
                                  " data ends before its end marker"])
        cut = _refuse_unless(tf.logical_not(truncated(encoded, fmt)), reason, label)
    with tf.control_dependencies([cut]):
        return tf.identity(_decode(encoded))


def _decode_batch(images: tf.Tensor, size: int, crop_fraction: float, max_pixels: int) -> tf.Tensor:
    """Encoded images `[batch]` to evaluation-transformed pixels; errors name the image."""
    count = tf.size(images)

    def one(args):
        index, encoded = args
        label = tf.strings.format("image {} of {}", (index + 1, count))
        return transforms.eval_transform(guarded_decode(encoded, max_pixels, label), size, crop_fraction)

    return tf.map_fn(one, (tf.range(count), images),
                     fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))


def new_archive(model: keras.Model) -> keras.export.ExportArchive:
    """A `keras.export.ExportArchive` that stores each of the model's weights once.

    `archive.track(model)` lists the model's `keras.Variable`s while the endpoints capture
    the `tf.Variable`s inside them, and `tf.saved_model.save` writes the two as separate
    objects: every weight twice (Keras 3.15 with TF 2.21). Collecting the `tf.Variable`s
    themselves keeps the revived object's `variables`, `trainable_variables` and
    `non_trainable_variables` lists, each weight stored once. Only weights are listed:
    seed-generator states (Dropout) are no part of inference.

    Args:
        model: A built model.

    Returns:
        The archive, without endpoints.
    """
    archive = keras.export.ExportArchive()
    for name, weights in (("variables", model.weights),
                          ("trainable_variables", model.trainable_weights),
                          ("non_trainable_variables", model.non_trainable_weights)):
        unique = {id(w): w.value for w in weights}  # a shared layer lists its weights twice
        if not all(isinstance(v, tf.Variable) for v in unique.values()):
            raise TypeError("kerasarch.export needs the TensorFlow backend (tf.Variable weights).")
        archive.add_variable_collection(name, list(unique.values()))
    return archive


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
            in the graph) and outputs class probabilities; built in Python or loaded with
            `keras.saving.load_model`.
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
    model = heads.main_output(model)  # auxiliary classifiers serve nothing
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
        return outputs(_decode_batch(images, size, crop_fraction, max_pixels))

    def from_uint8(images):
        pixels = tf.map_fn(
            lambda image: transforms.eval_transform(image, size, crop_fraction),
            images, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
        )
        return outputs(pixels)

    archive = new_archive(model)
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
