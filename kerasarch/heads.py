"""The model contract shared by every family: argument checks, image input and classifier head.

A family builder does three things with this module:

    spec = heads.resolve("vgg16", heads.contract_args(locals()))  # checked arguments + metadata
    inputs, x = heads.image_input(spec)      # raw-image input, augmentation, normalization
    ... the family's stem and backbone on x ...
    return heads.finish(spec, inputs, heads.pooled_head(spec, x))

so the contract (DESIGN.md section 1) is written once, and its documentation too: every
builder's docstring gets the shared `Args` section from `contract_docstring`.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import textwrap
from collections.abc import Callable
from typing import Any

import keras
from typing_extensions import TypedDict

from kerasarch import augment, preprocessing, registry, weights_timm
from kerasarch import layers as ka_layers
from kerasarch import weights as weights_lib

POOLINGS = (None, "avg", "max")


# The contract's arguments, documented once; `contract_docstring` appends them to every
# builder's docstring (as keras.applications formats its BASE_DOCSTRING into each builder).
CONTRACT_DOC = """\
    include_top (bool): Put the classifier head on top of the backbone.
    weights (str | os.PathLike | None): `None` (random init), `"imagenet"` (the official
        file, where one exists), the path of a weights file (a Keras Applications
        legacy `.h5`, or a Keras 3 `.weights.h5`), or, for families with a name map,
        timm weights (`"hf://timm/<repository>"` or a `.safetensors` file), BiT's `.npz`
        or torchvision's `.pth` (the `torch` extra); `kerasarch weights list` shows them.
    input_shape (tuple | None): `(height, width, channels)`; default the variant's native
        size. Spatial dimensions may be `None` where the architecture allows it.
    pooling (str | None): With `include_top=False`: `None` (4D features), `"avg"` or `"max"`.
    classes (int): Number of classes of the head.
    classifier_activation (str | Callable | None): Activation of the head (any name
        `keras.activations.get` knows); `None` gives logits.
    include_preprocessing (bool): Put the weights' normalization in the graph, so the model
        takes raw pixels in `[0, 255]`, uint8 or float.
    augmentation (str | keras.layers.Layer | None): `None`, `"flip"`, `"shift"`,
        `"randaugment"` or a Keras layer, placed right after the input and active only in
        training.
    name (str | None): Model name; default the registry name."""


class ModelArgs(TypedDict, total=False):
    """The keyword arguments every kerasarch builder accepts (the model contract).

    Each builder lists them as keyword-only parameters and documents them in its `Args`
    section (the text is `CONTRACT_DOC`, shared by all builders).
    """

    include_top: bool
    weights: str | os.PathLike | None
    input_shape: tuple[int | None, int | None, int] | None
    pooling: str | None
    classes: int
    classifier_activation: str | Callable | None
    include_preprocessing: bool
    augmentation: str | keras.layers.Layer | None
    name: str


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The checked contract arguments of one build, with the variant's registry metadata."""

    info: registry.ModelInfo
    include_top: bool
    weights: str | None
    input_shape: tuple[int | None, int | None, int]
    pooling: str | None
    classes: int
    classifier_activation: str | Callable | None
    include_preprocessing: bool
    augmentation: str | keras.layers.Layer | None
    name: str
    timm: weights_timm.TimmSource | None = None  # resolved timm weights (`hf://`, `.safetensors`)


def _fail(arg: str, value: Any, valid: str) -> ValueError:
    return ValueError(f"Invalid value for argument `{arg}`: {value!r}. {valid}")


def _indent(text: str) -> str:
    return "\n".join(("    " + line) if line else line for line in text.splitlines())


def contract_docstring(family_args: str = "") -> Callable[[Callable], Callable]:
    """Decorator: completes a builder's docstring with the shared `Args` and `Returns`.

    The builder's own docstring is its summary; this appends the contract's arguments
    (`CONTRACT_DOC`), then the family's own (`family_args`, Google style, indented as the
    argument lines), so the text is written once and `help()` shows all of it.

    Args:
        family_args: Docstring lines for the builder's architecture arguments.

    Returns:
        The decorator, which returns the builder with its `__doc__` completed.
    """

    def decorator(builder: Callable) -> Callable:
        summary = inspect.cleandoc(builder.__doc__ or "")
        family = textwrap.dedent(family_args).strip("\n")
        args = CONTRACT_DOC + ("\n" + _indent(family) if family else "")
        builder.__doc__ = f"{summary}\n\nArgs:\n{args}\n\nReturns:\n    A `keras.Model`.\n"
        # The parts, for the generated API reference (`kerasarch.registry.api_reference`).
        builder._kerasarch_doc = (summary, family)
        return builder

    return decorator


