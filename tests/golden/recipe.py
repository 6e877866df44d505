"""The seeded numpy recipe that fills a reference model's state dict (shared by both sides).

`make_golden.py` (run once, with PyTorch and timm) fills the timm model with these tensors
and records its outputs; the tests rebuild the identical tensors with numpy alone, write
them as a safetensors file and load it through kerasarch. Only numpy is imported here.

Recipe v2, one generator per tensor, `numpy.random.default_rng([seed, index])`, where
`index` is the tensor's position in the state dict, values drawn in float32
(`random` / `standard_normal` with `dtype=float32`):
    integer tensors (BatchNorm's `num_batches_tracked`): zeros
    tensors of 2+ dimensions (convolution / linear weights): normal(0, 1 / sqrt(fan_in)),
        fan_in = the product of all dimensions but the first
    1-D `running_var` and `weight` (norm scales): uniform [0.5, 1.5) (variances positive)
    other 1-D tensors (`running_mean`, biases, norm shifts): normal(0, 0.1)
TensorFlow names (with `/`: BiT's `.npz` checkpoints, kernels (h, w, in, out)) follow the same
rules in TensorFlow's words: kernels normal(0, 1 / sqrt(fan_in)), fan_in = the product of all
dimensions but the last; 1-D `gamma` and `moving_variance` uniform [0.5, 1.5); other 1-D
tensors normal(0, 0.1). (No PyTorch name holds a `/`, so this leaves their tensors as they were.)
Inputs: `default_rng([seed, INPUT_STREAM])`, uint8 pixels in [0, 255], NHWC.
"""

from __future__ import annotations

import math

import numpy as np

RECIPE = "v2"
INPUT_STREAM = 1_000_003


def make_tensor(name: str, shape: list[int], dtype: str, seed: int, index: int) -> np.ndarray:
    """The recipe's tensor for state-dict entry `index` named `name` (drawn in float32)."""
    rng = np.random.default_rng([seed, index])
    if dtype.startswith("int"):
        return np.zeros(shape, dtype=dtype)
    if "/" in name:
        return _make_tf_tensor(name, shape, rng).astype(dtype, copy=False)
    leaf = name.rsplit(".", 1)[-1]
    if leaf in ("running_var", "weight") and len(shape) < 2:
        values = rng.random(shape, dtype=np.float32) + np.float32(0.5)
    elif leaf == "running_mean" or len(shape) < 2:
        values = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1)
    else:
        scale = np.float32(1.0 / math.sqrt(math.prod(shape[1:])))
        values = rng.standard_normal(shape, dtype=np.float32) * scale
    return values.astype(dtype, copy=False)


def _make_tf_tensor(name: str, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    """The recipe's rules for a tensor with TensorFlow's name and layout."""
    if len(shape) >= 2:
        scale = np.float32(1.0 / math.sqrt(math.prod(shape[:-1])))
        return rng.standard_normal(shape, dtype=np.float32) * scale
    if name.rsplit("/", 1)[-1] in ("gamma", "moving_variance"):
        return rng.random(shape, dtype=np.float32) + np.float32(0.5)
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1)


def make_state(tensors: list[list], seed: int) -> dict[str, np.ndarray]:
    """All tensors of a recorded `[name, shape, dtype]` table, in order."""
    return {name: make_tensor(name, shape, dtype, seed, i) for i, (name, shape, dtype) in enumerate(tensors)}


def make_inputs(shape: list[int], seed: int) -> np.ndarray:
    """The recorded raw input images (uint8, NHWC)."""
    return np.random.default_rng([seed, INPUT_STREAM]).integers(0, 256, shape, dtype=np.uint8)
