"""The model registry: one name per architecture variant, its builder and its metadata.

Each builder registers itself with `@register(...)`. The metadata is data (paper, year,
native input, preprocessing, reference parameter counts) so that tests can pin it and the
README's model table can be generated from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras


@dataclasses.dataclass(frozen=True)
class ParamCounts:
    """Reference parameter counts of a variant with its default classifier head.

    Keras counts BatchNorm moving mean and variance as non-trainable weights; PyTorch does
    not, so `total` is the Keras-convention count and `trainable` is what torchvision and
    timm report.

    Attributes:
        total: All weights, trainable and not (Keras `count_params()`).
        trainable: Trainable weights only.
        source: Where the figures come from (a reference library or a derivation).
    """

    total: int
    trainable: int
    source: str


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """Metadata of one registered variant.

    Attributes:
        name: Registry name, also the builder's function name.
        family: Family module name (`vgg`, `resnet`, ...).
        paper: Paper title and authors.
        year: Publication year.
        input_shape: Native input shape `(height, width, channels)`.
        preprocessing: Name of the in-graph normalization (see `kerasarch.preprocessing`).
        params: Reference parameter counts for the default head.
        imagenet_weights: Whether `weights="imagenet"` has an official file to load.
        classes: Default number of classes of the head.
        min_size: Smallest spatial input size the backbone accepts.
        fixed_size_with_top: Whether `include_top=True` requires the native input size.
        min_size_with_top: Smallest input size with the head, where it is larger than
            `min_size` (None: the same).
    """

    name: str
    family: str
    paper: str
    year: int
    input_shape: tuple[int, int, int]
    preprocessing: str
    params: ParamCounts
    imagenet_weights: bool = False
    classes: int = 1000
    min_size: int = 32
    fixed_size_with_top: bool = False
    min_size_with_top: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Returns the metadata as plain JSON-serializable data."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class _Entry:
    builder: Callable[..., keras.Model]
    preset: dict[str, Any]
    info: ModelInfo


_REGISTRY: dict[str, _Entry] = {}


def register(
    name: str | None = None, preset: dict[str, Any] | None = None, **metadata: Any
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Registers a builder, under its function name or `name`, with the given metadata.

    One builder may be registered several times: `vgg16` and, with
    `name="vgg16_bn", preset={"batch_norm": True}`, its batch-normalized variant.

    Args:
        name: Registry name; default the builder's function name.
        preset: Architecture arguments `get_model` passes to the builder for this name.
        **metadata: The other `ModelInfo` fields; `family` defaults to the module name.

    Returns:
        A decorator that records the builder and returns it unchanged.

    Raises:
        ValueError: If the name is already registered.
    """

    def decorator(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ValueError(f"A model named {key!r} is already registered.")
        fields = {"family": builder.__module__.rsplit(".", 1)[-1], **metadata}
        _REGISTRY[key] = _Entry(builder, dict(preset or {}), ModelInfo(name=key, **fields))
        return builder

    return decorator


def list_models(family: str | None = None) -> list[str]:
    """Lists the registered model names, in registration order.

    Args:
        family: If given, only the models of this family (`"vgg"`, `"lenet"`, ...).

    Returns:
        The model names.
    """
    return [n for n, e in _REGISTRY.items() if family is None or e.info.family == family]


def _lookup(name: str) -> _Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"Unknown model name: {name!r}. Available models: {', '.join(_REGISTRY)}."
        ) from None


def get_model(name: str, **kwargs: Any) -> keras.Model:
    """Builds a registered model by name.

    Args:
        name: A name from `list_models()`.
        **kwargs: The model contract arguments (`include_top`, `weights`, `classes`, ...).

    Returns:
        The built `keras.Model`.
    """
    entry = _lookup(name)
    return entry.builder(**entry.preset, **kwargs)


def model_info(name: str) -> ModelInfo:
    """Returns the metadata of a registered model.

    Args:
        name: A name from `list_models()`.

    Returns:
        Its `ModelInfo`.
    """
    return _lookup(name).info
