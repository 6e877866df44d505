"""Shared fixtures: test data locations, raw images, an artifacts folder, model builds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("KERASARCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
ARTIFACTS = ROOT / "build" / "test-artifacts"


def shared_data_or_skip() -> Path:
    """The ../shared/data folder, or a skip where a user's clone does not have it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"test data folder {SHARED_DATA} is absent (it sits beside the checkout in CI)")
    return SHARED_DATA


def real_photos(size: int, count: int = 4) -> np.ndarray:
    """`count` real photos from ../shared/data, resized to `size`, as uint8 RGB."""
    from PIL import Image

    folder = shared_data_or_skip() / "photos"
    files = sorted(folder.glob("n0*.JPEG"))[:count]
    return np.stack(
        [np.asarray(Image.open(f).convert("RGB").resize((size, size), Image.BILINEAR)) for f in files]
    )


def raw_images(shape, count: int = 2, seed: int = 0) -> np.ndarray:
    """Real photos where they fit the shape and exist, else seeded random uint8 pixels."""
    height, width, channels = shape
    if channels == 3 and height == width and SHARED_DATA.is_dir():
        return real_photos(height, count)
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, height, width, channels), dtype=np.uint8)


def forward(model, images) -> np.ndarray:
    """One inference-mode forward pass, as numpy: what `model.predict` returns for one batch.

    A direct call runs the layers eagerly; `predict` first traces a `tf.function` for the
    model, which costs two to three times the forward pass itself on a freshly built model
    (measured on ResNet-50: 18.7 s against 5.8 s on the shared 2-core machine). The suite
    makes one or two passes per build, so it calls the model directly.
    """
    import keras

    return keras.tree.map_structure(keras.ops.convert_to_numpy, model(images, training=False))


