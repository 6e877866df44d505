"""ConvNeXt's own behaviour, beyond the registry suite: the stage table in the built graph,
LayerScale and stochastic depth, the drop-path schedule, argument checks, the depthwise
layer that stores a grouped kernel, and keras.applications' file without the head."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasarch
from kerasarch import layers as ka_layers
from kerasarch.models import convnext

from conftest import forward, raw_images
from legacy_h5 import write_legacy_layers

SMALL = (32, 32, 3)  # the smallest input: every stage still has a 1x1 map
LAYER_SCALE = 0.5


@pytest.fixture(scope="module")
def tiny_drop_path():
    """ConvNeXt-T with stochastic depth 0.3 and a 3-class logits head, at 32x32.

    LayerScale starts at 0.5, not 1e-6, so that the residual branches weigh in the output
    (at 1e-6 dropping one changes the logits by about 1e-6).
    """
    keras.utils.set_random_seed(0)
    return kerasarch.convnext_tiny(
        input_shape=SMALL, classes=3, classifier_activation=None, drop_path_rate=0.3,
        layer_scale_init_value=LAYER_SCALE,
    )


def stage_table(model: keras.Model, prefix: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(blocks per stage, channels per stage) read from the graph's block outputs."""
    depths, widths = [], []
    for stage in range(4):
        adds = [
            layer for layer in model.layers
            if re.fullmatch(rf"{prefix}_stage_{stage}_block_\d+_add", layer.name)
        ]
        depths.append(len(adds))
        widths.append(adds[-1].output.shape[-1])
    return tuple(depths), tuple(widths)


def test_stage_table_of_tiny_is_the_graph(tiny_drop_path):
    assert stage_table(tiny_drop_path, "convnext_tiny") == ((3, 3, 9, 3), (96, 192, 384, 768))
    row = convnext.CONFIGS["convnext_tiny"]
    assert (row.depths, row.widths) == ((3, 3, 9, 3), (96, 192, 384, 768))
    # Patchify stem /4, then three 2x2 stride-2 downsamplings: 224 -> 56, 28, 14, 7.
    full = kerasarch.convnext_tiny(include_top=False)
    sizes = [full.get_layer(f"convnext_tiny_stage_{s}_block_0_add").output.shape[1] for s in range(4)]
    assert sizes == [56, 28, 14, 7]
    gamma = full.get_layer("convnext_tiny_stage_3_block_2_layer_scale").gamma.numpy()
    np.testing.assert_array_equal(gamma, np.full(768, 1e-6, "float32"))  # the paper's default


def test_stage_table_of_small_is_the_graph():
    model = kerasarch.convnext_small(include_top=False, input_shape=SMALL)
    assert stage_table(model, "convnext_small") == ((3, 3, 27, 3), (96, 192, 384, 768))


def test_drop_path_schedule_is_linear_over_all_blocks(tiny_drop_path):
    rates = {
        layer.name.removesuffix("_drop_path"): layer.rate for layer in tiny_drop_path.layers
        if isinstance(layer, ka_layers.StochasticDepth)
    }
    expected = np.linspace(0.0, 0.3, 18)  # 3 + 3 + 9 + 3 blocks, first 0, last 0.3
    names = [f"convnext_tiny_stage_{s}_block_{b}" for s, d in enumerate((3, 3, 9, 3)) for b in range(d)]
    assert names[0] not in rates  # rate 0: no layer at all
    np.testing.assert_allclose([rates[n] for n in names[1:]], expected[1:], rtol=1e-12)


