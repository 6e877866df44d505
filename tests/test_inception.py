"""Inception v3 and Inception-ResNet v2: what the registry suite cannot see.

The factorized convolutions, the auxiliary head, and the generated layer maps that load
keras.applications' files (whose units keras leaves unnamed). The registry suite and the
weights-equivalence suite (tests/test_weights.py) cover counts, shapes and predictions.
"""

from __future__ import annotations

import gc

import keras
import numpy as np
import pytest

import kerasarch
from kerasarch import weights as weights_lib
from kerasarch.models import inception, inception_resnet

from conftest import forward, raw_images
from legacy_h5 import keras2_name_counters, save_legacy_weights

SMALL = (75, 75, 3)  # the smallest input: the layers (and their weights) are the same at any size


@pytest.fixture(scope="module")
def v3_backbone():
    return kerasarch.inception_v3(include_top=False, input_shape=SMALL)


def weighted_layers(model) -> dict[str, tuple]:
    """Layer name -> its weights' shapes, for the layers that have weights."""
    return {
        layer.name: tuple(tuple(w.shape) for w in layer.weights) for layer in model.layers if layer.weights
    }


def kernel_shape(model, name):
    return tuple(model.get_layer(name).kernel.shape)


@pytest.mark.parametrize(
    ("module", "c7"), [("mixed4", 128), ("mixed5", 160), ("mixed6", 160), ("mixed7", 192)]
)
def test_17x17_modules_factorize_7x7_into_1x7_then_7x1(v3_backbone, module, c7):
    assert kernel_shape(v3_backbone, f"{module}_branch7x7_2_conv") == (1, 7, c7, c7)
    assert kernel_shape(v3_backbone, f"{module}_branch7x7_3_conv") == (7, 1, c7, 192)
    dbl = [kernel_shape(v3_backbone, f"{module}_branch7x7dbl_{i}_conv")[:2] for i in range(2, 6)]
    assert dbl == [(7, 1), (1, 7), (7, 1), (1, 7)]
    # No 7x7 kernel anywhere: a 7x7 is two thinner convolutions.
    assert not any(
        isinstance(layer, keras.layers.Conv2D) and tuple(layer.kernel_size) == (7, 7)
        for layer in v3_backbone.layers
    )


def test_8x8_modules_expand_into_parallel_1x3_and_3x1(v3_backbone):
    for module in ("mixed9", "mixed10"):
        for branch in ("branch3x3", "branch3x3dbl"):
            left = v3_backbone.get_layer(f"{module}_{branch}_1x3_conv")
            right = v3_backbone.get_layer(f"{module}_{branch}_3x1_conv")
            assert left.kernel.shape[:2] == (1, 3) and right.kernel.shape[:2] == (3, 1)
            assert left.input is right.input  # parallel, on the same tensor
            concat = v3_backbone.get_layer(f"{module}_{branch}_concat")
            assert concat.output.shape[-1] == 768
    assert v3_backbone.output_shape[-1] == 2048