class VariablesCreatedWhileTracing(list):
    """Names of the variables created inside a `tf.function` trace within the `with` block.

    TensorFlow traces a function again when its first trace created variables, so a train
    step that creates none is traced once.
    """

    def __enter__(self):
        import tensorflow as tf

        def record(next_creator, **kwargs):
            if tf.inside_function():
                self.append(kwargs.get("name"))
            return next_creator(**kwargs)

        self._scope = tf.variable_creator_scope(record)
        self._scope.__enter__()
        return self

    def __exit__(self, *exc):
        return self._scope.__exit__(*exc)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory, monkeypatch) -> Path:
    """kerasarch's caches (the folder-check cache) go to a fresh folder for each test, and
    so do those of the CLI subprocesses a test starts: never the user's ~/.cache."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("KERASARCH_CACHE_DIR", str(path))
    return path


# Variants whose layers and code paths a smaller member of their family runs already (the
# same builder and blocks, only more of them or wider). In the default run such a variant
# is built once, with its head, for the registry suite's counts, output and naming checks;
# everything that builds, converts or compares it again (the backbone build, pooled and
# other-size builds, the .keras round trip, the LiteRT conversion, the keras.applications
# twin) runs on the member named here. That keeps the whole suite near 25 minutes on the
# 2-core CI machine. `KERASARCH_FULL_SUITE=1 python -m pytest` runs every check on every
# variant. tests/test_contract.py checks each entry names a registered, uncovered member
# of the same family.
FULL_SUITE = bool(os.environ.get("KERASARCH_FULL_SUITE"))
COVERED_BY = {
    **dict.fromkeys(["resnet101", "resnet152"], "resnet50"),
    **dict.fromkeys(["resnet101_tv", "resnet152_tv"], "resnet50_tv"),
    "resnet34": "resnet18",
    **dict.fromkeys(["resnet101v2", "resnet152v2"], "resnet50v2"),
    # the same builder and bottleneck blocks; only their inner width is doubled
    **dict.fromkeys(["wide_resnet50_2", "wide_resnet101_2"], "resnet50_tv"),
    **dict.fromkeys(["bit_r50x3", "bit_r101x1", "bit_r101x3", "bit_r152x2", "bit_r152x4"], "bit_r50x1"),
    **dict.fromkeys(["vgg13", "vgg16", "vgg19"], "vgg11"),
    **dict.fromkeys(["vgg13_bn", "vgg16_bn", "vgg19_bn"], "vgg11_bn"),
    **dict.fromkeys(["convnext_small", "convnext_base", "convnext_large", "convnext_xlarge"],
                    "convnext_tiny"),
    **dict.fromkeys(["densenet", "densenet169", "densenet201", "densenet264"], "densenet121"),
    **dict.fromkeys([f"efficientnet_b{i}" for i in range(1, 8)] + ["efficientnet_l2"],
                    "efficientnet_b0"),
    "mobilenet_025": "mobilenet",
}
if FULL_SUITE:
    COVERED_BY = {}


# Test modules whose parametrized tests are independent units for pytest-xdist: one group
# per value of this parameter (a model, a lesson). In every other module, the tests that share
# a module- or session-scoped fixture (a trained run, the docs site), directly or through
# another fixture, form one group, so the fixture is made once; a test that shares none is a
# group of its own, so that the two workers can balance the long modules.
SPLIT_BY = {
    "test_models": "name", "test_weights": "name", "test_notebooks": "source", "test_weights_timm": "name",
}


# xdist hands out groups in collection order (`--no-loadscope-reorder` in pyproject.toml; by
# default it would sort them by their number of tests), each to the next idle worker: the modules of
# long tests (notebooks, CLI flows in subprocesses, training runs) go first and the many short
# registry-suite groups last, so that neither worker is left alone with a long test at the end.
LONG_FIRST = (
    "test_notebooks", "test_training", "test_self_training", "test_meta_pseudo_labels",
    "test_googlenet", "test_docs", "test_export", "test_train_cli", "test_weights",
    "test_efficientnet", "test_runtimes", "test_cli", "test_head_sizes", "test_weights_timm",
)
SHORT_LAST = ("test_models",)


def _rank(item) -> int:
    module = item.module.__name__
    if module in LONG_FIRST:
        return LONG_FIRST.index(module)
    return len(LONG_FIRST) + 1 if module in SHORT_LAST else len(LONG_FIRST)


def _shared_fixture_groups(items) -> dict:
    """item -> a group name: per module, tests joined (union-find) by the module's own
    wide-scoped fixtures in their fixture closure (a group named after its first test)."""
    parent = {}

    def find(key):
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for item in items:
        module = item.module.__name__
        info = getattr(item, "_fixtureinfo", None)
        for fixture in item.fixturenames:
            defs = info.name2fixturedefs.get(fixture) if info else None
            # the module's own fixtures: conftest's and plugins' (tmp_path_factory) are per worker
            if (defs and defs[-1].scope in ("module", "session", "package", "class")
                    and defs[-1].baseid == item.nodeid.split("::")[0]):
                parent[find(("item", item.nodeid))] = find(("fixture", module, fixture))
    names, groups = {}, {}
    for item in items:
        root = find(("item", item.nodeid))
        # no brackets: xdist reads a group only when its "@" comes after the last "]" of the id
        names.setdefault(root, f"{item.module.__name__}:{item.name}".replace("[", "(").replace("]", ")"))
        groups[item] = names[root]
    return groups


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Puts each test in a pytest-xdist group (`--dist loadgroup`, set in pyproject.toml).

    A group runs in one worker: a module's shared fixtures are made once, and all the tests
    of one model run where it was built (tests/test_models.py's build cache is per worker).
    Runs before xdist's own hook, which reads the groups.
    """
    items.sort(key=_rank)  # stable: a module's own order is kept
    shared = _shared_fixture_groups(items)
    for item in items:
        module = item.module.__name__
        callspec = getattr(item, "callspec", None)
        if module in SPLIT_BY and callspec and SPLIT_BY[module] in callspec.params:
            group = f"{module}:{callspec.params[SPLIT_BY[module]]}"
        else:
            group = shared[item]
        item.add_marker(pytest.mark.xdist_group(group))


def kill_cli_when(args: list[str], marker: Path, cwd: Path, timeout: float = 600) -> None:
    """Runs `python -m kerasarch ARGS` and SIGKILLs it the moment `marker` exists, as a crash
    or an out-of-memory kill would; fails if the command ends (or the timeout passes) first."""
    proc = subprocess.Popen([sys.executable, "-m", "kerasarch", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + timeout
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read()[-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
