"""Weight sources, the download cache, and loading of official Keras Applications files.

Official files are the ones `keras.applications` downloads: legacy Keras HDF5 weight files
(`layer_names` / `weight_names` attributes). Keras 3 loads those by layer *order*, which
breaks silently when a model has extra weighted layers or a different order; kerasarch
loads them by layer *name* and refuses a file that does not match the model exactly,
naming what is missing, unexpected or of the wrong shape.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import h5py
import keras
import numpy as np

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclasses.dataclass(frozen=True)
class WeightFile:
    """One published weights file.

    Attributes:
        url: Where `keras.applications` downloads it from.
        file_hash: Its hash as `keras.applications` records it.
        hash_algorithm: `"sha256"` or `"md5"`. Keras publishes MD5 digests for its older
            files; where no SHA-256 digest has been published, the MD5 is what is checked.
    """

    url: str
    file_hash: str
    hash_algorithm: str = "sha256"

    @property
    def filename(self) -> str:
        """The file name in the cache."""
        return self.url.rsplit("/", 1)[-1]


# (registry name, include_top) -> file. Hashes as published in keras.applications 3.15.
SOURCES: dict[tuple[str, bool], WeightFile] = {
    ("vgg16", True): WeightFile(
        _BASE + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        "64373286793e3c8b2b4e3219cbf3544b", "md5",
    ),
    ("vgg16", False): WeightFile(
        _BASE + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc", "md5",
    ),
    ("vgg19", True): WeightFile(
        _BASE + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5",
        "cbe5617147190e668d6c5d5026f83318", "md5",
    ),
    ("vgg19", False): WeightFile(
        _BASE + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "253f8cb515780f3b799900260a226db6", "md5",
    ),
}

# keras.applications ResNet / ResNetV2 files and their published MD5 digests (top, no top).
_RESNET_HASHES = {
    "resnet50": ("2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626"),
    "resnet101": ("f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21"),
    "resnet152": ("100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c"),
    "resnet50v2": ("3ef43a0b657b3be2300d5770ece849e0", "fac2f116257151a9d068a22e544a4917"),
    "resnet101v2": ("6343647c601c52e1368623803854d971", "c0ed64b8031c3730f411d2eb4eea35b5"),
    "resnet152v2": ("a49b44d1979771252814e80f8ec446f9", "ed17cf2e0169df9d443503ef94b23b33"),
}
for _name, (_top, _notop) in _RESNET_HASHES.items():
    _stem = f"{_BASE}resnet/{_name}_weights_tf_dim_ordering_tf_kernels"
    SOURCES[(_name, True)] = WeightFile(f"{_stem}.h5", _top, "md5")
    SOURCES[(_name, False)] = WeightFile(f"{_stem}_notop.h5", _notop, "md5")


class WeightsUnavailableError(OSError):
    """An official weights file is neither in the cache nor downloadable."""


def cache_dir() -> Path:
    """The folder official weights are cached in: `$KERAS_HOME/models` (`~/.keras/models`)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Returns the hex digest of a file."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, source: WeightFile) -> None:
    actual = file_digest(path, source.hash_algorithm)
    if actual != source.file_hash:
        raise ValueError(
            f"The weights file {path} has {source.hash_algorithm} {actual}, expected "
            f"{source.file_hash} (from {source.url}). The file is corrupt or not the official "
            f"one; delete it and run again to download it."
        )


def fetch_file(source: WeightFile, what: str) -> Path:
    """Returns the local path of a published file, downloading it into `cache_dir()` if needed.

    Args:
        source: The file's URL and hash.
        what: What the file is, for the error message (e.g. "the ImageNet weights of vgg16").

    Returns:
        The path of the verified file.

    Raises:
        ValueError: If the cached file's hash is wrong.
        WeightsUnavailableError: If the file is not cached and cannot be downloaded.
    """
    path = cache_dir() / source.filename
    if not path.exists():
        try:
            keras.utils.get_file(
                source.filename,
                source.url,
                cache_dir=str(path.parent.parent),
                cache_subdir=path.parent.name,
                file_hash=source.file_hash,
                hash_algorithm=source.hash_algorithm,
            )
        except Exception as error:  # noqa: BLE001 - any failure means "not available"
            raise WeightsUnavailableError(
                f"Could not download {what} ({error}). Download {source.url} by hand and "
                f"put it at {path} ({source.hash_algorithm} {source.file_hash}); kerasarch "
                f"then loads it from there."
            ) from error
    _verify(path, source)
    return path


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
    try:
        source = SOURCES[(name, include_top)]
    except KeyError:
        raise ValueError(
            f"No official ImageNet weights for {name!r} (include_top={include_top})."
        ) from None
    return fetch_file(source, f"the ImageNet weights of {name}")


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


def load_legacy_h5(model: keras.Model, path: str | os.PathLike) -> None:
    """Loads a legacy Keras HDF5 weights file into `model`, matching layers by name.

    Raises:
        ValueError: If a weighted layer of the model is missing from the file, the file has
            a layer the model lacks, or a weight has the wrong shape.
    """
    stored = read_legacy_h5(path)
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


def load(model: keras.Model, path: str | os.PathLike) -> None:
    """Loads weights from a Keras 3 `.weights.h5` file or a legacy Keras `.h5` file.

    Args:
        model: The model to load into.
        path: The weights file.

    Raises:
        ValueError: For an unsupported file type or a file that does not match the model.
    """
    path = os.fspath(path)
    if path.endswith(".weights.h5"):
        model.load_weights(path)
    elif path.endswith((".h5", ".hdf5")):
        load_legacy_h5(model, path)
    else:
        raise ValueError(
            f"Invalid value for argument `weights`: {path!r}. Expected a Keras 3 "
            f"'.weights.h5' file or a Keras Applications legacy '.h5' file (a '.keras' "
            f"model is loaded with keras.saving.load_model)."
        )
