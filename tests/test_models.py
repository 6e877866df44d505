"""The parametrized suite over every registered model (DESIGN.md section 4).

The parametrization is `kerasarch.list_models()`: registering a builder puts it here. Each
model is built once per session for the tests that read it (a session-scoped cache keyed
by the build's arguments, emptied when the suite moves to the next model). Models above
~100M parameters skip the tests that would build them again: the code paths those tests
cover are the same as their smaller siblings'. A covered variant (conftest.COVERED_BY) is
built as a graph without weight values: its counts, layer names and output spec are checked,
and every computation with weights runs on its member. Parameter counts are pinned against the
registry metadata, whose figures come from the reference libraries, not from kerasarch.
"""

from __future__ import annotations

import gc
import math

import keras
import numpy as np
import pytest

import kerasarch

from conftest import COVERED_BY, ROOT, forward, raw_images

MODELS = kerasarch.list_models()
HEAVY_PARAMS = 100_000_000  # a build above this is made once: no rebuilds, no round trip
# Above this, not even the include_top=False build is made (BiT-R101x3 388M, ConvNeXt-XL
# 350M, EfficientNet-L2 481M, BiT-R152x4 936M parameters: 1.4-3.7 GB in float32, a minute
# per build on 2 cores): it runs the pinned counts, the output and naming checks on its one
# build.
HUGE_PARAMS = 300_000_000


def params(name: str) -> int:
    return kerasarch.model_info(name).params.total


def top_shape(name: str, info) -> tuple:
    """The input size the head is built and run at: the native one, with two exceptions where
    the head takes any size. A covered variant (conftest.COVERED_BY; not in
    KERASARCH_FULL_SUITE=1 runs) runs at a small size: its member runs the native one through
    the same builder, and the variant's forward pass at its native size is its largest cost
    (BiT-R152x4 at 480 px, EfficientNet-B7 at 600 px). A model above HEAVY_PARAMS with a large
    native size (EfficientNet-L2: 800x800, minutes per forward pass on 2 cores) runs at 224."""
    if info.fixed_size_with_top:
        return info.input_shape
    if name in COVERED_BY:
        size = max(info.min_size_with_top or info.min_size, 64)
        return (size, size, info.input_shape[2])
    if params(name) > HEAVY_PARAMS and info.input_shape[0] > 320:
        return (224, 224, info.input_shape[2])
    return info.input_shape


def skip_if(condition: bool, name: str, what: str) -> None:
    if condition:
        pytest.skip(f"{name} is built once in the suite; {what} runs on its smaller siblings")


def skip_if_covered(name: str, what: str) -> None:
    if name in COVERED_BY:
        pytest.skip(f"{what} runs on {COVERED_BY[name]}, whose builder and blocks {name} shares")


class BuildCache:
    """Builds of the current model, shared by every test of the session that reads them."""

    def __init__(self):
        self.name, self.models, self.outputs = None, {}, {}

    def forward(self, model: keras.Model, images: np.ndarray) -> np.ndarray:
        """`forward(model, images)`, computed once per build and batch of images: several
        tests compare against the same pass (a pass at the native size is a build's largest
        cost)."""
        key = (id(model), images.shape, images.dtype.str, images.tobytes())
        if key not in self.outputs:
            self.outputs[key] = forward(model, images)
        return self.outputs[key]

    def get(self, name: str, values: bool = True, **kwargs) -> keras.Model:
        """The build of `name` with `kwargs`; with `values=False`, its graph and variables
        without weight values (`kerasarch.registry.graph_only`)."""
        if name != self.name:  # the suite moved on: free the previous model's builds
            self.name, self.models, self.outputs = name, {}, {}
            keras.backend.clear_session()
            gc.collect()
        key = (values, *sorted(kwargs.items()))
        if key not in self.models:
            self.models[key] = (kerasarch.get_model(name, **kwargs) if values
                                else kerasarch.registry.graph_only(name, **kwargs))
        return self.models[key]


@pytest.fixture(scope="session")
def builds():
    cache = BuildCache()
    yield cache
    cache.models.clear()


@pytest.fixture(scope="module", params=MODELS)
def name(request):
    return request.param


@pytest.fixture(scope="module")
def info(name):
    return kerasarch.model_info(name)


@pytest.fixture
def top_model(name, info, builds):
    """The model with its head. A covered variant's is built without weight values
    (`kerasarch.registry.graph_only`): the tests that read it check its graph (counts, names,
    output spec), and those that compute with weights run on its member."""
    shape = top_shape(name, info)
    return builds.get(name, values=name not in COVERED_BY,
                      **({} if shape == info.input_shape else {"input_shape": shape}))


