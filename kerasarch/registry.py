"""The model registry: one name per architecture variant, its builder and its metadata.

Each builder registers itself with `@register(...)` in its family's module, and that is
all a new variant needs: the registration carries its metadata as data (paper, year,
native input, preprocessing, reference parameter counts, official weights files, training
recipe, keras.applications twin), and the top-level namespace (`kerasarch.<name>`), the
test suites, the model tables and the API reference all read it from here.

This module imports neither TensorFlow nor Keras, so listing models stays cheap.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

    from kerasarch.weights import ImageNetWeights


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
class Recipe:
    """A training recipe: what the paper (or the reference code it names) trained with.

    Attributes:
        optimizer: `"sgd"` (momentum 0.9, Nesterov), `"adam"`, `"adamw"` or `"rmsprop"`.
        base_lr: Learning rate at `base_batch_size`.
        base_batch_size: The batch size `base_lr` was given for.
        schedule: `"constant"`, `"step"` or `"cosine"`.
        step_epochs: For `"step"`: divide the rate by `step_factor` every this many of the
            paper's `epochs`; a run of another length keeps the shape (30 of 90: every
            third of the run).
        step_fraction: For `"step"`: divide every this fraction of the run instead.
        step_factor: Divisor of each step.
        warmup_epochs: Linear warmup from 0 over this many epochs.
        warmup_fraction: Linear warmup over this fraction of the run instead.
        weight_decay: Decoupled weight decay (Keras optimizers' `weight_decay`).
        label_smoothing: Label smoothing of the cross-entropy.
        epochs: The paper's epoch count (for reference; `--epochs` decides).
        source: Where the numbers come from.
    """

    optimizer: str
    base_lr: float
    base_batch_size: int
    schedule: str = "constant"
    step_epochs: float = 0.0
    step_fraction: float = 0.0
    step_factor: float = 10.0
    warmup_epochs: float = 0.0
    warmup_fraction: float = 0.0
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    epochs: int = 0
    source: str = ""


@dataclasses.dataclass(frozen=True)
class PublishedAccuracy:
    """A published ImageNet accuracy of one set of weights for a variant.

    Attributes:
        top1: ImageNet-1k validation top-1, in percent.
        weights: Which weights it measures (`"keras.applications"`, `"torchvision"`,
            `"paper"`, or a timm tag such as `"timm resnet18.a1_in1k"`).
        source: Where the figure is published (a library's metadata or a paper's table).
        image_size: The evaluation resolution, where the source gives it.
    """

    top1: float
    weights: str
    source: str
    image_size: int | None = None


@dataclasses.dataclass(frozen=True)
class WeightsSource:
    """One published set of weights a variant can load, with its ImageNet figure and status.

    `ModelInfo.weights` lists them (`kerasarch weights list` prints them); the catalog is
    `kerasarch.weights_catalog`.

    Attributes:
        kind: `"keras"` (keras.applications' file), `"timm"` (a Hugging Face hub repository
            of timm), `"bit"` (Big Transfer's official `.npz`) or `"torchvision"` (a `.pth`).
        name: The file or repository (`"timm/resnet18.a1_in1k"`, `"BiT-M-R50x1.npz"`).
        argument: What to pass as `weights=` (`"imagenet"`, `"hf://timm/resnet18.a1_in1k"`,
            `"<folder>/BiT-M-R50x1.npz"` for a file downloaded by hand).
        url: Where the file is published.
        accuracy: Its published ImageNet top-1 with the source of the figure; None where
            none is published or known (never estimated).
        verified_by: The test that proves the loader on reference outputs (a golden file or
            an equivalence test); empty while the source is not yet verified.
        note: What else a user should know (another class count, another input size).
    """

    kind: str
    name: str
    argument: str
    url: str
    accuracy: PublishedAccuracy | None = None
    verified_by: str = ""
    note: str = ""

    @property
    def verified(self) -> bool:
        """Whether a golden or equivalence test proves this source loads correctly."""
        return bool(self.verified_by)


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
        recipe: The training recipe (usually the family's) `kerasarch train` starts from.
        imagenet: The official ImageNet weights files (`kerasarch.weights.ImageNetWeights`),
            or None where none is published.
        twin: The keras.applications model this variant reproduces weight for weight, as
            `"module.Class"` (e.g. `"vgg16.VGG16"`): the weights-equivalence suite checks
            every variant that names one.
        classes: Default number of classes of the head.
        min_size: Smallest spatial input size the backbone accepts.
        fixed_size_with_top: Whether `include_top=True` requires the native input size.
        min_size_with_top: Smallest input size with the head, where it is larger than
            `min_size` (None: the same).
        accuracy: Published ImageNet top-1 figures of this variant's weights, each with
            its source (`PublishedAccuracy`); empty where none is published.
    """

    name: str
    family: str
    paper: str
    year: int
    input_shape: tuple[int, int, int]
    preprocessing: str
    params: ParamCounts
    recipe: Recipe | None = None
    imagenet: ImageNetWeights | None = None
    twin: str | None = None
    classes: int = 1000
    min_size: int = 32
    fixed_size_with_top: bool = False
    min_size_with_top: int | None = None
    accuracy: tuple[PublishedAccuracy, ...] = ()

    @property
    def imagenet_weights(self) -> bool:
        """Whether `weights="imagenet"` has an official file to load."""
        return self.imagenet is not None

    @property
    def weights(self) -> tuple[WeightsSource, ...]:
        """Every known source of pretrained weights for this variant (`kerasarch.weights_catalog`)."""
        from kerasarch import weights_catalog

        return weights_catalog.sources(self)

    def as_dict(self) -> dict[str, Any]:
        """Returns the metadata as plain JSON-serializable data."""
        return {
            **dataclasses.asdict(self), "imagenet_weights": self.imagenet_weights,
            "weights": [dataclasses.asdict(source) for source in self.weights],
        }


@dataclasses.dataclass(frozen=True)
class _Entry:
    builder: Callable[..., keras.Model]  # what `kerasarch.<name>` is
    base: Callable[..., keras.Model]  # the function written in the family module
    info: ModelInfo


_REGISTRY: dict[str, _Entry] = {}


def _preset_builder(builder: Callable, name: str, preset: dict[str, Any]) -> Callable:
    """A function for a preset variant (`vgg16_bn`): the builder with arguments fixed.

    A plain function rather than a `functools.partial`, so that `help()` and IDEs show its
    own name and its remaining keyword arguments.
    """

    @functools.wraps(builder)
    def variant(**kwargs: Any) -> keras.Model:
        return builder(**preset, **kwargs)

    signature = inspect.signature(builder)
    variant.__signature__ = signature.replace(
        parameters=[p for p in signature.parameters.values() if p.name not in preset]
    )
    variant.__name__ = variant.__qualname__ = name
    fixed = ", ".join(f"{k}={v!r}" for k, v in preset.items())
    variant.__doc__ = f"`{builder.__name__}({fixed})`.\n\n{builder.__doc__ or ''}"
    del variant.__wrapped__  # inspect and help() read the signature set here
    return variant


def register(
    name: str | None = None, preset: dict[str, Any] | None = None, **metadata: Any
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Registers a builder, under its function name or `name`, with the given metadata.

    One builder may be registered several times: `vgg16` and, with
    `name="vgg16_bn", preset={"batch_norm": True}`, its batch-normalized variant.

    Args:
        name: Registry name; default the builder's function name.
        preset: Architecture arguments fixed for this name; `kerasarch.<name>` is then a
            function of its own that passes them to the builder.
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
        info = ModelInfo(name=key, **fields)
        variant = _preset_builder(builder, key, dict(preset)) if preset else builder
        _REGISTRY[key] = _Entry(variant, builder, info)
        return builder

    return decorator


def unregister(name: str) -> None:
    """Removes a registered name (for plugins and tests that register temporary models).

    Args:
        name: A name from `list_models()`.
    """
    _lookup(name)
    del _REGISTRY[name]


def _load_families() -> None:
    """Imports `kerasarch.models`, whose modules register every family (and import Keras)."""
    importlib.import_module("kerasarch.models")


def list_models(family: str | None = None) -> list[str]:
    """Lists the registered model names, in registration order.

    Args:
        family: If given, only the models of this family (`"vgg"`, `"lenet"`, ...).

    Returns:
        The model names.
    """
    _load_families()
    return [n for n, e in _REGISTRY.items() if family is None or e.info.family == family]


def _lookup(name: str) -> _Entry:
    _load_families()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"Unknown model name: {name!r}.{hint} Available models: {', '.join(_REGISTRY)}."
        ) from None


def get_model(name: str, **kwargs: Any) -> keras.Model:
    """Builds a registered model by name.

    Args:
        name: A name from `list_models()`.
        **kwargs: The model contract arguments (`include_top`, `weights`, `classes`, ...).

    Returns:
        The built `keras.Model`.
    """
    return _lookup(name).builder(**kwargs)


def graph_only(name: str, **kwargs: Any) -> keras.Model:
    """Builds a registered model's graph with every variable shaped and named but no values.

    Under `keras.StatelessScope(initialize_variables=False)` variables defer their values:
    layers, names, output spec and `count_params()` are a normal build's, at a fraction of
    its cost (BiT-R152x4: 1.3 s against 9.2 s on 2 cores); it cannot compute. The Keras
    session is cleared after the build: the next stateless scope to close (TensorFlow's
    `compute_output_spec` opens one) would initialize the deferred variables.

    Args:
        name: A name from `list_models()`.
        **kwargs: The model contract arguments, as for `get_model` (no `weights`).

    Returns:
        The model, without weight values.
    """
    import keras

    with keras.StatelessScope(initialize_variables=False):
        model = get_model(name, **kwargs)
    keras.backend.clear_session()
    return model


def builder(name: str) -> Callable[..., keras.Model]:
    """Returns the function that builds a registered model (`kerasarch.<name>`).

    Args:
        name: A name from `list_models()`.

    Returns:
        The builder, with the model contract as keyword-only arguments.
    """
    return _lookup(name).builder


def model_info(name: str) -> ModelInfo:
    """Returns the metadata of a registered model.

    Args:
        name: A name from `list_models()`.

    Returns:
        Its `ModelInfo`.
    """
    return _lookup(name).info


def _args_markdown(text: str) -> list[str]:
    """Google-style argument lines (`name (type): text`, continued by indented lines) as a list."""
    items: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        head, sep, rest = stripped.partition("): ")
        if sep and " (" in head and not head.startswith(("`", "(")) and len(line) - len(stripped) <= 4:
            name, _, kind = head.partition(" (")
            items.append(f"- `{name}` ({kind}): {rest}")
        elif items:
            items[-1] += " " + stripped
    return items


def api_reference() -> str:
    """The API reference's architecture section (Markdown), generated from the registry.

    `docs/api.md` holds it between `<!-- architectures:start -->` and `<!-- architectures:end -->`;
    a test keeps the two equal. The contract's arguments are listed once, then each family's
    builders with their real signature, summary and own arguments, so a new family appears
    by registering it.

    Returns:
        The Markdown text.
    """
    from kerasarch import heads  # imports Keras, as the families do

    _load_families()
    lines = ["### Arguments every builder takes", "", *_args_markdown(heads.CONTRACT_DOC), ""]
    family, seen = None, set()
    for name, entry in _REGISTRY.items():
        builder = entry.base
        if builder in seen:
            continue
        seen.add(builder)
        if entry.info.family != family:
            family = entry.info.family
            lines += [f"### {family}", "", f"Module `{builder.__module__}`.", ""]
        summary, family_args = getattr(builder, "_kerasarch_doc", (inspect.getdoc(builder) or "", ""))
        signature = f"{builder.__name__}{inspect.signature(builder)}".replace("'keras.Model'", "keras.Model")
        lines += [f"#### `kerasarch.{name}`", "", "```text", signature, "```", "", summary, ""]
        presets = [n for n, e in _REGISTRY.items() if e.base is builder and n != name]
        if presets:
            lines += [f"Registered presets: {', '.join(f'`kerasarch.{p}`' for p in presets)}.", ""]
        if family_args:
            lines += ["Architecture arguments:", "", *_args_markdown(family_args), ""]
    return "\n".join(lines).rstrip("\n")


def package_stub() -> str:
    """The text of `kerasarch/__init__.pyi`: every builder with its real signature, for IDEs.

    The package resolves `kerasarch.<name>` lazily (it imports no Keras until a builder is
    used), which static tools cannot follow; the stub tells them. `kerasarch models
    --write-metadata` rewrites it and a test keeps it equal to the registry.

    Returns:
        The stub's source.
    """
    _load_families()
    lines = [
        '"""Generated by `kerasarch models --write-metadata` from kerasarch.registry; do not edit."""',
        "",
        "import keras",
        "",
        "from kerasarch.registry import ModelInfo as ModelInfo",
        "from kerasarch.registry import ParamCounts as ParamCounts",
        "from kerasarch.registry import Recipe as Recipe",
        "from kerasarch.registry import get_model as get_model",
        "from kerasarch.registry import list_models as list_models",
        "from kerasarch.registry import model_info as model_info",
        "",
        "__version__: str",
        "",
    ]
    for name in _REGISTRY:
        function = builder(name)
        module = inspect.getmodule(function)
        if module is not None and getattr(module, name, None) is function:
            lines.append(f"from {module.__name__} import {name} as {name}")
        else:  # a preset: a function made at registration, with the contract's signature
            signature = str(inspect.signature(function)).replace("'keras.Model'", "keras.Model")
            lines.append(f"def {name}{signature}: ...")
    return "\n".join(lines) + "\n"
