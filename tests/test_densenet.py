"""DenseNet: the channel rule and compression read from built graphs, any configuration, bad ones refused.

The registry suite (tests/test_models.py) covers the registered variants' contract and
pinned counts; tests/test_weights.py their keras.applications equivalence. Here: what is
particular to DenseNet, on small configurations (seconds to build).
"""

from __future__ import annotations

import inspect
import math
import re

import keras
import numpy as np
import pytest

import kerasarch
from kerasarch.models import densenet as dn

from conftest import raw_images

# A small DenseNet-BC with a compression whose products are not integers (floor matters).
SMALL = dict(growth_rate=12, block_config=(3, 4, 2), num_init_features=20, bn_size=2, compression=0.7)


def closed_form_params(growth_rate, block_config, num_init_features=64, bn_size=4, compression=0.5,
                       classes=1000, trainable=False):
    """The parameter count of a DenseNet-BC, written out from the paper's layer definitions.

    Keras counts 4 weights per BatchNorm channel (gamma, beta, moving mean and variance),
    2 of them trainable; convolutions have no bias; the head is a dense layer with bias.
    """
    bn = 2 if trainable else 4
    k, b = growth_rate, bn_size
    total = 7 * 7 * 3 * num_init_features + bn * num_init_features  # stem conv + BN
    c = num_init_features
    for index, layers in enumerate(block_config):
        for _ in range(layers):
            total += bn * c + c * b * k + bn * b * k + 3 * 3 * b * k * k
            c += k
        if index < len(block_config) - 1:
            kept = math.floor(c * compression)
            total += bn * c + c * kept
            c = kept
    return total + bn * c + c * classes + classes  # final BN, classifier


@pytest.fixture(scope="module")
def small():
    return kerasarch.densenet(**SMALL, input_shape=(32, 32, 3), classes=5)


def _channels(model, layer_name):
    return model.get_layer(layer_name).input.shape[-1]


def test_dense_layer_l_receives_k0_plus_k_times_l_minus_1_channels(small):
    k, k0 = SMALL["growth_rate"], SMALL["num_init_features"]
    checked = 0
    for index, layers in enumerate(SMALL["block_config"]):
        stage = index + 2
        for layer in range(1, layers + 1):
            name = f"conv{stage}_block{layer}"
            assert _channels(small, f"{name}_0_bn") == k0 + k * (layer - 1), name
            assert small.get_layer(f"{name}_1_conv").filters == SMALL["bn_size"] * k
            assert small.get_layer(f"{name}_2_conv").filters == k
            concat = small.get_layer(f"{name}_concat")
            assert [t.shape[-1] for t in concat.input] == [k0 + k * (layer - 1), k]
            checked += 1
        k0 = k0 + k * layers
        if index < len(SMALL["block_config"]) - 1:
            k0 = small.get_layer(f"pool{stage}_conv").filters  # the next block's k0
    assert checked == sum(SMALL["block_config"])


def test_transition_keeps_floor_of_channels_times_compression(small):
    fractional = 0
    for stage in (2, 3):
        c = _channels(small, f"pool{stage}_bn")
        assert small.get_layer(f"pool{stage}_conv").filters == math.floor(c * SMALL["compression"])
        fractional += (c * SMALL["compression"]) % 1 > 0
        assert small.get_layer(f"pool{stage}_pool").pool_size == (2, 2)
    assert fractional  # the configuration exercises the floor


def test_non_default_configuration_has_the_closed_form_parameter_count(small):
    assert small.count_params() == closed_form_params(**SMALL, classes=5)
    trainable = int(sum(np.prod(w.shape) for w in small.trainable_weights))
    assert trainable == closed_form_params(**SMALL, classes=5, trainable=True)


@pytest.mark.parametrize("name", sorted(dn.CONFIGS))
def test_registered_counts_equal_the_closed_form(name):
    # The registry suite checks each built model against these pinned figures; for
    # densenet264 (no reference library ships it) the formula is the cross-check.
    config = vars(dn.CONFIGS[name])
    params = kerasarch.model_info(name).params
    assert params.total == closed_form_params(**config)
    assert params.trainable == closed_form_params(**config, trainable=True)