@pytest.fixture
def notop_model(name, info, builds):
    skip_if(params(name) > HUGE_PARAMS, name, "the include_top=False build")
    skip_if_covered(name, "the include_top=False build")
    return builds.get(name, include_top=False, input_shape=(None, None, info.input_shape[2]))


def _small_shape(info):
    """A small input size the backbone accepts: cheap predictions for the no-top checks."""
    size = max(info.min_size, 64)
    return (size, size, info.input_shape[2])


def _count(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


def test_pinned_parameter_counts(top_model, info):
    # Keras convention: total includes BatchNorm moving statistics (non-trainable).
    assert top_model.count_params() == info.params.total
    assert _count(top_model.trainable_weights) == info.params.trainable
    assert top_model.output_shape == (None, info.classes)
    assert top_model.output.dtype == "float32"


def test_output_with_top_is_a_distribution(name, info, builds, request):
    skip_if_covered(name, "the forward pass with the head")
    top_model = request.getfixturevalue("top_model")
    images = raw_images(top_shape(name, info), count=2)
    probs = builds.forward(top_model, images)
    assert probs.shape == (2, info.classes)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-4)


def test_uint8_and_float_pixels_give_the_same_output(name, info, builds, request):
    # The raw-image input block is heads.image_input for every model.
    skip_if_covered(name, "the uint8 / float comparison of the shared input block")
    top_model = request.getfixturevalue("top_model")
    images = raw_images(top_shape(name, info), count=2)
    np.testing.assert_allclose(
        builds.forward(top_model, images),
        forward(top_model, images.astype("float32")),
        rtol=1e-6, atol=1e-7,
    )


def test_layers_named_deterministically_and_no_lambda(top_model, name, builds):
    names = [layer.name for layer in top_model.layers]
    assert len(names) == len(set(names))
    assert names[0] == "images" and "preprocessing" in names[:3]
    assert names[-1] == "predictions"
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in top_model.layers)
    # A second build in the same Keras session (without the head, at another input shape)
    # names its layers exactly as the first: names from Keras' per-session counters
    # (conv2d_7) would differ between the two.
    skip_if(params(name) > HUGE_PARAMS, name, "the second build")
    skip_if_covered(name, "the second build's naming check")
    channels = kerasarch.model_info(name).input_shape[2]
    backbone = [layer.name for layer in builds.get(
        name, include_top=False, input_shape=(None, None, channels)
    ).layers]
    assert backbone[-1] == "features"  # the contract's float32 output layer, then the backbone:
    assert backbone[:-1] == names[: len(backbone) - 1]


@pytest.mark.parametrize("pooling", [None, "avg", "max"])
def test_pooling_without_top(name, info, notop_model, builds, pooling):
    shape = _small_shape(info)
    if pooling is None:
        out = forward(notop_model, raw_images(shape))
        assert out.ndim == 4 and out.shape[0] == 2
        return
    # Every family ends include_top=False in heads.features: the pooled model is the unpooled
    # graph with one global pooling inserted before `features`. That is checked here on the
    # graph of each model; what the pooling computes, once, by
    # test_pooled_features_are_the_reduced_feature_map.
    pooled = builds.get(name, values=False, include_top=False, pooling=pooling,
                        input_shape=(None, None, shape[2]))
    layer = pooled.get_layer(f"{pooling}_pool")
    kind = keras.layers.GlobalAveragePooling2D if pooling == "avg" else keras.layers.GlobalMaxPooling2D
    assert type(layer) is kind
    unpooled = [(type(x), x.name) for x in notop_model.layers]
    assert [(type(x), x.name) for x in pooled.layers] == [*unpooled[:-1], (kind, layer.name), unpooled[-1]]
    assert pooled.get_layer("features").input is layer.output
    assert pooled.output_shape == (None, notop_model.output_shape[-1])


def test_pooled_features_are_the_reduced_feature_map():
    keras.utils.set_random_seed(0)
    shape = (64, 64, 3)
    unpooled = kerasarch.resnet18(include_top=False, input_shape=shape)
    features = forward(unpooled, raw_images(shape))
    for pooling, reduce in (("avg", np.mean), ("max", np.max)):
        pooled = kerasarch.resnet18(include_top=False, pooling=pooling, input_shape=shape)
        pooled.set_weights(unpooled.get_weights())
        out = forward(pooled, raw_images(shape))
        assert out.shape == (2, unpooled.output_shape[-1])
        np.testing.assert_allclose(out, reduce(features, axis=(1, 2)), rtol=1e-5, atol=1e-5)


