"""Weights with a per-family name map: timm's hub files and safetensors, BiT's .npz, torchvision's .pth.

`weights="hf://timm/resnet18.a1_in1k"` downloads the repository's `model.safetensors` and
`config.json` with `huggingface_hub` (into its own cache); `weights="path/model.safetensors"`
reads a local file (and the `config.json` beside it, when there is one). The tensors are read
with `safetensors.numpy` (no PyTorch), renamed by the family's table (`TimmNames`, declared
next to the family, e.g. `kerasarch.models.resnet.TIMM_NAMES`) and converted to Keras'
layouts: convolution kernels OIHW -> HWIO, dense kernels transposed, BatchNorm running
statistics into the moving mean/variance. Every mismatch is refused, naming the first
tensors that failed; nothing is assigned until the whole file matched.

Two more formats go through the same check and assignment. Big Transfer's official `.npz`
checkpoints (`weights="path/BiT-M-R50x1.npz"`, read with numpy) use TensorFlow's names and
layouts (`resnet/block1/unit01/a/standardized_conv2d/kernel`, HWIO kernels): their table is
registered with `register_names(..., npz=True)` and converted by `TF_LAYOUT`. torchvision's
`.pth` state dicts (`weights="path/alexnet-owt-7be5be79.pth"`) hold PyTorch tensors under the
same names as the safetensors files of the same model; they are read with
`torch.load(weights_only=True)` when the optional `torch` extra is installed.

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

from kerasarch import extras, preprocessing
from kerasarch.download import WeightsUnavailableError
from kerasarch.preprocessing import NormalizationSpec
from kerasarch.weights_formats import (  # noqa: F401 - re-exported, part of this module's API
    IGNORED_SUFFIXES,
    LAYOUTS,
    READERS,
    TORCH_SUFFIX,
    Layout,
    flattened_chw_to_hwc,
    read_safetensors,
    to_keras,
)

HF_PREFIX = "hf://"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
NPZ_SUFFIX = ".npz"  # BiT's official checkpoints
TORCH_SUFFIXES = (".pth", ".pt")  # torchvision's state dicts
FILE_SUFFIXES = (".safetensors", NPZ_SUFFIX, *TORCH_SUFFIXES)


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
        layout: `"torch"` (PyTorch names and layouts: timm, torchvision) or `"tf"`
            (TensorFlow's: BiT's `.npz`), a key of `LAYOUTS`.
        flatten_chw: Dense layer -> the `(channels, height, width)` map PyTorch flattened
            into it, channels first (AlexNet's fc6 reads a 256x6x6 map); Keras flattens
            height, width, channels, so the kernel's rows are reordered.
        ignored: Modules of the file never loaded: their tensors are skipped and the layers
            they would fill stay as built (torchvision's GoogLeNet auxiliary heads, which
            torchvision says are not pretrained).
    """

    module: Callable[[str], str | None]
    head: str
    architectures: Mapping[str, str]
    pre_logits: tuple[str, ...] = ()
    normalization: str = "torch"
    suffixes: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    layout: str = "torch"
    flatten_chw: Mapping[str, tuple[int, int, int]] = dataclasses.field(default_factory=dict)
    ignored: tuple[str, ...] = ()


NAME_MAPS: dict[str, TimmNames] = {}  # PyTorch names: hub repositories, .safetensors, .pth
NPZ_MAPS: dict[str, TimmNames] = {}  # TensorFlow names: BiT's .npz


def register_names(names: TimmNames, npz: bool = False) -> None:
    """Declares that the variants of `names.architectures` load weights through `names`.

    Args:
        names: The family's table.
        npz: Whether it maps `.npz` checkpoints (TensorFlow names) rather than PyTorch
            state dicts (timm's hub files, safetensors, torchvision's `.pth`).
    """
    for variant in names.architectures:
        (NPZ_MAPS if npz else NAME_MAPS)[variant] = names