def test_torchvision_configuration_builds_with_30_classes():
    config = dict(growth_rate=16, block_config=(6, 12, 24, 16), num_init_features=16, bn_size=4)
    model = kerasarch.densenet(**config, drop_rate=0, classes=30, input_shape=(64, 64, 3))
    probs = keras.ops.convert_to_numpy(model(raw_images((64, 64, 3)), training=False))
    assert probs.shape == (2, 30)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)
    assert model.count_params() == closed_form_params(**config, classes=30)


def test_the_default_configuration_is_densenet121s():
    defaults = {
        p.name: p.default for p in inspect.signature(kerasarch.densenet).parameters.values()
    }
    for field, value in vars(dn.CONFIGS["densenet121"]).items():
        assert defaults[field] == value, field
    general, named = kerasarch.model_info("densenet").params, kerasarch.model_info("densenet121").params
    assert (general.total, general.trainable) == (named.total, named.trainable)


def test_drop_rate_adds_dropout_after_each_3x3_convolution_inert_at_inference(small):
    model = kerasarch.densenet(**SMALL, drop_rate=0.4, input_shape=(32, 32, 3), classes=5)
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert len(drops) == sum(SMALL["block_config"])
    assert all(layer.rate == 0.4 for layer in drops)
    for layer in drops:  # each sits right after its layer's 3x3 convolution
        parent = layer.input._keras_history.operation
        assert parent.name == layer.name.replace("_2_drop", "_2_conv")
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in small.layers)
    model.set_weights(small.get_weights())  # same weights: dropout is the only difference
    images = raw_images((32, 32, 3))
    np.testing.assert_allclose(
        model(images, training=False), small(images, training=False), rtol=1e-5, atol=1e-6
    )
    trained = model(images, training=True)
    assert not np.allclose(trained, model(images, training=False))


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("growth_rate", 0), ("growth_rate", 1.5), ("growth_rate", True),
        ("block_config", ()), ("block_config", (6, 0)), ("block_config", (6, "12")),
        ("block_config", (6, 2.0)), ("block_config", 6),
        ("num_init_features", 0), ("bn_size", 0), ("bn_size", 2.5),
        ("compression", 0), ("compression", 1.5), ("compression", -0.5), ("compression", "half"),
        ("drop_rate", 1.0), ("drop_rate", -0.1),
    ],
)
def test_bad_configurations_are_refused_naming_the_value(argument, value):
    with pytest.raises(ValueError, match=rf"`{argument}`: {re.escape(repr(value))}"):
        kerasarch.densenet(**{argument: value})


def test_bad_drop_rate_is_refused_by_the_named_variants_too():
    with pytest.raises(ValueError, match=r"`drop_rate`: 1\.5"):
        kerasarch.densenet121(drop_rate=1.5)


def test_compression_that_leaves_no_channels_is_refused():
    with pytest.raises(ValueError, match=r"`compression`: 0\.001.*0 channels"):
        kerasarch.densenet(growth_rate=4, block_config=(2, 2), num_init_features=8,
                           compression=0.001, input_shape=(32, 32, 3))


def test_more_blocks_need_a_larger_input():
    with pytest.raises(ValueError, match=r"`input_shape`.*5 blocks needs height and width >= 64"):
        kerasarch.densenet(growth_rate=4, block_config=(1, 1, 1, 1, 1), num_init_features=8,
                           include_top=False, input_shape=(48, 48, 3))
    model = kerasarch.densenet(growth_rate=4, block_config=(1, 1, 1, 1, 1), num_init_features=8,
                               include_top=False, input_shape=(64, 64, 3))
    assert model.output_shape == (None, 1, 1, model.output_shape[-1])


def test_the_general_builder_refuses_imagenet_weights():
    with pytest.raises(ValueError, match=r"`weights`: 'imagenet'.*densenet has no published"):
        kerasarch.densenet(weights="imagenet")
