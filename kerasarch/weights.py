"""Official weights: where a variant's files are, and loading Keras Applications files by name.

Official files are the ones `keras.applications` downloads: legacy Keras HDF5 weight files
(`layer_names` / `weight_names` attributes). Keras 3 loads those by layer *order*, which
breaks silently when a model has extra weighted layers or a different order; kerasarch
loads them by layer *name* and refuses a file that does not match the model exactly,
naming what is missing, unexpected or of the wrong shape. Each family declares its files
(`ImageNetWeights`) in its registration; the download cache is `kerasarch.download`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

import h5py
import keras
import numpy as np

from kerasarch.download import WeightFile, WeightsUnavailableError, cache_dir, fetch_file, file_digest

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"

__all__ = [
    "ImageNetWeights", "WeightFile", "WeightsUnavailableError", "cache_dir", "fetch", "fetch_file",
    "file_digest", "keras_applications_file", "load", "load_legacy_h5", "read_legacy_h5",
]


@dataclasses.dataclass(frozen=True)
class ImageNetWeights:
    """A variant's official ImageNet weights files and how their layers map onto the model.

    A family declares it in its registration (`register(..., weights=ImageNetWeights(...))`).
    The layer map and the ignore list also apply when a user passes the same kind of file
    by path, e.g. a keras.applications `.h5` file they downloaded.

    Attributes:
        top: The file with the classifier head.
        notop: The file without it (`include_top=False`).
        layer_map: File layer name -> model layer name, for files whose names differ from
            the model's (auto-generated names such as keras' InceptionV3 `conv2d_N`).
            Unlisted names must match exactly.
        ignore: File layers that have no counterpart in the model and are skipped on
            purpose (the `normalization` layer keras.applications' EfficientNet files
            hold; kerasarch normalizes with its own `preprocessing`).
        top_layer_map: Like `layer_map`, for layers only the file with the head holds
            (ConvNeXt's `convnext_tiny_head_dense` is kerasarch's `predictions`).
        notop_ignore: Like `ignore`, for layers only the file without the head holds
            (the unnamed `layer_normalization` keras.applications' ConvNeXt puts on its
            `include_top=False` output).
    """

    top: WeightFile
    notop: WeightFile
    layer_map: Mapping[str, str] = dataclasses.field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    top_layer_map: Mapping[str, str] = dataclasses.field(default_factory=dict)
    notop_ignore: tuple[str, ...] = ()

    def file(self, include_top: bool) -> WeightFile:
        """The file for a build with or without the head."""
        return self.top if include_top else self.notop

    def mapping(self, include_top: bool) -> dict:
        """The `layer_map` and `ignore` arguments of `load` for the file with or without the head."""
        if include_top:
            return {"layer_map": {**self.layer_map, **self.top_layer_map}, "ignore": self.ignore}
        return {"layer_map": dict(self.layer_map), "ignore": self.ignore + self.notop_ignore}


def keras_applications_file(path: str, file_hash: str, hash_algorithm: str = "md5") -> WeightFile:
    """A file under keras.applications' download folder (`path` relative to it)."""
    return WeightFile(_BASE + path, file_hash, hash_algorithm)


def fetch(name: str, include_top: bool = True) -> Path:
    """Returns the local path of a variant's official ImageNet weights, downloading if needed.

    Args:
        name: Registry name of the variant.
        include_top: Whether the file with the classifier head is wanted.

    Returns:
        The path of the verified file in `cache_dir()`.

    Raises:
        ValueError: If no file is published for the variant, or the file's hash is wrong.
        WeightsUnavailableError: If the file is not cached and cannot be downloaded.
    """
    from kerasarch import registry

    files = registry.model_info(name).imagenet
    if files is None:
        raise ValueError(f"No official ImageNet weights for {name!r} (include_top={include_top}).")
    return fetch_file(files.file(include_top), f"the ImageNet weights of {name}")


