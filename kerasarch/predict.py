"""`kerasarch predict`: the top-k labels of image files, from a run, a `.keras` file or a name.

Images go through exactly the evaluation path (`data.decode_image`, then
`data.eval_transform` at the run's image size and crop), converted to the model's channel
count, so a prediction here agrees with `kerasarch evaluate` and the serving export.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerasarch import data, heads, registry
from kerasarch import weights as weights_module

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The result for one image file.

    Attributes:
        path: The file as given.
        top: `(label, score)` pairs, best first; empty when the file could not be read.
        error: Why the file could not be read, or None.
    """

    path: str
    top: tuple[tuple[str, float], ...] = ()
    error: str | None = None


@dataclasses.dataclass
class Predictor:
    """A model with what it needs to read images the way it was evaluated.

    Attributes:
        model: The Keras model (raw pixels in, class scores out).
        class_names: Label of each output; None: the output index is the label.
        image_size: Input height and width.
        crop_fraction: Center-crop share of the resized shorter side (1.0: none).
    """

    model: keras.Model
    class_names: Sequence[str] | None
    image_size: int
    crop_fraction: float = data.transforms.CENTER_CROP_FRACTION

    def load_image(self, path: str | os.PathLike) -> tf.Tensor:
        """Decodes and transforms one file; raises `tf.errors.OpError` if it cannot."""
        image = data.eval_transform(
            data.decode_image(tf.io.read_file(str(path))), self.image_size, self.crop_fraction
        )
        if self.model.input_shape[-1] == 1:
            image = tf.image.rgb_to_grayscale(image)
        return image

    def scores(self, images: tf.Tensor) -> np.ndarray:
        """Class probabilities of a batch (softmax applied where the model gives logits)."""
        outputs = np.asarray(self.model(images, training=False), dtype=np.float32)
        probabilities = outputs.min() >= 0 and np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3)
        return outputs if probabilities else np.asarray(keras.ops.softmax(outputs, axis=-1))

    def predict_files(
        self, paths: Sequence[str | os.PathLike], top_k: int = 5, batch_size: int = 32
    ) -> Iterator[Prediction]:
        """The top-k labels of each file, in order; an unreadable file gives its `error`.

        Args:
            paths: Image files.
            top_k: Labels per image (at most the number of classes).
            batch_size: Images per model call.

        Yields:
            One `Prediction` per path.

        Raises:
            ValueError: If `top_k` is below 1.
        """
        if top_k < 1:
            raise ValueError(f"Invalid value for argument `top_k`: {top_k!r}. Expected >= 1.")
        for start in range(0, len(paths), batch_size):
            chunk = [str(p) for p in paths[start:start + batch_size]]
            images, errors = {}, {}
            for path in chunk:
                try:
                    images[path] = self.load_image(path)
                except (tf.errors.OpError, OSError) as error:
                    errors[path] = _reason(error)
            scores = self.scores(tf.stack(list(images.values()))) if images else []
            rows = dict(zip(images, scores, strict=True))
            for path in chunk:
                if path in errors:
                    yield Prediction(path, error=errors[path])
                    continue
                row = rows[path]
                best = np.argsort(-row, kind="stable")[:top_k]
                yield Prediction(path, tuple((self._label(i), float(row[i])) for i in best))

    def _label(self, index: int) -> str:
        return str(self.class_names[index]) if self.class_names else str(index)


def _reason(error: Exception) -> str:
    """The first line of a decoder's or the file system's message."""
    message = getattr(error, "message", None) or str(error)
    message = message.split("}}")[-1].split("[Op:")[0].strip()
    return message.splitlines()[0] if message else type(error).__name__


def _run_folder(folder: Path) -> tuple[Path, list[str] | None, int | None, float]:
    record = json.loads((folder / "config.json").read_text())
    config = record.get("config", {})
    size = record.get("resolved", {}).get("image_size") or config.get("image_size")
    crop = 1.0 if config.get("dataset") == "digits" else data.transforms.CENTER_CROP_FRACTION
    model_path = folder / "best.keras"
    if not model_path.exists():
        model_path = folder / "last.keras"
    if not model_path.exists():
        raise ValueError(f"{folder} holds no model (best.keras or last.keras).")
    return model_path, record.get("classes"), size, crop


def _imagenet_names(classes: int) -> list[str] | None:
    if classes != 1000:
        return None
    try:
        return list(data.imagenet_class_names())
    except weights_module.WeightsUnavailableError as error:
        log.warning("ImageNet class names unavailable (%s); printing class indices.", error)
        return None


def load_predictor(
    target: str | os.PathLike, weights: str | None = None, image_size: int | None = None
) -> Predictor:
    """A `Predictor` for a run folder, a `.keras` file or a registry name.

    Args:
        target: A run folder (its `best.keras`, class names and image size from its
            `config.json`; crop 1.0 for digits), a `.keras` file, or a registry name.
        weights: With a registry name: `"imagenet"` or a weights file (required there).
        image_size: Input size; default the run's, else the model's input size.

    Returns:
        The `Predictor`. A model with 1000 outputs and no class names of its own is
        labelled with the ImageNet class names.

    Raises:
        ValueError: A target that is none of the three, a registry name without
            `weights`, or `weights` with a run folder or a model file.
    """
    path = Path(target)
    names, size, crop = None, None, data.transforms.CENTER_CROP_FRACTION
    if path.exists() or str(target).endswith(".keras"):
        if weights:
            raise ValueError("--weights goes with a registry name, not with a run folder or a model file.")
        if path.is_dir():
            path, names, size, crop = _run_folder(path)
        model = heads.main_output(keras.saving.load_model(path, compile=False))  # inference only
    elif str(target) in registry.list_models():
        if not weights:
            raise ValueError(f"{target} needs --weights imagenet or --weights PATH: without weights it "
                             "predicts at random.")
        model = registry.get_model(str(target), weights=weights)
    else:
        raise ValueError(f"Invalid value for argument `target`: {str(target)!r}. Expected a run folder, "
                         "a .keras file or a registry model name.")
    size = image_size or size or model.input_shape[1]
    if size is None:
        raise ValueError(f"{target} takes any input size: give --image-size.")
    classes = model.output_shape[-1]
    return Predictor(model, names or _imagenet_names(classes), int(size), crop)
