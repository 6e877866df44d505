"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012), in the single-tower form torchvision ships.

Layer table (input 224x224x3):

    conv1  64 @ 11x11, stride 4, pad 2    -> 55x55x64,  max pool 3/2 -> 27x27
    conv2  192 @ 5x5, pad 2               -> 27x27x192, max pool 3/2 -> 13x13
    conv3  384 @ 3x3                      -> 13x13x384
    conv4  256 @ 3x3                      -> 13x13x256
    conv5  256 @ 3x3                      -> 13x13x256, max pool 3/2 -> 6x6
    adaptive average pool to 6x6, fc6 4096, fc7 4096 (dropout 0.5 before each), predictions

The adaptive pooling (torchvision's) makes the head work at any input size >= 63, where
pool5 is 1x1 (repeated to 6x6); at 224 pool5 is already 6x6 and passes through.
"""

from __future__ import annotations

import keras

from kerasarch import heads
from kerasarch import layers as ka_layers
from kerasarch.registry import ParamCounts, PublishedAccuracy, Recipe, register
from kerasarch.weights_timm import TimmNames, register_names

RECIPE = Recipe(
    "sgd", 0.01, 128, schedule="step", step_epochs=30, weight_decay=5e-4, epochs=90,
    source="Krizhevsky et al. 2012, sec. 5: SGD momentum 0.9, lr 0.01 at batch 128, /10 "
    "on plateaus (three times in ~90 epochs), weight decay 5e-4",
)


# torchvision's state-dict names (`alexnet-owt-7be5be79.pth`; timm has no AlexNet): the
# `features` and `classifier` Sequentials, numbered by position (ReLU, pooling and dropout
# hold places but no weights). fc6 reads pool5 flattened channels first in PyTorch.
TORCHVISION_NAMES = {
    "conv1": "features.0", "conv2": "features.3", "conv3": "features.6", "conv4": "features.8",
    "conv5": "features.10", "fc6": "classifier.1", "fc7": "classifier.4", "predictions": "classifier.6",
}
register_names(TimmNames(
    TORCHVISION_NAMES.get, head="classifier.6", architectures={"alexnet": "alexnet"},
    pre_logits=("classifier.1", "classifier.4"), flatten_chw={"fc6": (256, 6, 6)},
))


def _conv(x, filters: int, kernel: int, name: str, strides: int = 1, padding: int = 0):
    if padding:
        # Symmetric zero padding as in the reference: Keras "same" pads asymmetrically at
        # stride 4 (3 and 4 pixels for 224), which would shift every feature map.
        x = keras.layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(
        filters, kernel, strides=strides, padding="valid" if padding else "same",
        activation="relu", name=name,
    )(x)


def _pool(x, name: str):
    return keras.layers.MaxPooling2D(pool_size=3, strides=2, name=name)(x)


@register(
    paper="ImageNet Classification with Deep Convolutional Neural Networks (Krizhevsky et al.)",
    year=2012,
    input_shape=(224, 224, 3),
    preprocessing="torch",
    min_size=63,
    params=ParamCounts(61_100_840, 61_100_840, "torchvision 0.29 alexnet"),
    recipe=RECIPE,
    accuracy=(
        PublishedAccuracy(56.522, "torchvision V1", "torchvision 0.29 meta", 224),
        PublishedAccuracy(59.3, "paper, one CNN", "Krizhevsky et al. 2012, Table 2 (ILSVRC-2012 val, "
                          "top-1 error 40.7%)", 224),
        PublishedAccuracy(63.3, "paper, ensemble of 7 CNNs", "Krizhevsky et al. 2012, Table 2 (two of "
                          "the seven pre-trained on ImageNet Fall 2011)", 224),
    ),
)
@heads.contract_docstring()
def alexnet(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
            classifier_activation="softmax", include_preprocessing=True, augmentation=None,
            name=None) -> keras.Model:
    """AlexNet (Krizhevsky et al., 2012), single-tower variant (61,100,840 parameters).

    Input: 224x224x3 raw RGB pixels in [0, 255], normalized in the graph with the ImageNet
    mean and standard deviation (torchvision's convention). Any size >= 63 works, with or
    without the head: an adaptive average pooling brings the last feature map to 6x6, as
    torchvision's does (a 1x1 map, from inputs below 95, is repeated).

    Departs from the 2012 paper: the paper split the network over two GPUs (two towers of
    48/128/192/192/128 filters that talk only at conv3 and the dense layers) with 96
    filters in conv1 and local response normalization after conv1 and conv2. This is the
    one-tower "One weird trick" layout (Krizhevsky 2014) that torchvision ships: 64, 192,
    384, 256, 256 filters, no LRN, which trains as well and fits on one device.
    """
    spec = heads.resolve("alexnet", heads.contract_args(locals()))
    inputs, x = heads.image_input(spec)
    x = _conv(x, 64, 11, "conv1", strides=4, padding=2)
    x = _pool(x, "pool1")
    x = _conv(x, 192, 5, "conv2")
    x = _pool(x, "pool2")
    x = _conv(x, 384, 3, "conv3")
    x = _conv(x, 256, 3, "conv4")
    x = _conv(x, 256, 3, "conv5")
    x = _pool(x, "pool5")
    if spec.include_top:
        x = ka_layers.AdaptiveAveragePooling2D(6, name="avgpool")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dropout(0.5, name="fc6_dropout")(x)
        x = keras.layers.Dense(4096, activation="relu", name="fc6")(x)
        x = keras.layers.Dropout(0.5, name="fc7_dropout")(x)
        x = keras.layers.Dense(4096, activation="relu", name="fc7")(x)
        x = heads.predictions(spec, x)
    else:
        x = heads.features(spec, x)
    return heads.finish(spec, inputs, x)
