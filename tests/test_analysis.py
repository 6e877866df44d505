"""kerasarch.analysis (FLOPs, memory, depth, summary) and kerasarch.comparison (the table, the
chart and the committed comparison), the `summary` and `compare` commands through the CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import keras
import pytest

from kerasarch import analysis, comparison, registry

from conftest import ROOT

COMMITTED = comparison.RESULTS / "compare.json"
STALE = f"run `{comparison.COMMAND}` and commit what it writes"


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "kerasarch", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def _conv(use_bias=False, size=10):
    inputs = keras.Input((size, size, 8))
    outputs = keras.layers.Conv2D(16, 3, padding="same", use_bias=use_bias, name="conv")(inputs)
    return keras.Model(inputs, outputs)


def _residual_toy():
    """8x8x3 -> conv a (8x8x4) -> conv b (8x8x4) -> add(a, b) -> global pool -> dense 2."""
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b")(a)
    added = keras.layers.Add(name="add")([a, b])
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(added)
    return keras.Model(inputs, keras.layers.Dense(2, name="d")(pooled))


# --- FLOPs ---------------------------------------------------------------------------------


def test_flops_of_a_convolution_equal_the_hand_count():
    # 3x3 kernel, 8 -> 16 channels, 10x10 output, no bias: one multiply-add per kernel
    # element, input channel, output channel and output position, counted as two FLOPs.
    assert analysis.flops(_conv()) == 2 * 3 * 3 * 8 * 16 * 100
    # A bias adds one FLOP per output element.
    assert analysis.flops(_conv(use_bias=True)) == 2 * 3 * 3 * 8 * 16 * 100 + 16 * 100


def test_flops_of_a_dense_layer_equal_the_hand_count():
    inputs = keras.Input((20,))
    model = keras.Model(inputs, keras.layers.Dense(5)(inputs))
    assert analysis.flops(model) == 2 * 20 * 5 + 5  # MatMul, then BiasAdd: one per output


def test_flops_scale_with_batch_size_and_image_size():
    model = _conv()
    assert analysis.flops(model, batch_size=4) == 4 * analysis.flops(model)
    assert analysis.flops(model, image_size=20) == 4 * analysis.flops(model)
    assert analysis.flops(model, image_size=(10, 20)) == 2 * analysis.flops(model)


def test_flops_refuses_unknown_sizes_and_bad_batch_sizes():
    inputs = keras.Input((None, None, 8))
    model = keras.Model(inputs, keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs))
    with pytest.raises(ValueError, match="image_size=N"):
        analysis.flops(model)
    assert analysis.flops(model, image_size=10) == 2 * 3 * 3 * 8 * 16 * 100
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match=rf"batch_size must be a positive integer; got {bad!r}"):
            analysis.flops(_conv(), batch_size=bad)


def test_layer_flops_attribute_every_operation_to_its_layer():
    model = _residual_toy()
    per_layer = analysis.layer_flops(model)
    conv_a = 2 * 9 * 3 * 4 * 64 + 4 * 64  # kernel + bias
    conv_b = 2 * 9 * 4 * 4 * 64 + 4 * 64
    assert per_layer["a"] == conv_a and per_layer["b"] == conv_b
    assert per_layer["add"] == 4 * 64 and per_layer["d"] == 2 * 4 * 2 + 2
    assert list(per_layer)[:2] == ["a", "b"]  # the model's layer order
    assert sum(per_layer.values()) == analysis.flops(model)


# --- memory and depth ----------------------------------------------------------------------


def test_peak_activation_memory_of_a_toy_model_equals_the_hand_count():
    # float32 sizes: input 768 B, a, b and add 1,024 B each, pool 16 B, dense 8 B. While
    # `add` runs, a and b are still live and its output is allocated: 3 x 1,024 = 3,072 B,
    # more than while a runs (input + a = 1,792 B) or b runs (a + b = 2,048 B).
    model = _residual_toy()
    assert analysis.peak_activation_bytes(model) == 3072
    assert analysis.peak_activation_bytes(model, batch_size=2) == 2 * 3072
    with pytest.raises(ValueError, match="batch_size"):
        analysis.peak_activation_bytes(model, batch_size=0)


def test_depth_counts_weight_layers_on_the_longest_path():
    assert analysis.depth(_residual_toy()) == 3  # a -> b -> dense; the shortcut skips b
    inputs = keras.Input((8, 8, 3))
    shortcut = keras.layers.Conv2D(4, 1, name="projection")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="c2")(x)
    model = keras.Model(inputs, keras.layers.Add()([x, shortcut]))
    assert analysis.depth(model) == 2


def test_shared_layers_are_refused_by_the_graph_walk():
    inputs = keras.Input((4,))
    dense = keras.layers.Dense(4, name="shared")
    model = keras.Model(inputs, dense(dense(inputs)))
    with pytest.raises(ValueError, match="calls a layer more than once"):
        analysis.peak_activation_bytes(model)


# --- summary -------------------------------------------------------------------------------


def test_summary_of_lenet5_agrees_with_the_registry_and_the_profiler():
    info = registry.model_info("lenet5")
    result = analysis.summary("lenet5")
    model = registry.get_model("lenet5")
    assert result.params_total == info.params.total == model.count_params()
    assert result.params_trainable == info.params.trainable
    assert result.params_non_trainable == info.params.total - info.params.trainable
    assert result.weight_bytes == {"float32": 4 * info.params.total}
    assert result.flops == analysis.flops(model) == sum(f for _, f in result.layer_flops)
    assert result.depth == 5 == result.weight_layers  # two convolutions, three dense layers
    assert result.input_shape == result.native_input == info.input_shape
    assert result.peak_activation_bytes == analysis.peak_activation_bytes(model)
    text = analysis.format_summary(result)
    assert f"{info.params.total:,} total" in text and f"{result.flops:,}" in text


def test_summary_of_a_model_at_another_size_rebuilds_its_graph():
    model = _residual_toy()
    result = analysis.summary(model, image_size=16)
    assert result.input_shape == (16, 16, 3)
    assert result.flops == analysis.flops(model, image_size=16)
    assert result.peak_activation_bytes == 4 * 3072  # every activation map is 4x larger
    assert result.accuracy == () and result.native_input is None


def test_registry_holds_the_published_top1_figures():
    figures = registry.model_info("alexnet").accuracy
    assert [f.top1 for f in figures][:1] == [56.522] and 63.3 in [f.top1 for f in figures]
    # The published figures named in ../shared/REFERENCE.md, each model's first one.
    expected = {"vgg16": 71.6, "vgg19": 72.4, "resnet50": 76.1, "resnet101": 77.4, "resnet152": 78.3,
                "wide_resnet50_2": 78.5, "bit_r152x4": 87.5}
    for name, top1 in expected.items():
        assert round(registry.model_info(name).accuracy[0].top1, 1) == top1, name


# --- the command line ----------------------------------------------------------------------


def test_summary_command_prints_the_figures_and_writes_the_diagram(tmp_path):
    plot = tmp_path / "lenet5.png"
    proc = _cli("summary", "lenet5", "--plot", plot)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = analysis.summary("lenet5")
    assert f"{expected.params_total:,} total" in proc.stdout
    assert f"FLOPs           {expected.flops:,}" in proc.stdout
    assert "5 weight layers on the longest path" in proc.stdout
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert json.loads(json.dumps(expected.as_dict()))["flops"] == expected.flops  # what --json prints
    proc = _cli("summary", "lenet6")  # refused before TensorFlow starts
    assert proc.returncode == 2 and "Unknown model name: 'lenet6'" in proc.stderr


def test_compare_command_writes_the_table_and_the_chart(tmp_path):
    proc = _cli("compare", "lenet5", "alexnet", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader((tmp_path / "compare.csv").open()))
    assert [r["model"] for r in rows] == ["lenet5", "alexnet"]
    for row in rows:
        assert int(row["params"]) == registry.model_info(row["model"]).params.total
    assert rows[1]["top1"] == "56.522" and rows[0]["top1"] == ""
    assert int(rows[0]["flops"]) == analysis.summary("lenet5").flops
    table = (tmp_path / "compare.md").read_text()
    assert "| `alexnet` | alexnet | 2012 | 61.1M | 1.43 | 224x224x3 | 8 |" in table
    assert "1 of 2 models are placed" in table and "Not placed (no published top-1): `lenet5`" in table
    assert (tmp_path / "compare.png").read_bytes()[:4] == b"\x89PNG"
    svg = (tmp_path / "compare.svg").read_text()
    assert ">alexnet<" in svg and ">lenet5<" not in svg  # labels kept as text; lenet5 not placed


def test_compare_measures_only_models_missing_from_its_cache(monkeypatch):
    measured = []

    def fake(name):
        measured.append(name)
        info = registry.model_info(name)
        return {"image_size": info.input_shape[0], "params": info.params.total, "flops": 1,
                "depth": 1, "peak_activation_bytes": 1, "kerasarch": "test"}

    monkeypatch.setattr(comparison, "measure", fake)
    data = comparison.update({"models": {}}, ["lenet5", "alexnet"], log=lambda line: None)
    assert measured == ["lenet5", "alexnet"]
    data["models"]["alexnet"]["params"] += 1  # the architecture changed since it was measured
    again = comparison.update(data, ["alexnet", "lenet5"], log=lambda line: None)
    assert measured == ["lenet5", "alexnet", "alexnet"] and list(again["models"]) == ["alexnet", "lenet5"]
    comparison.update(again, ["lenet5"], remeasure=True, log=lambda line: None)
    assert measured[-1] == "lenet5"
    with pytest.raises(ValueError, match="Unknown model name: 'lenet6'"):
        comparison.update(again, ["lenet6"])


# --- the committed comparison --------------------------------------------------------------


def test_committed_comparison_covers_every_registered_model():
    committed = comparison.load(COMMITTED)["models"]
    for name in registry.list_models():
        info = registry.model_info(name)
        entry = committed.get(name)
        assert entry is not None, f"{name} is missing from {COMMITTED.name}: {STALE}"
        assert entry["params"] == info.params.total, f"{name}'s parameter count changed: {STALE}"
        assert entry["image_size"] == info.input_shape[0], f"{name}'s native size changed: {STALE}"
        assert entry["accuracy"] == [vars(a) for a in info.accuracy], f"{name}'s top-1 changed: {STALE}"
    assert set(committed) == set(registry.list_models()), f"a model was removed: {STALE}"


def test_committed_tables_and_docs_blocks_are_current():
    data = comparison.load(COMMITTED)
    table = (comparison.RESULTS / "compare.md").read_text()
    assert table == comparison.markdown(data) + "\n\n" + comparison.caption(data) + "\n", STALE
    assert (comparison.RESULTS / "compare.csv").read_text() == comparison.csv_text(data), STALE
    for page, image_dir in comparison.PAGES.items():
        block = f"<!-- compare:start -->\n{comparison.docs_block(data, image_dir)}\n<!-- compare:end -->"
        assert block in page.read_text(), f"{page.name}: {STALE}"
    for suffix in ("png", "svg"):
        assert (comparison.FIGURES / f"compare.{suffix}").stat().st_size > 10_000
    svg = (comparison.FIGURES / "compare.svg").read_text()
    for name, entry in data["models"].items():
        if comparison.headline(entry):
            assert f">{name}<" in svg, f"{name} is not labelled in the chart: {STALE}"


def test_a_committed_measurement_equals_a_new_one():
    committed = comparison.load(COMMITTED)["models"]["lenet5"]
    fresh = comparison.measure("lenet5")
    for key in ("flops", "params", "depth", "peak_activation_bytes", "image_size"):
        assert fresh[key] == committed[key], key
