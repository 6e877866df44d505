"""`model_info(name).weights` and `kerasarch weights list`: every source, its figure, its status.

A source marked verified must have a loader and a test that proves it: checked here
mechanically, source by source (the golden file exists, is the variant's and the format's,
and the golden test parametrizes over it; a keras.applications file has a twin the
equivalence suite checks).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import test_weights_timm

import kerasarch
from kerasarch import weights_catalog, weights_timm

from conftest import ROOT

SOURCES = [(name, source) for name in kerasarch.list_models()
           for source in kerasarch.model_info(name).weights]
VERIFIED = [(name, source) for name, source in SOURCES if source.verified]
GOLDEN_FORMAT = {"timm": None, "bit": "npz", "torchvision": "torchvision"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kerasarch", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


@pytest.mark.parametrize("name, source", VERIFIED, ids=[f"{n}:{s.kind}:{s.name}" for n, s in VERIFIED])
def test_every_verified_source_has_a_loader_and_a_test_that_proves_it(name, source):
    info = kerasarch.model_info(name)
    if source.kind == "keras":
        assert info.imagenet is not None and info.twin
        assert f"keras.applications.{info.twin}" in source.verified_by
        test_file = ROOT / source.verified_by.split(" ")[0]
        assert test_file.is_file()
        return
    maps = weights_timm.NPZ_MAPS if source.kind == "bit" else weights_timm.NAME_MAPS
    assert name in maps, f"{name}: no {source.kind} loader"
    golden_file = ROOT / source.verified_by
    assert golden_file.is_file(), source.verified_by
    record = json.loads(golden_file.read_text())
    assert record["variant"] == name
    assert record.get("format") == GOLDEN_FORMAT[source.kind]
    assert golden_file.stem in test_weights_timm.GOLDENS  # the golden test runs over it


def test_unverified_sources_are_the_rest_and_each_kind_is_listed():
    kinds = {source.kind for _, source in SOURCES}
    assert kinds == {"keras", "timm", "bit", "torchvision"}
    for name, source in SOURCES:
        if source.kind == "timm" and name not in weights_timm.NAME_MAPS:
            assert not source.verified, f"{name} has no timm loader: {source.name} cannot be verified"
            assert weights_catalog.NO_LOADER in source.note, "the user is told it cannot load yet"
    statuses = {(n, s.name): s.verified for n, s in SOURCES}
    assert statuses[("resnet18", "timm/resnet18.a1_in1k")]
    assert statuses[("bit_r50x1", "BiT-M-R50x1.npz")]
    assert not statuses[("inception_resnet_v2", "timm/inception_resnet_v2.tf_in1k")]  # no timm map yet
    assert not statuses[("bit_r101x1", "BiT-M-R101x1.npz")]  # the map is shared, no golden of its own


def test_figures_are_published_ones_with_their_source():
    for name, source in SOURCES:
        figure = source.accuracy
        if figure is not None:
            assert 0 < figure.top1 < 100 and figure.source, (name, source.name)
    by_name = {(n, s.name): s.accuracy for n, s in SOURCES}
    assert by_name[("resnet18", "timm/resnet18.a1_in1k")].top1 == 71.50
    assert by_name[("resnet18", "timm/resnet18.tv_in1k")].source == "torchvision 0.29 meta"
    assert by_name[("bit_r50x1", "R50x1_224.npz")].top1 == 82.8
    assert by_name[("resnet34", "timm/resnet34.a1_in1k")] is None  # none published here: left empty
    # a figure the catalog holds itself never contradicts one a registration holds
    for name in kerasarch.list_models():
        for figure in kerasarch.model_info(name).accuracy:
            tag = figure.weights.removeprefix("timm ").split(" ")[0]
            if figure.weights.startswith("timm ") and tag in weights_catalog.TIMM_FIGURES:
                assert weights_catalog.TIMM_FIGURES[tag][0] == figure.top1, tag


def test_weights_are_in_the_metadata_as_data():
    info = kerasarch.model_info("alexnet").as_dict()
    (source,) = info["weights"]
    assert source["kind"] == "torchvision" and source["name"] == "alexnet-owt-7be5be79.pth"
    assert source["accuracy"]["top1"] == 56.522 and source["url"].startswith("https://download.pytorch.org/")


def test_cli_weights_list_model_shows_every_source_with_figure_and_status():
    result = _cli("weights", "list", "resnet18")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "resnet18"
    a1 = next(line for line in lines if "hf://timm/resnet18.a1_in1k" in line)
    assert "71.50%" in a1 and "timm results-imagenet.csv" in a1
    assert "verified (tests/golden/resnet18.json)" in a1
    tv = next(line for line in lines if "hf://timm/resnet18.tv_in1k" in line)
    assert "69.76%" in tv and "torchvision 0.29 meta" in tv


def test_cli_weights_list_marks_the_unverified_and_the_unknown_figures():
    result = _cli("weights", "list", "bit_r101x1")
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(line for line in result.stdout.splitlines() if "<folder>/BiT-M-R101x1.npz" in line)
    assert "not yet verified" in line and " - " in line  # no published figure known


def test_cli_weights_list_all_and_json_and_unknown_model():
    everything = _cli("weights", "list")
    assert everything.returncode == 0, everything.stderr[-2000:]
    assert everything.stdout.startswith("alexnet\n") and "\n\nbit_r50x1\n" in everything.stdout
    assert "No published weights are known for: " in everything.stdout and "lenet5" in everything.stdout
    as_json = json.loads(_cli("weights", "list", "bit_r50x1", "--json").stdout)
    assert as_json["bit_r50x1"] == [dataclasses.asdict(s) for s in kerasarch.model_info("bit_r50x1").weights]
    unknown = _cli("weights", "list", "resnet81")
    assert unknown.returncode == 2 and "Unknown model name: 'resnet81'" in unknown.stderr