def test_variable_input_size_without_top(name, info, notop_model):
    channels = info.input_shape[2]
    sizes = (info.min_size, 2 * info.min_size + 29)
    spatial = []
    for size in sizes:
        out = forward(notop_model, raw_images((size, size, channels), seed=size))
        assert out.shape[0] == 2 and out.ndim == 4 and out.shape[-1] == notop_model.output_shape[-1]
        # What Keras infers for a model built at this fixed size is what the dynamic one gives.
        static = notop_model.compute_output_spec(
            keras.KerasTensor((2, size, size, channels), dtype="float32")
        ).shape
        assert out.shape[1:3] == tuple(static[1:3]), (size, out.shape, static)
        spatial.append(out.shape[1])
    assert spatial[1] > spatial[0]  # a larger input gives a larger feature map
    # The native size gives the feature map the stride implies (ResNet/VGG: /32).
    native = info.input_shape[0]
    out = notop_model.compute_output_spec(
        keras.KerasTensor((1, native, native, channels), dtype="float32")
    ).shape
    assert 1 <= out[1] <= math.ceil(native / 4)


def test_non_native_size_with_top(name, info):
    h, w, c = info.input_shape
    other = (h + 32, w + 32, c)
    if info.fixed_size_with_top:  # refused before anything is built
        with pytest.raises(ValueError, match="native size"):
            kerasarch.get_model(name, input_shape=other)
    else:
        skip_if_covered(name, "a second build with the head")
        skip_if(params(name) > HEAVY_PARAMS, name, "a second build with the head")
        # The graph is what the size changes (the head's input); its weights play no part.
        model = kerasarch.registry.graph_only(name, input_shape=other, classes=7)
        assert model.output_shape == (None, 7)


def test_too_small_input_is_refused(name, info):
    size = info.min_size - 1
    with pytest.raises(ValueError, match=rf"input_shape.*\({size}, {size}"):
        kerasarch.get_model(name, include_top=False, input_shape=(size, size, info.input_shape[2]))
    if info.min_size_with_top:  # a head that needs more than the backbone
        size = info.min_size_with_top - 1
        with pytest.raises(ValueError, match=rf"include_top=True.*>= {size + 1}"):
            kerasarch.get_model(name, input_shape=(size, size, info.input_shape[2]))
        skip_if_covered(name, "the build at the smallest size with the head")
        ok = kerasarch.get_model(name, input_shape=(size + 1, size + 1, info.input_shape[2]))
        assert forward(ok, raw_images((size + 1, size + 1, 3))).shape == (2, info.classes)


def test_keras_round_trip_safe_mode(name, info, tmp_path, builds, request):
    # The round trip of a model above HEAVY_PARAMS would write gigabytes (BiT-R101x3:
    # 1.5 GB): such a model round-trips its backbone instead where that is light (VGG).
    skip_if_covered(name, "the .keras round trip")
    model, images = request.getfixturevalue("top_model"), raw_images(top_shape(name, info), count=2)
    if model.count_params() > HEAVY_PARAMS:
        skip_if(params(name) > HUGE_PARAMS, name, "the .keras round trip")
        model = builds.get(name, include_top=False, input_shape=(None, None, info.input_shape[2]))
        skip_if(model.count_params() > HEAVY_PARAMS, name, "the .keras round trip")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(forward(loaded, images), builds.forward(model, images))
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    path.unlink()


def test_signature_lists_the_contract_with_the_registered_default_classes(name, info):
    import inspect

    parameters = inspect.signature(kerasarch.registry.builder(name)).parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
    assert set(kerasarch.heads.ModelArgs.__annotations__) <= set(parameters)
    assert parameters["classes"].default == info.classes
    assert getattr(kerasarch, name) is kerasarch.registry.builder(name)
    assert "include_top (bool)" in getattr(kerasarch, name).__doc__


def test_api_reference_and_model_tables_are_generated_from_the_registry():
    text = (ROOT / "docs" / "api.md").read_text()
    start = text.index("<!-- architectures:start -->") + len("<!-- architectures:start -->")
    end = text.index("<!-- architectures:end -->")
    assert text[start:end].strip() == kerasarch.registry.api_reference(), (
        "docs/api.md is out of date: paste kerasarch.registry.api_reference() between its markers"
    )
