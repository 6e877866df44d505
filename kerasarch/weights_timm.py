"""Weights from timm (PyTorch Image Models): Hugging Face hub repositories and safetensors files.

`weights="hf://timm/resnet18.a1_in1k"` downloads the repository's `model.safetensors` and
`config.json` with `huggingface_hub` (into its own cache); `weights="path/model.safetensors"`
reads a local file (and the `config.json` beside it, when there is one). The tensors are read
with `safetensors.numpy` (no PyTorch), renamed by the family's table (`TimmNames`, declared
next to the family, e.g. `kerasarch.models.resnet.TIMM_NAMES`) and converted to Keras'
layouts: convolution kernels OIHW -> HWIO, dense kernels transposed, BatchNorm running
statistics into the moving mean/variance. Every mismatch is refused, naming the first
tensors that failed; nothing is assigned until the whole file matched.

The in-graph preprocessing follows the weights: the mean/std of timm's pretrained config
(`config.json`'s `pretrained_cfg`); without a config, timm's default for the architecture
(`TimmNames.normalization`), which may differ from the kerasarch variant's own default
(plain VGG normalizes for the Keras weights, caffe-style; timm's VGG weights want mean/std).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kerasarch import preprocessing
from kerasarch.download import WeightsUnavailableError
from kerasarch.preprocessing import NormalizationSpec

HF_PREFIX = "hf://"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
# PyTorch bookkeeping with no Keras counterpart: BatchNorm's update counter.
IGNORED_SUFFIXES = ("num_batches_tracked",)
# Keras weight name -> the tensor name PyTorch gives it inside the module.
TORCH_SUFFIX = {
    "kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
    "moving_mean": "running_mean", "moving_variance": "running_var",
}


@dataclasses.dataclass(frozen=True)
class TimmNames:
    """One family's name map: kerasarch layer -> timm module (a table declared with the family).

    Attributes:
        module: kerasarch layer name -> the timm module prefix holding its tensors
            (`"conv2_block1_1_conv"` -> `"layer1.0.conv1"`), or None for a layer the
            table does not know (refused when the layer has weights).
        head: The module prefix of the classifier (`"fc"`); its tensors are skipped when
            the model is built without the head or for another class count.
        architectures: timm architecture name of each kerasarch variant the table serves,
            checked against `config.json`'s `architecture` when the weights have one.
        pre_logits: Modules between the backbone and `head` (VGG's fc1/fc2): loaded with
            any class count, skipped without the top.
        normalization: The `kerasarch.preprocessing` spec of timm's default pretrained
            config for these architectures, for weights that come without a config.
        suffixes: Keras layer class name -> {Keras weight name: timm tensor name}, where
            timm names a tensor otherwise than `TORCH_SUFFIX` (ConvNeXt's layer scale is
            the block's `gamma`, not a module's `weight`).
    """

    module: Callable[[str], str | None]
    head: str
    architectures: Mapping[str, str]
    pre_logits: tuple[str, ...] = ()
    normalization: str = "torch"
    suffixes: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)


NAME_MAPS: dict[str, TimmNames] = {}


def register_names(names: TimmNames) -> None:
    """Declares that the variants of `names.architectures` load timm weights through `names`."""
    for variant in names.architectures:
        NAME_MAPS[variant] = names


def is_timm_source(weights: str) -> bool:
    """Whether a `weights` argument names timm weights (an `hf://` repository or a safetensors file)."""
    return weights.startswith(HF_PREFIX) or weights.endswith(".safetensors")


@dataclasses.dataclass(frozen=True)
class TimmSource:
    """Resolved timm weights: the local safetensors file and its pretrained config.

    Attributes:
        path: The local `.safetensors` file.
        config: The parsed `config.json` (empty when there is none).
        label: What the user passed (`hf://...` or the path), for messages.
    """

    path: Path
    config: Mapping[str, Any]
    label: str

    @property
    def pretrained_cfg(self) -> Mapping[str, Any]:
        """The pretrained config of timm (mean, std, interpolation, crop_pct, input_size)."""
        return self.config.get("pretrained_cfg", {})

    def normalization(self, default: str) -> NormalizationSpec:
        """The in-graph normalization the weights were trained with.

        Args:
            default: The spec to use when the weights carry no mean/std (a key of
                `kerasarch.preprocessing.NORMALIZATIONS`: timm's default for the architecture).
        """
        cfg = self.pretrained_cfg
        if "mean" not in cfg or "std" not in cfg:
            return preprocessing.normalization(default)
        return NormalizationSpec(
            "timm",
            mean=tuple(255.0 * float(m) for m in cfg["mean"]),
            std=tuple(255.0 * float(s) for s in cfg["std"]),
            description=f"[0, 1], then mean {tuple(cfg['mean'])} / std {tuple(cfg['std'])} "
            f"({self.label}'s pretrained config)",
        )


def _hub_download(repo_id: str, filename: str):
    """`hf_hub_download`, turning "not cached and not downloadable" into one clear error."""
    import huggingface_hub
    from huggingface_hub import constants

    try:
        return Path(huggingface_hub.hf_hub_download(repo_id, filename))
    except Exception as error:  # noqa: BLE001 - offline, unreachable, missing: all "unavailable"
        url = huggingface_hub.hf_hub_url(repo_id, filename)
        raise WeightsUnavailableError(
            f"Could not get {filename} of the Hugging Face repository {repo_id} ({type(error).__name__}: "
            f"{error}). Either download {url} (and {CONFIG_FILE} beside it) by hand and pass "
            f"weights='<folder>/{filename}', or fill the Hugging Face cache {constants.HF_HUB_CACHE} "
            f"on a connected machine with huggingface_hub.hf_hub_download({repo_id!r}, {filename!r})."
        ) from error


def resolve(variant: str, weights: str) -> TimmSource:
    """Finds (downloading if needed) the timm weights a `weights` argument names.

    Args:
        variant: The registry name of the model being built.
        weights: `"hf://<owner>/<repo>"` or the path of a `.safetensors` file.

    Returns:
        The local file and its config.

    Raises:
        ValueError: For a variant without a timm name map, a malformed `hf://` name, a
            missing file, or a config for another architecture.
        WeightsUnavailableError: If the hub file is neither cached nor downloadable.
    """
    if variant not in NAME_MAPS:
        twin = f" (timm's layout of {variant} is {variant}_tv)" if f"{variant}_tv" in NAME_MAPS else ""
        raise ValueError(
            f"Invalid value for argument `weights`: {weights!r}. {variant} has no timm name map{twin}; "
            f"timm weights load into: {', '.join(sorted(NAME_MAPS))}."
        )
    if weights.startswith(HF_PREFIX):
        repo_id = weights[len(HF_PREFIX):].strip("/")
        if repo_id.count("/") != 1:
            raise ValueError(
                f"Invalid value for argument `weights`: {weights!r}. Expected "
                f"'hf://<owner>/<repository>', e.g. 'hf://timm/resnet18.a1_in1k'."
            )
        path = _hub_download(repo_id, WEIGHTS_FILE)
        config_path = _hub_download(repo_id, CONFIG_FILE)
    else:
        path = Path(weights)
        if not path.is_file():
            raise ValueError(
                f"Invalid value for argument `weights`: {weights!r}. No such safetensors file."
            )
        config_path = path.parent / CONFIG_FILE
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    expected = NAME_MAPS[variant].architectures[variant]
    found = config.get("architecture")
    if found is not None and found != expected:
        raise ValueError(
            f"The weights {weights} are for timm architecture {found!r} ({config_path}); "
            f"{variant} loads {expected!r} weights."
        )
    return TimmSource(path, config, weights)


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads every tensor of a safetensors file as a numpy array (no PyTorch needed)."""
    from safetensors.numpy import load_file

    return load_file(os.fspath(path))


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


def _head_classes(tensors: Mapping[str, np.ndarray], head: str) -> int | None:
    weight = tensors.get(f"{head}.weight")
    return None if weight is None else int(weight.shape[0])


def _problems(kind: str, names: list[str]) -> str:
    more = f" (and {len(names) - 5} more)" if len(names) > 5 else ""
    return f"{kind}: {names[:5]}{more}" if names else ""


def _weighted_layers(model: keras.Model):
    """The layers holding weights, a nested `Sequential`'s (ConvNeXt's stem) by its own layers."""
    for layer in model.layers:
        if isinstance(layer, keras.Sequential):
            yield from (inner for inner in layer.layers if inner.weights)
        elif layer.weights:
            yield layer


def _plan(
    model: keras.Model, tensors: Mapping[str, np.ndarray], names: TimmNames, skip: tuple[str, ...]
):
    """Pairs every model weight with its converted tensor; collects what does not fit.

    The tensors of the `skip` modules are taken as read and their layers left as built.
    """
    assignments, missing, shapes, unmapped = [], [], [], []
    consumed = {k for k in tensors if k.startswith(tuple(f"{m}." for m in skip))}
    for layer in _weighted_layers(model):
        module = names.module(layer.name)
        if module is None:
            unmapped.append(layer.name)
            continue
        if module in skip:
            continue
        values = []
        suffixes = {**TORCH_SUFFIX, **names.suffixes.get(type(layer).__name__, {})}
        for weight in layer.weights:
            short = weight.name
            key = f"{module}.{suffixes.get(short, short)}"
            if key not in tensors:
                missing.append(key)
                continue
            consumed.add(key)
            value = to_keras(layer, short, tensors[key])
            if tuple(value.shape) != tuple(weight.shape):
                shapes.append(
                    f"{key} {tuple(tensors[key].shape)} -> {layer.name}/{short} {tuple(weight.shape)}"
                )
            values.append(value.astype(weight.dtype, copy=False))
        assignments.append((layer, values))
    unexpected = sorted(k for k in tensors if k not in consumed and not k.endswith(IGNORED_SUFFIXES))
    return assignments, missing, unexpected, shapes, unmapped


def load(
    model: keras.Model, source: TimmSource, variant: str, *, include_top: bool, classes: int,
) -> None:
    """Loads timm weights into a kerasarch model built with the same architecture.

    With `include_top=True` and a class count other than the file's, the backbone loads and
    the head stays newly initialized (printed in one line), the usual start of fine-tuning.

    Args:
        model: The kerasarch model.
        source: The resolved weights (`resolve`).
        variant: The model's registry name (selects the family's name map).
        include_top: Whether the model has the classifier head.
        classes: The model's class count.

    Raises:
        ValueError: If a tensor is missing, unexpected or of the wrong shape, naming the first
            ones; nothing is assigned then.
    """
    names = NAME_MAPS[variant]
    tensors = read_safetensors(source.path)
    file_classes = _head_classes(tensors, names.head)
    new_head = not include_top or (file_classes is not None and file_classes != classes)
    skip = (names.head,) if new_head else ()
    skip += () if include_top else names.pre_logits
    assignments, missing, unexpected, shapes, unmapped = _plan(model, tensors, names, skip)
    if unmapped:
        raise ValueError(f"The timm name map of {variant} does not cover layers {unmapped[:5]}.")
    problems = [
        _problems("missing from the file", missing),
        _problems("in the file but not in the model", unexpected),
        _problems("wrong shape", shapes),
    ]
    problems = [p for p in problems if p]
    if problems:
        raise ValueError(
            f"The weights {source.label} do not match model {model.name!r} ({variant}, timm "
            f"{names.architectures[variant]!r} layout): " + "; ".join(problems) + ". A file for "
            "another architecture or depth fails this way."
        )
    for layer, values in assignments:
        layer.set_weights(values)
    if include_top and new_head:
        print(
            f"kerasarch: loaded the backbone of {source.label}; the head is new ({classes} classes "
            f"instead of the file's {file_classes}) and randomly initialized."
        )