def contract_args(args: dict[str, Any]) -> dict[str, Any]:
    """The contract's arguments among a builder's `locals()` (its own ones left out)."""
    return {k: v for k, v in args.items() if k in ModelArgs.__annotations__}


def _check_activation(value: Any) -> Any:
    try:
        keras.activations.get(value)
    except (ValueError, TypeError) as error:
        raise _fail(
            "classifier_activation", value,
            f"Expected None, a callable or an activation name keras.activations knows ({error})",
        ) from None
    return value


def _check_input_shape(info: registry.ModelInfo, input_shape: Any, include_top: bool):
    if input_shape is None:
        return tuple(info.input_shape)
    try:
        shape = tuple(None if d is None else int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise _fail("input_shape", input_shape, "Expected (height, width, channels).") from None
    if len(shape) != 3:
        raise _fail("input_shape", input_shape, "Expected 3 values (height, width, channels).")
    if shape[2] != info.input_shape[2]:
        raise _fail(
            "input_shape", input_shape,
            f"{info.name} takes {info.input_shape[2]} channel(s), received {shape[2]}.",
        )
    if include_top and info.fixed_size_with_top and shape[:2] != info.input_shape[:2]:
        raise _fail(
            "input_shape", input_shape,
            f"With include_top=True, {info.name} needs its native size "
            f"{info.input_shape[:2]} (its head is flattened); use include_top=False for "
            f"other sizes.",
        )
    for d in shape[:2]:
        if d is not None and d < info.min_size:
            raise _fail(
                "input_shape", input_shape,
                f"{info.name} needs height and width >= {info.min_size}.",
            )
    smallest = info.min_size_with_top
    if include_top and smallest and any(d is not None and d < smallest for d in shape[:2]):
        raise _fail(
            "input_shape", input_shape,
            f"With include_top=True, {info.name} needs height and width >= {smallest}; "
            f"use include_top=False for smaller inputs.",
        )
    return shape


def resolve(registry_name: str, kwargs: dict[str, Any]) -> ModelSpec:
    """Checks the contract arguments of a build and fills in the variant's defaults.

    Args:
        registry_name: The registered variant being built.
        kwargs: The keyword arguments the user passed to the builder.

    Returns:
        The checked `ModelSpec`.

    Raises:
        TypeError: For an argument that is not part of the contract.
        ValueError: For a bad value, naming the argument, the value and what is valid.
    """
    unknown = sorted(set(kwargs) - set(ModelArgs.__annotations__))
    if unknown:
        raise TypeError(
            f"{registry_name}() got unexpected keyword argument(s) {unknown}; valid: "
            f"{sorted(ModelArgs.__annotations__)}."
        )
    info = registry.model_info(registry_name)
    include_top = bool(kwargs.get("include_top", True))
    classes = kwargs.get("classes", info.classes)
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise _fail("classes", classes, "Expected an integer >= 1.")
    pooling = kwargs.get("pooling")
    if pooling not in POOLINGS:
        raise _fail("pooling", pooling, f"Expected one of {POOLINGS}.")
    weights = kwargs.get("weights")
    timm = None
    if weights is not None:
        weights = os.fspath(weights)
        if weights_timm.is_timm_source(weights):
            # Any class count: another than the file's gets a new head (weights_timm.load).
            timm = weights_timm.resolve(registry_name, weights)
        elif weights == "imagenet":
            if not info.imagenet_weights:
                raise _fail(
                    "weights", weights,
                    f"{registry_name} has no published ImageNet weights; use None or a path.",
                )
            if include_top and classes != 1000:
                raise _fail(
                    "classes", classes,
                    "With weights='imagenet' and include_top=True, classes must be 1000.",
                )
        elif not os.path.isfile(weights):
            raise _fail(
                "weights", weights, "Expected None, 'imagenet' or the path of an existing file."
            )
    augmentation = kwargs.get("augmentation")
    if augmentation is not None and not isinstance(augmentation, keras.layers.Layer):
        if augmentation not in augment.AUGMENTATIONS:
            raise _fail(
                "augmentation", augmentation,
                f"Expected None, one of {augment.AUGMENTATIONS} or a Keras layer.",
            )
    name = kwargs.get("name")
    name = registry_name if name is None else name
    if not isinstance(name, str) or not name:
        raise _fail("name", name, "Expected a non-empty string.")
    return ModelSpec(
        info=info,
        include_top=include_top,
        weights=weights,
        input_shape=_check_input_shape(info, kwargs.get("input_shape"), include_top),
        pooling=pooling,
        classes=classes,
        classifier_activation=_check_activation(kwargs.get("classifier_activation", "softmax")),
        include_preprocessing=bool(kwargs.get("include_preprocessing", True)),
        augmentation=augmentation,
        name=name,
        timm=timm,
    )


def image_input(spec: ModelSpec) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """Builds the raw-image input block every model starts with (before any architecture stem).

    Order: `images` input, then the augmentation (training only), then the normalization
    the weights expect (`preprocessing`).

    Args:
        spec: The checked contract.

    Returns:
        `(inputs, x)`: the model input and the tensor the backbone starts from.
    """
    inputs = keras.Input(shape=spec.input_shape, name="images")
    x = inputs
    if spec.augmentation is not None:
        layer = augment.augmentation_layer(spec.augmentation)
        x = ka_layers.TrainingOnly(layer, name="augmentation")(x)
    if spec.include_preprocessing:
        if spec.timm is not None:
            norm = spec.timm.normalization(weights_timm.NAME_MAPS[spec.info.name].normalization)
        else:
            norm = preprocessing.normalization(spec.info.preprocessing)
        x = norm.layer()(x)
    return inputs, x


def predictions(spec: ModelSpec, x: keras.KerasTensor) -> keras.KerasTensor:
    """The final dense classifier layer, `predictions`.

    It computes in float32 (its `dtype`), so under a mixed-precision policy the model's
    outputs stay float32; the weights are the same either way.
    """
    return keras.layers.Dense(
        spec.classes,
        activation=spec.classifier_activation,
        dtype="float32",
        name="predictions",
    )(x)


def features(spec: ModelSpec, x: keras.KerasTensor) -> keras.KerasTensor:
    """The output of a model built with `include_top=False`: pooled or not, in float32.

    The final linear float32 `Activation` is an identity under a float32 policy; under a
    mixed-precision policy it casts the features to float32 (the contract's output dtype).
    """
    if spec.pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif spec.pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.layers.Activation("linear", dtype="float32", name="features")(x)


def pooled_head(
    spec: ModelSpec,
    x: keras.KerasTensor,
    pre_logits: Callable[[keras.KerasTensor], keras.KerasTensor] | None = None,
) -> keras.KerasTensor:
    """The usual head: global average pooling, the family's pre-logits layers, `predictions`.

    Without the top it is `features` (the contract's `pooling`), and `pre_logits` is not
    applied: like keras.applications, `include_top=False` returns the backbone's output.

    Args:
        spec: The checked contract.
        x: The backbone's last feature map.
        pre_logits: The hook for a family's layers between pooling and `predictions`
            (dropout, a LayerNorm, a dense or 1x1-convolution head): a function from the
            pooled `(batch, channels)` tensor to the tensor `predictions` reads. Its
            layers need names of their own (deterministic naming is part of the contract).

    Returns:
        The model output.
    """
    if not spec.include_top:
        return features(spec, x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pre_logits is not None:
        x = pre_logits(x)
    return predictions(spec, x)


def finish(spec: ModelSpec, inputs: keras.KerasTensor, outputs: keras.KerasTensor) -> keras.Model:
    """Wraps the graph into a `keras.Model` and loads the requested weights.

    Args:
        spec: The checked contract.
        inputs: The model input from `image_input`.
        outputs: The output of the head.

    The official files (and files of the same layout given by path) load through the
    family's layer map and ignore list (`kerasarch.weights.ImageNetWeights`).

    Returns:
        The model, with weights loaded when `spec.weights` is set.
    """
    model = keras.Model(inputs, outputs, name=spec.name)
    if spec.weights is None:
        return model
    if spec.timm is not None:
        weights_timm.load(
            model, spec.timm, spec.info.name, include_top=spec.include_top, classes=spec.classes
        )
        return model
    official = spec.info.imagenet
    mapping = {} if official is None else official.mapping(spec.include_top)
    path = spec.weights
    if path == "imagenet":
        path = weights_lib.fetch(spec.info.name, include_top=spec.include_top)
    weights_lib.load(model, path, **mapping)
    return model


def main_output(model: keras.Model) -> keras.Model:
    """The model with its main output only: what inference, evaluation and exports use.

    A model built with auxiliary classifiers (`googlenet(aux_logits=True)`) returns
    `[main, aux1, aux2]` for training; this is a model over the same layers and weights
    whose one output is the first. A single-output model is returned as it is.

    Args:
        model: A Keras model, built or loaded.

    Returns:
        The single-output model.
    """
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) <= 1:
        return model
    return keras.Model(model.inputs, outputs[0], name=model.name)