def test_inception_resnet_blocks_scale_their_residual():
    block = inception_resnet.CONFIGS["inception_resnet_v2"].layout()
    scales = [(item.module.name, item.scale, item.activation) for item in block
              if isinstance(item, inception_resnet.ResidualBlock)]
    assert len(scales) == 40
    assert scales[0] == ("block35_1", 0.17, True)
    assert scales[10] == ("block17_1", 0.1, True)
    assert scales[-2:] == [("block8_9", 0.2, True), ("block8_10", 1.0, False)]
    layer = inception_resnet.ScaledResidual(0.1)
    shortcut, residual = np.ones((1, 2, 2, 3), "float32"), np.full((1, 2, 2, 3), 5.0, "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer([shortcut, residual])), 1.5)
    assert inception_resnet.ScaledResidual.from_config(layer.get_config()).scale == 0.1


@pytest.fixture(scope="module")
def v3_official_file(tmp_path_factory):
    """keras.applications' InceptionV3 with random weights, written as the official file is."""
    keras2_name_counters()
    keras.utils.set_random_seed(2)
    twin = keras.applications.InceptionV3(weights=None)
    path = tmp_path_factory.mktemp("inception") / "inception_v3_legacy.h5"
    save_legacy_weights(twin, path)
    layers = weighted_layers(twin)
    del twin
    gc.collect()
    return path, layers


@pytest.mark.parametrize("name", ["inception_v3", "inception_resnet_v2"])
def test_layer_map_covers_every_weighted_layer_of_the_keras_file_exactly(name, v3_official_file):
    if name == "inception_v3":
        _, official = v3_official_file
    else:
        # names and shapes only: both graphs are built without weight values
        keras2_name_counters()
        with keras.StatelessScope(initialize_variables=False):
            twin = keras.applications.InceptionResNetV2(weights=None, include_top=False, input_shape=SMALL)
        keras.backend.clear_session()  # the deferred variables are never initialized
        official = weighted_layers(twin)
        del twin
    layer_map = kerasarch.model_info(name).imagenet.layer_map
    assert "conv2d_1" in official and "conv2d" not in official  # Keras 2.0's numbering
    assert set(layer_map) <= set(official)  # no entry unused
    ours = kerasarch.registry.graph_only(name, include_top=name == "inception_v3", input_shape=SMALL)
    weighted = weighted_layers(ours)
    renamed = {layer_map.get(n, n): shapes for n, shapes in official.items()}
    assert renamed == weighted  # every file layer lands on a layer of the same shapes, none left
    unmapped = sorted(set(official) - set(layer_map))
    if name == "inception_v3":
        assert unmapped == ["predictions"]
    else:
        assert unmapped == sorted([f"block{k}_{i}_conv" for k, n in ((35, 10), (17, 20), (8, 10))
                                   for i in range(1, n + 1)] + ["conv_7b", "conv_7b_bn"])
    del ours
    gc.collect()


def test_layer_map_is_generated_in_build_order():
    layout = inception.CONFIGS["inception_v3"].layout()
    assert len(inception.unit_names(layout)) == 94  # keras' conv2d_1 .. conv2d_94
    official = inception.keras_layer_map(layout)
    assert official["conv2d_1"] == "stem1_conv"
    assert official["batch_normalization_94"] == "mixed10_branch_pool_1_bn"
    assert official["conv2d_36"] == "mixed4_branch7x7dbl_2_conv"
    fresh = inception.keras_layer_map(layout, first=0)  # Keras 3's own numbering
    assert fresh["conv2d"] == "stem1_conv" and fresh["conv2d_93"] == "mixed10_branch_pool_1_conv"


def test_aux_head_returns_main_and_auxiliary_predictions(v3_official_file):
    path, _ = v3_official_file
    model = kerasarch.inception_v3(aux_logits=True, weights=path)
    assert model.output_names == ["predictions", "aux_predictions"]
    assert model.get_layer("aux_pool").input is model.get_layer("mixed7").output
    main, aux = forward(model, raw_images((299, 299, 3), count=2))
    assert main.shape == aux.shape == (2, 1000)
    np.testing.assert_allclose(aux.sum(axis=-1), 1.0, rtol=1e-4)
    assert not np.allclose(main, aux)
    # The file loads into every layer but the head it does not have.
    stored = weights_lib.read_legacy_h5(path)
    np.testing.assert_array_equal(model.get_layer("mixed4_branch7x7dbl_2_conv").kernel.numpy(),
                                  stored["conv2d_36"][0])
    np.testing.assert_array_equal(model.get_layer("predictions").kernel.numpy(), stored["predictions"][0])
    del model
    gc.collect()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"aux_logits": "yes"}, r"`aux_logits`: 'yes'"),
        ({"aux_logits": True, "include_top": False}, r"`aux_logits`: True.*include_top=True"),
        ({"aux_logits": True, "input_shape": (298, 298, 3)}, r"`input_shape`: \(298, 298, 3\).*>= 299"),
    ],
)
def test_aux_head_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kerasarch.inception_v3(**kwargs)


@pytest.mark.parametrize("name", ["inception_v3", "inception_resnet_v2"])
def test_inputs_below_75_are_refused_like_keras(name):
    assert kerasarch.model_info(name).min_size == 75
    with pytest.raises(ValueError, match=r"`input_shape`: \(74, 74, 3\).*>= 75"):
        kerasarch.get_model(name, include_top=False, input_shape=(74, 74, 3))


@pytest.mark.parametrize(("name", "epochs"), [("inception_v3", 100), ("inception_resnet_v2", 10)])
def test_recipe_multiplies_the_rate_by_094_every_two_epochs(name, epochs):
    from kerasarch.train.config import TrainConfig
    from kerasarch.train.recipes import resolve_hyperparameters
    from kerasarch.train.schedules import plan_schedule

    hp = resolve_hyperparameters(TrainConfig(model=name, batch_size=32, epochs=epochs))
    assert (hp.optimizer, hp.learning_rate) == ("rmsprop", 0.045)  # the paper's rate at its batch
    assert hp.label_smoothing == (0.1 if name == "inception_v3" else 0.0)
    schedule = plan_schedule(hp, steps_per_epoch=10, epochs=epochs).build()
    # The rate of epochs 0-1, 2-3, 4-5, ... (10 steps an epoch): 0.045 x 0.94^k.
    rates = [float(schedule(step)) for step in range(5, 10 * epochs, 20)]
    np.testing.assert_allclose(rates, 0.045 * 0.94 ** np.arange(len(rates)), rtol=1e-5)


def test_a_run_below_the_auxiliary_minimum_trains_without_the_auxiliary_head(caplog):
    # The trainer builds a model with its auxiliary classifiers where the builder has them;
    # Inception v3's needs 299 px, so a smaller run trains the single-output network, saying so.
    from types import SimpleNamespace

    from kerasarch.train import model_setup

    config = SimpleNamespace(model="inception_v3", weights=None, fine_tune=None)
    plan = SimpleNamespace(config=config, image_size=SMALL[0], channels=3, augment=None)
    with caplog.at_level("WARNING", logger="kerasarch.train"):
        model = model_setup._build_model(plan, classes=10)
    assert len(model.outputs) == 1 and model.output_shape == (None, 10)
    assert "without its auxiliary classifier" in caplog.text
    assert model_setup._training_args("inception_v3") == {"aux_logits": True}
