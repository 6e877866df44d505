"""Writes Keras weights in the legacy HDF5 layout of the official Keras Applications files.

The official files (e.g. vgg16_weights_tf_dim_ordering_tf_kernels.h5) hold a root attribute
`layer_names`, and per layer a group with a `weight_names` attribute and one dataset per
weight. Tests write keras.applications models with random weights in this layout, since the
real files cannot be downloaded here.
"""

from __future__ import annotations

import h5py
import keras
import numpy as np


def save_legacy_weights(model: keras.Model, path) -> None:
    write_legacy_layers(
        path, {layer.name: dict(zip([w.name for w in layer.weights], layer.get_weights(),
                                    strict=True)) for layer in model.layers}
    )


def keras2_name_counters() -> None:
    """Starts a fresh Keras session whose automatic layer names number as the official files'.

    keras.applications leaves many layers unnamed (InceptionV3's `conv2d_N`), and its files
    were written by Keras 2.0, whose automatic names started at 1 (`conv2d_1`,
    `batch_normalization_1`); Keras 3 starts at the bare name (`conv2d`). After this call
    the next Conv2D and BatchNormalization built are `conv2d_1` and `batch_normalization_1`,
    whatever the session built before, so a twin built right after holds the official names.
    """
    keras.backend.clear_session()
    keras.layers.Conv2D(1, 1)  # takes the bare name `conv2d`
    keras.layers.BatchNormalization()  # takes `batch_normalization`


def write_legacy_layers(path, layers: dict[str, dict[str, np.ndarray]]) -> None:
    """Writes layer name -> {weight name: array} in the legacy layout, in the dict's order."""
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["layer_names"] = np.array([name.encode() for name in layers])
        for layer_name, weights in layers.items():
            group = f.create_group(layer_name)
            names = [f"{layer_name}/{w}:0" for w in weights]
            group.attrs["weight_names"] = np.array([n.encode() for n in names])
            for name, value in zip(names, weights.values(), strict=True):
                group.create_dataset(name, data=value)
