"""Transfer learning: a new head on a pretrained backbone, frozen or partly unfrozen."""

from __future__ import annotations

import keras

MODES = ("feature_extraction", "fine_tune")


def _backbone_output(model: keras.Model):
    """The tensor the old classifier reads (or the model's output when it has none)."""
    try:
        head = model.get_layer("predictions")
    except ValueError:
        return model.output
    return head.input


def transfer(
    model: keras.Model,
    classes: int,
    mode: str = "feature_extraction",
    unfreeze: int | str | None = None,
    dropout: float = 0.0,
) -> keras.Model:
    """A model for a new task: the pretrained `model` without its head, and a new head.

    The backbone keeps the pretrained model's layers (and weights); the new head is a
    `Dense(classes)` named `predictions` (softmax, float32). BatchNormalization layers stay
    frozen in both modes, so they keep running in inference mode with the pretrained
    statistics: updating them on a small, differently distributed dataset is the classic
    way fine-tuning goes wrong (Keras runs a BatchNormalization whose `trainable` is False
    in inference mode).

    Args:
        model: A pretrained kerasarch (or any Functional) model.
        classes: Classes of the new task.
        mode: `"feature_extraction"`: every backbone layer frozen; `"fine_tune"`: the last
            `unfreeze` layers with weights (an int), or every layer from the one named
            `unfreeze` (a str) on, are trainable.
        unfreeze: See `mode`; required for `"fine_tune"`.
        dropout: Dropout rate before the new head.

    Returns:
        The new `keras.Model` (not compiled).

    Raises:
        ValueError: Bad `mode`, `classes` or `unfreeze`.
    """
    if mode not in MODES:
        raise ValueError(f"Invalid value for argument `mode`: {mode!r}. Expected one of {MODES}.")
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"Invalid value for argument `classes`: {classes!r}. Expected an int >= 1.")
    if mode == "fine_tune" and unfreeze is None:
        raise ValueError("mode='fine_tune' needs `unfreeze`: a number of layers or a layer name.")
    features = _backbone_output(model)
    backbone = keras.Model(model.inputs, features, name=f"{model.name}_backbone")
    with_weights = [layer for layer in backbone.layers if layer.weights]
    trainable: set[str] = set()
    if mode == "fine_tune":
        if isinstance(unfreeze, str):
            names = [layer.name for layer in backbone.layers]
            if unfreeze not in names:
                raise ValueError(f"Invalid value for argument `unfreeze`: no layer named {unfreeze!r}.")
            start = names.index(unfreeze)
            trainable = {layer.name for layer in backbone.layers[start:]}
        else:
            if isinstance(unfreeze, bool) or not isinstance(unfreeze, int) or unfreeze < 0:
                raise ValueError(f"Invalid value for argument `unfreeze`: {unfreeze!r}.")
            chosen = with_weights[len(with_weights) - unfreeze:] if unfreeze else []
            trainable = {layer.name for layer in chosen}
    for layer in backbone.layers:
        frozen = layer.name not in trainable or isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = not frozen
    x = backbone.output
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="transfer_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="transfer_dropout")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(backbone.inputs, outputs, name=f"{model.name}_transfer")
