"""Checkpoint formats the name maps load: reading the tensors, and their names and layouts.

`safetensors` files (timm's hub files) and torchvision's `.pth` state dicts hold PyTorch
tensors: names `module.weight`, convolution kernels (out, in, h, w). BiT's `.npz`
checkpoints hold TensorFlow's: names `module/kernel`, kernels (h, w, in, out), the head a
1x1 convolution. A `Layout` says how to turn one format's tensors into Keras weights;
`kerasarch.weights_timm` does the matching, the checks and the assignment.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from collections.abc import Callable, Mapping

import keras
import numpy as np

from kerasarch import extras

# Keras weight name -> the tensor name PyTorch gives it inside the module.
TORCH_SUFFIX = {
    "kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
    "moving_mean": "running_mean", "moving_variance": "running_var",
}
# PyTorch bookkeeping with no Keras counterpart: BatchNorm's update counter.
IGNORED_SUFFIXES = ("num_batches_tracked",)


def to_keras(layer: keras.layers.Layer, weight_name: str, tensor: np.ndarray) -> np.ndarray:
    """Converts one PyTorch tensor to the layout of the Keras weight it fills.

    Convolution kernels go from (out, in, h, w) to (h, w, in, out); depthwise kernels from
    (channels * multiplier, 1, h, w) to (h, w, channels, multiplier); dense kernels from
    (out, in) to (in, out). A convolution kernel for a dense layer (timm's VGG computes fc1
    as a 7x7 convolution over the map kerasarch flattens) becomes (h * w * in, out), in the
    height, width, channel order of Keras' `Flatten`. Everything else (biases, norm
    parameters, running statistics) keeps its shape.
    """
    if weight_name != "kernel" or tensor.ndim not in (2, 4):
        return tensor
    if isinstance(layer, keras.layers.DepthwiseConv2D) and tensor.ndim == 4:
        channels = layer.kernel.shape[2]
        out, _, kh, kw = tensor.shape
        return tensor.reshape(channels, out // channels, kh, kw).transpose(2, 3, 0, 1)
    if tensor.ndim == 2:  # a linear layer
        return tensor.T
    if isinstance(layer, keras.layers.Dense):
        return tensor.transpose(2, 3, 1, 0).reshape(-1, tensor.shape[0])
    return tensor.transpose(2, 3, 1, 0)  # a convolution (grouped ones too: in = in / groups)


def tf_to_keras(layer: keras.layers.Layer, weight_name: str, tensor: np.ndarray) -> np.ndarray:
    """Converts one TensorFlow-layout tensor: only a 1x1 convolution head becomes a dense kernel.

    Convolution kernels are already (h, w, in, out) and norm parameters 1-D; BiT's head is
    a 1x1 convolution, (1, 1, in, classes), which kerasarch's `Dense` holds as (in, classes).
    """
    if weight_name == "kernel" and isinstance(layer, keras.layers.Dense) and tensor.ndim == 4:
        return tensor.reshape(-1, tensor.shape[-1])
    return tensor


def flattened_chw_to_hwc(tensor: np.ndarray, chw: tuple[int, int, int]) -> np.ndarray:
    """A PyTorch linear weight over a channels-first flattened map, as a Keras dense kernel.

    (out, c * h * w), rows in channel, height, width order, becomes (h * w * c, out) in the
    height, width, channel order of Keras' channels-last `Flatten`.
    """
    channels, height, width = chw
    out = tensor.shape[0]
    return tensor.reshape(out, channels, height, width).transpose(2, 3, 1, 0).reshape(-1, out)


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a checkpoint format names and stores the tensors of a module.

    Attributes:
        separator: Between a module and a tensor name (`.` in PyTorch, `/` in TensorFlow).
        suffixes: Keras weight name -> the format's tensor name (unlisted: the same name).
        convert: `(layer, Keras weight name, tensor)` -> the tensor in Keras' layout.
        classes_axis: The axis of the head's kernel that counts the classes.
        ignored: Endings of tensor names with no Keras counterpart, skipped.
    """

    separator: str
    suffixes: Mapping[str, str]
    convert: Callable[[keras.layers.Layer, str, np.ndarray], np.ndarray]
    classes_axis: int
    ignored: tuple[str, ...] = ()

    def key(self, module: str, suffix: str) -> str:
        """The tensor name of weight `suffix` (already in the format's words) of `module`."""
        return f"{module}{self.separator}{suffix}"


LAYOUTS = {
    "torch": Layout(".", TORCH_SUFFIX, to_keras, 0, IGNORED_SUFFIXES),
    "tf": Layout("/", {}, tf_to_keras, -1),
}


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads every tensor of a safetensors file as a numpy array (no PyTorch needed)."""
    from safetensors.numpy import load_file

    return load_file(os.fspath(path))


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads every array of a `.npz` checkpoint (BiT's), refusing pickled objects."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is not a readable .npz checkpoint ({error}).") from error


def read_pth(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a PyTorch state dict (torchvision's `.pth`) as numpy arrays.

    `torch.load(..., weights_only=True)` unpickles tensors and containers only, never code.

    Raises:
        MissingExtraError: Without PyTorch (`pip install 'kerasarch[torch]'`).
        ValueError: If the file holds no flat name -> tensor mapping.
    """
    torch = extras.require("torch", f"Loading the PyTorch file {path}", extra="torch")
    state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds no PyTorch state dict (a mapping of names to tensors).")
    return {name: value.detach().cpu().numpy() for name, value in state.items()}


READERS = {"safetensors": read_safetensors, "npz": read_npz, "pth": read_pth}