def _decode(values) -> list[str]:
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def read_legacy_h5(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Reads a legacy Keras HDF5 weights file (the Keras Applications format).

    Args:
        path: A `.h5` file written by `save_weights` (Keras 2) or a full legacy model file.

    Returns:
        Layer name -> list of weight arrays, in the file's order, for layers with weights.
    """
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in group.attrs:
            raise ValueError(f"{path} is not a Keras HDF5 weights file (no `layer_names`).")
        layers = {}
        for layer_name in _decode(group.attrs["layer_names"]):
            layer_group = group[layer_name]
            names = _decode(layer_group.attrs.get("weight_names", []))
            if names:
                layers[layer_name] = [np.asarray(layer_group[n]) for n in names]
        return layers


def _rename(
    stored: dict[str, list[np.ndarray]], path, layer_map: Mapping[str, str], ignore: tuple[str, ...]
) -> dict[str, list[np.ndarray]]:
    """The file's layers under the model's names, the ignored ones dropped."""
    absent = sorted((set(layer_map) | set(ignore)) - set(stored))
    if absent:
        raise ValueError(
            f"The weights file {path} lacks layers its layer map or ignore list names: "
            f"{absent[:10]}; the mapping was written for another file."
        )
    renamed = {}
    for name, values in stored.items():
        if name in ignore:
            continue
        target = layer_map.get(name, name)
        if target in renamed:
            raise ValueError(f"Two layers of the weights file {path} map onto {target!r}.")
        renamed[target] = values
    return renamed


def load_legacy_h5(
    model: keras.Model, path: str | os.PathLike, *, layer_map: Mapping[str, str] | None = None,
    ignore: tuple[str, ...] = (),
) -> None:
    """Loads a legacy Keras HDF5 weights file into `model`, matching layers by name.

    Args:
        model: The model to load into.
        path: The `.h5` file.
        layer_map: File layer name -> model layer name, where they differ.
        ignore: File layers skipped on purpose (they have no counterpart in the model).

    Raises:
        ValueError: If a weighted layer of the model is missing from the file, the file has
            a layer the model lacks (and not listed in `ignore`), a weight has the wrong
            shape, or the map or ignore list names a layer the file does not have.
    """
    stored = _rename(read_legacy_h5(path), path, dict(layer_map or {}), tuple(ignore))
    model_layers = {layer.name: layer for layer in model.layers if layer.weights}
    missing = sorted(set(model_layers) - set(stored))
    unexpected = sorted(set(stored) - set(model_layers))
    if missing or unexpected:
        raise ValueError(
            f"The weights file {path} does not match model {model.name!r}: layers missing "
            f"from the file: {missing[:10]}; layers in the file but not in the model: "
            f"{unexpected[:10]}."
        )
    for name, layer in model_layers.items():
        values = stored[name]
        expected = [tuple(w.shape) for w in layer.weights]
        received = [tuple(v.shape) for v in values]
        if expected != received:
            raise ValueError(
                f"The weights file {path} does not match layer {name!r} of model "
                f"{model.name!r}: the layer expects shapes {expected}, the file has {received}."
            )
    for name, layer in model_layers.items():
        layer.set_weights(stored[name])


def load(
    model: keras.Model, path: str | os.PathLike, *, layer_map: Mapping[str, str] | None = None,
    ignore: tuple[str, ...] = (),
) -> None:
    """Loads weights from a Keras 3 `.weights.h5` file or a legacy Keras `.h5` file.

    Args:
        model: The model to load into.
        path: The weights file.
        layer_map: For legacy `.h5` files: file layer name -> model layer name.
        ignore: For legacy `.h5` files: file layers to skip on purpose.

    Raises:
        ValueError: For an unsupported file type or a file that does not match the model.
    """
    path = os.fspath(path)
    if path.endswith(".weights.h5"):
        model.load_weights(path)
    elif path.endswith((".h5", ".hdf5")):
        load_legacy_h5(model, path, layer_map=layer_map, ignore=ignore)
    else:
        raise ValueError(
            f"Invalid value for argument `weights`: {path!r}. Expected a Keras 3 "
            f"'.weights.h5' file or a Keras Applications legacy '.h5' file (a '.keras' "
            f"model is loaded with keras.saving.load_model)."
        )