def is_timm_source(weights: str) -> bool:
    """Whether `weights` is loaded through a name map: `hf://`, `.safetensors`, `.npz` or `.pth`."""
    return weights.startswith(HF_PREFIX) or weights.endswith(FILE_SUFFIXES)


LAYOUTS_BY_SOURCE = ("keras", "torch")


def check_layout(layout: str, weights, what: str) -> None:
    """Checks a builder's `layout` (its weights' source) against the weights it is given.

    Args:
        layout: `"keras"` (keras.applications' layout) or `"torch"` (timm's / torchvision's).
        weights: The builder's `weights` argument.
        what: What the torch layout changes, for the messages ("symmetric padding and ...").

    Raises:
        ValueError: For another value, timm weights with `layout="keras"`, or
            `weights="imagenet"` (keras' file) with `layout="torch"`.
    """
    if layout not in LAYOUTS_BY_SOURCE:
        raise ValueError(
            f"Invalid value for argument `layout`: {layout!r}. Expected one of {LAYOUTS_BY_SOURCE}."
        )
    weights = None if weights is None else os.fspath(weights)
    if weights is not None and is_timm_source(weights) and layout != "torch":
        raise ValueError(
            f"Invalid value for argument `layout`: {layout!r}. The weights {weights} were trained "
            f"in timm's layout ({what}): use layout='torch'."
        )
    if weights == "imagenet" and layout != "keras":
        raise ValueError(
            f"Invalid value for argument `layout`: {layout!r}. keras.applications' weights "
            "(weights='imagenet') need keras' layout: use layout='keras'."
        )


def weights_format(weights: str) -> str:
    """`"safetensors"` (`hf://` or a file), `"npz"` or `"pth"`, from a `weights` argument."""
    if weights.endswith(NPZ_SUFFIX):
        return "npz"
    return "pth" if weights.endswith(TORCH_SUFFIXES) else "safetensors"


@dataclasses.dataclass(frozen=True)
class TimmSource:
    """Resolved timm weights: the local safetensors file and its pretrained config.

    Attributes:
        path: The local `.safetensors` file.
        config: The parsed `config.json` (empty when there is none).
        label: What the user passed (`hf://...` or the path), for messages.
        format: `"safetensors"`, `"npz"` or `"pth"` (`weights_format`).
    """

    path: Path
    config: Mapping[str, Any]
    label: str
    format: str = "safetensors"

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


_KINDS = {"safetensors": "timm", "npz": ".npz (BiT)", "pth": "torchvision .pth"}


def resolve(variant: str, weights: str) -> TimmSource:
    """Finds (downloading if needed) the weights a `weights` argument names.

    Args:
        variant: The registry name of the model being built.
        weights: `"hf://<owner>/<repo>"` or the path of a `.safetensors`, `.npz` or `.pth` file.

    Returns:
        The local file and its config.

    Raises:
        ValueError: For a variant without a name map for the format, a malformed `hf://`
            name, a missing file, or a config for another architecture.
        WeightsUnavailableError: If the hub file is neither cached nor downloadable.
        MissingExtraError: For a `.pth` file without PyTorch installed.
    """
    fmt = weights_format(weights)
    maps = NPZ_MAPS if fmt == "npz" else NAME_MAPS
    if variant not in maps:
        twin = f" (timm's layout of {variant} is {variant}_tv)" if f"{variant}_tv" in maps else ""
        raise ValueError(
            f"Invalid value for argument `weights`: {weights!r}. {variant} has no {_KINDS[fmt]} name "
            f"map{twin}; {_KINDS[fmt]} weights load into: {', '.join(sorted(maps))}."
        )
    if fmt == "pth":
        extras.require("torch", f"Loading the PyTorch file {weights}", extra="torch")
    config_path = None
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
                f"Invalid value for argument `weights`: {weights!r}. No such {fmt} file."
            )
        if fmt == "safetensors":
            config_path = path.parent / CONFIG_FILE
    config = json.loads(config_path.read_text()) if config_path and config_path.is_file() else {}
    expected = maps[variant].architectures[variant]
    found = config.get("architecture")
    if found is not None and found != expected:
        raise ValueError(
            f"The weights {weights} are for timm architecture {found!r} ({config_path}); "
            f"{variant} loads {expected!r} weights."
        )
    return TimmSource(path, config, weights, fmt)