def test_stochastic_depth_is_inert_at_inference_and_active_in_training(tiny_drop_path):
    images = raw_images(SMALL, count=4)
    plain = kerasarch.convnext_tiny(
        input_shape=SMALL, classes=3, classifier_activation=None, layer_scale_init_value=LAYER_SCALE
    )
    plain.set_weights(tiny_drop_path.get_weights())  # drop path adds no weights
    inference = tiny_drop_path(images, training=False).numpy()
    np.testing.assert_allclose(inference, plain(images, training=False).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(inference, tiny_drop_path(images, training=False).numpy())
    keras.utils.set_random_seed(1)
    trained = [tiny_drop_path(images, training=True).numpy() for _ in range(2)]
    assert np.abs(trained[0] - inference).max() > 1e-3  # branches dropped, survivors rescaled
    assert np.abs(trained[0] - trained[1]).max() > 1e-3  # a new draw each step


def test_layer_scale_scales_the_branch_and_learns(tiny_drop_path):
    scales = [layer for layer in tiny_drop_path.layers if isinstance(layer, ka_layers.LayerScale)]
    assert len(scales) == 18
    for layer in scales:
        np.testing.assert_array_equal(layer.gamma.numpy(), np.full(layer.gamma.shape, LAYER_SCALE, "float32"))
        assert layer.gamma.trainable
    # At inference the block adds gamma * branch: with gamma = 0 it is the identity.
    block = "convnext_tiny_stage_0_block_0"
    probe = keras.Model(
        tiny_drop_path.input,
        [tiny_drop_path.get_layer("convnext_tiny_stem").output,
         tiny_drop_path.get_layer(f"{block}_pointwise_conv_2").output,
         tiny_drop_path.get_layer(f"{block}_add").output],
    )
    images = raw_images(SMALL, count=2)
    stem, branch, out = (t.numpy() for t in probe(images, training=False))
    np.testing.assert_allclose(out, stem + LAYER_SCALE * branch, rtol=1e-5, atol=1e-5)
    gamma = tiny_drop_path.get_layer(f"{block}_layer_scale").gamma
    saved = gamma.numpy()
    try:
        gamma.assign(np.zeros_like(saved))
        stem, _, out = (t.numpy() for t in probe(images, training=False))
        np.testing.assert_array_equal(out, stem)
    finally:
        gamma.assign(saved)
    # The scales are learned: each receives a gradient (without drop path's draws, which
    # would zero the gradient of a dropped block's scale).
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tiny_drop_path(images, training=False) * np.eye(3)[[0, 1]])
    grads = tape.gradient(loss, [layer.gamma for layer in scales])
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_layer_scale_can_be_left_out():
    model = kerasarch.convnext_tiny(include_top=False, input_shape=SMALL, layer_scale_init_value=None)
    assert not any(isinstance(layer, ka_layers.LayerScale) for layer in model.layers)
    row = convnext.CONFIGS["convnext_tiny"]
    gammas = sum(d * w for d, w in zip(row.depths, row.widths, strict=True))
    head = 768 * 2 + 768 * 1000 + 1000  # head LayerNorm and dense, absent without the top
    assert model.count_params() == 28_589_128 - gammas - head


@pytest.mark.parametrize("value", [-1e-6, 1.5, float("nan"), True, "1e-6", [1e-6]])
def test_bad_layer_scale_init_value_is_refused(value):
    with pytest.raises(ValueError, match=r"`layer_scale_init_value`.*Expected None or 0"):
        kerasarch.convnext_tiny(layer_scale_init_value=value)


@pytest.mark.parametrize("value", [-0.1, 1.0, "0.1", None])
def test_bad_drop_path_rate_is_refused(value):
    with pytest.raises(ValueError, match=r"`drop_path_rate`.*\[0, 1\)"):
        kerasarch.convnext_tiny(drop_path_rate=value)


def test_grouped_depthwise_conv_computes_the_grouped_convolution():
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 6)).astype("float32")
    grouped = keras.layers.Conv2D(6, 7, padding="same", groups=6)
    ours = ka_layers.GroupedDepthwiseConv2D(6, 7, padding="same")
    expected = grouped(x).numpy()
    ours.build(x.shape)
    ours.set_weights(grouped.get_weights())  # the same (7, 7, 1, 6) kernel and bias
    np.testing.assert_allclose(ours(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    clone = ka_layers.GroupedDepthwiseConv2D.from_config(ours.get_config())
    assert clone.groups == 6 and clone.kernel_size == (7, 7)
    with pytest.raises(ValueError, match="groups"):
        ka_layers.GroupedDepthwiseConv2D(6, 7, groups=3)
    with pytest.raises(ValueError, match="channels"):
        ka_layers.GroupedDepthwiseConv2D(4, 7).build((None, 9, 9, 6))


def test_keras_applications_file_without_the_head_loads(tmp_path):
    """keras' `include_top=False` file has an extra, unnamed LayerNorm; it is skipped.

    keras.applications normalizes its pooled output with a LayerNorm that the conversion
    left at its initial values (scale 1, offset 0); kerasarch's output is the pooled
    backbone, so the two agree up to that plain normalization.
    """
    keras.utils.set_random_seed(2)
    shape = (64, 64, 3)
    reference = keras.applications.ConvNeXtTiny(
        weights=None, include_top=False, pooling="avg", input_shape=shape
    )
    layers = {}
    for layer in reference.layers:
        name = "layer_normalization" if layer.name.startswith("layer_normalization") else layer.name
        layers[name] = {w.name: w.numpy() for w in layer.weights}
    assert "layer_normalization" in layers
    path = tmp_path / "convnext_tiny_notop.h5"
    write_legacy_layers(path, layers)
    model = kerasarch.convnext_tiny(include_top=False, pooling="avg", input_shape=shape, weights=path)
    images = raw_images(shape, count=2)
    features = forward(model, images)
    mean, var = features.mean(-1, keepdims=True), features.var(-1, keepdims=True)
    normalized = (features - mean) / np.sqrt(var + convnext.LN_EPSILON)
    expected = forward(reference, images.astype("float32"))
    assert np.abs(normalized - expected).max() / np.abs(expected).max() < 1e-4
    with pytest.raises(ValueError, match=r"lacks layers.*convnext_tiny_head_dense"):
        kerasarch.convnext_tiny(weights=path)  # the file has no head