def _head_classes(tensors: Mapping[str, np.ndarray], head: str, layout: Layout) -> int | None:
    weight = tensors.get(layout.key(head, layout.suffixes.get("kernel", "kernel")))
    return None if weight is None else int(weight.shape[layout.classes_axis])


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


def _convert(layer, short: str, tensor: np.ndarray, names: TimmNames, layout: Layout) -> np.ndarray:
    if short == "kernel" and layer.name in names.flatten_chw:
        return flattened_chw_to_hwc(tensor, names.flatten_chw[layer.name])
    return layout.convert(layer, short, tensor)


def _plan(
    model: keras.Model, tensors: Mapping[str, np.ndarray], names: TimmNames, skip: tuple[str, ...]
):
    """Pairs every model weight with its converted tensor; collects what does not fit.

    The tensors of the `skip` modules are taken as read and their layers left as built.
    """
    layout = LAYOUTS[names.layout]
    assignments, missing, shapes, unmapped = [], [], [], []
    prefixes = tuple(layout.key(m, "") for m in skip)
    consumed = {k for k in tensors if k.startswith(prefixes)}
    for layer in _weighted_layers(model):
        module = names.module(layer.name)
        if module is None:
            unmapped.append(layer.name)
            continue
        if module in skip or module.startswith(prefixes):
            continue
        values = []
        suffixes = {**layout.suffixes, **names.suffixes.get(type(layer).__name__, {})}
        for weight in layer.weights:
            short = weight.name
            key = layout.key(module, suffixes.get(short, short))
            if key not in tensors:
                missing.append(key)
                continue
            consumed.add(key)
            value = _convert(layer, short, tensors[key], names, layout)
            if tuple(value.shape) != tuple(weight.shape):
                shapes.append(
                    f"{key} {tuple(tensors[key].shape)} -> {layer.name}/{short} {tuple(weight.shape)}"
                )
            values.append(value.astype(weight.dtype, copy=False))
        assignments.append((layer, values))
    unexpected = sorted(
        k for k in tensors if k not in consumed and not (layout.ignored and k.endswith(layout.ignored))
    )
    return assignments, missing, unexpected, shapes, unmapped


def load(
    model: keras.Model, source: TimmSource, variant: str, *, include_top: bool, classes: int,
) -> None:
    """Loads timm, BiT (`.npz`) or torchvision (`.pth`) weights into a kerasarch model.

    With `include_top=True` and a class count other than the file's, the backbone loads and
    the head stays newly initialized (printed in one line), the usual start of fine-tuning.

    Args:
        model: The kerasarch model.
        source: The resolved weights (`resolve`).
        variant: The model's registry name (selects the family's name map for the format).
        include_top: Whether the model has the classifier head.
        classes: The model's class count.

    Raises:
        ValueError: If a tensor is missing, unexpected or of the wrong shape, naming the first
            ones; nothing is assigned then.
    """
    names = (NPZ_MAPS if source.format == "npz" else NAME_MAPS)[variant]
    tensors = READERS[source.format](source.path)
    file_classes = _head_classes(tensors, names.head, LAYOUTS[names.layout])
    new_head = not include_top or (file_classes is not None and file_classes != classes)
    skip = names.ignored + ((names.head,) if new_head else ())
    skip += () if include_top else names.pre_logits
    assignments, missing, unexpected, shapes, unmapped = _plan(model, tensors, names, skip)
    if unmapped:
        raise ValueError(f"The {source.format} name map of {variant} does not cover layers {unmapped[:5]}.")
    problems = [
        _problems("missing from the file", missing),
        _problems("in the file but not in the model", unexpected),
        _problems("wrong shape", shapes),
    ]
    problems = [p for p in problems if p]
    if problems:
        raise ValueError(
            f"The weights {source.label} do not match model {model.name!r} ({variant}, "
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
