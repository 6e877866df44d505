"""The trainer: recipes, schedules, resumption after SIGKILL, NaN, strategies, transfer."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import keras
import numpy as np
import pytest

import kerasarch
from kerasarch import train
from kerasarch.train import config as train_config
from kerasarch.train import recipes, run_folder, schedules

from conftest import ROOT, VariablesCreatedWhileTracing


def _run(args, cwd, timeout=600, env=None, importtime=False):
    flags = ["-X", "importtime"] if importtime else []  # each import's time, on stderr
    return subprocess.run(
        [sys.executable, *flags, "-m", "kerasarch", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, env=env,
    )


def _imported_tensorflow(proc) -> bool:
    """Whether a `_run(..., importtime=True)` imported TensorFlow."""
    return bool(re.search(r"\|\s+tensorflow$", proc.stderr, flags=re.M))


# --- recipes and schedules ---------------------------------------------------------------


def test_every_model_has_a_sourced_recipe():
    for name in kerasarch.list_models():
        key, recipe = recipes.recipe_for(name)
        assert recipe.optimizer in recipes.OPTIMIZERS and recipe.source, name
    assert recipes.recipe_for("bit_r50x1")[0] == "bit"
    assert recipes.recipe_for("resnet50")[1].base_lr == 0.1


def test_linear_scaling_rule_for_sgd_not_for_adam():
    hp = train.resolve_hyperparameters(train.TrainConfig(model="resnet50", batch_size=512))
    assert hp.learning_rate == pytest.approx(0.2) and "linear scaling" in hp.learning_rate_rule
    hp = train.resolve_hyperparameters(train.TrainConfig(model="resnet50", batch_size=64))
    assert hp.learning_rate == pytest.approx(0.025)
    hp = train.resolve_hyperparameters(
        train.TrainConfig(model="resnet50", batch_size=64, optimizer="adamw")
    )
    assert "not scaled" in hp.learning_rate_rule
    hp = train.resolve_hyperparameters(train.TrainConfig(model="lenet5", batch_size=256))
    assert hp.learning_rate == 1e-3  # Adam: not scaled


def test_recipe_schedules_follow_the_run_length():
    bit = train.resolve_hyperparameters(train.TrainConfig(model="bit_r50x1", batch_size=128))
    assert bit.learning_rate == pytest.approx(0.003 * 128 / 512)
    plan = schedules.plan_schedule(bit, steps_per_epoch=100, epochs=10)
    assert plan.warmup_steps == 50 and plan.step_every == 300  # 5% and 30% of 1000
    resnet = train.resolve_hyperparameters(train.TrainConfig(model="resnet50"))
    plan = schedules.plan_schedule(resnet, steps_per_epoch=10, epochs=9)
    assert plan.step_every == 30  # every 30 of the paper's 90 epochs: a third of the run
    given = train.resolve_hyperparameters(
        train.TrainConfig(model="bit_r50x1", warmup_epochs=2, optimizer="rmsprop")
    )
    plan = schedules.plan_schedule(given, steps_per_epoch=10, epochs=9)
    assert plan.warmup_steps == 20 and given.learning_rate == pytest.approx(0.016 * 32 / 256)


def _values(rate, steps):
    """The rate at each of `steps` (a list of step numbers)."""
    return {i: float(rate(i)) if callable(rate) else rate for i in steps}


def test_schedules_are_keras_classes_with_the_recipe_shapes():
    step = schedules.SchedulePlan(1.0, total_steps=100, warmup_steps=10, kind="step", step_every=30).build()
    assert type(step) is keras.optimizers.schedules.PiecewiseConstantDecay
    values = _values(step, [0, 9, 10, 39, 40, 45, 75])
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)  # linear warmup
    assert values[10] == pytest.approx(1.0) and values[39] == pytest.approx(1.0)
    assert values[40] == pytest.approx(0.1) and values[75] == pytest.approx(0.01)
    cosine = schedules.SchedulePlan(2.0, total_steps=50, kind="cosine").build()
    assert type(cosine) is keras.optimizers.schedules.CosineDecay
    assert float(cosine(0)) == pytest.approx(2.0) and float(cosine(50)) == pytest.approx(0.0, abs=1e-6)
    assert float(cosine(25)) == pytest.approx(1.0, abs=1e-5)
    warm_cosine = _values(schedules.SchedulePlan(1.0, 20, warmup_steps=4, kind="cosine").build(), [0, 4, 12])
    assert warm_cosine[0] == pytest.approx(0.25) and warm_cosine[4] == pytest.approx(1.0)
    assert warm_cosine[12] == pytest.approx(0.5, abs=1e-5)
    constant = schedules.SchedulePlan(0.5, 100, warmup_steps=5).build()
    assert list(_values(constant, [0, 5, 50, 99]).values()) == pytest.approx([0.1, 0.5, 0.5, 0.5])
    assert schedules.SchedulePlan(0.5, 100).build() == 0.5
    long_warmup = _values(schedules.SchedulePlan(1.0, 2000, 1000, "step", 500).build(), [0, 999, 1499, 1500])
    assert long_warmup[999] == pytest.approx(1.0) and long_warmup[1499] == pytest.approx(1.0)
    assert long_warmup[1500] == pytest.approx(0.1) and 0 < long_warmup[0] <= 0.01
    # what a saved optimizer holds: Keras' own config, restored without kerasarch
    clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(step))
    assert float(clone(45)) == pytest.approx(values[45])


def test_bad_configuration_names_the_field():
    with pytest.raises(ValueError, match="`optimizer`"):
        train.fit(optimizer="lbfgs")
    with pytest.raises(ValueError, match="`precision`"):
        train.fit(precision="float8")
    with pytest.raises(ValueError, match="fine_tune"):
        train.fit(fine_tune=0)


# --- resumption after SIGKILL, NaN --------------------------------------------------------

# --no-export: the resumed run keeps it from config.json (checked below); the serving export
# itself is test_run_folder_contents's and test_train_then_export_both_formats_through_the_cli's
# batch 2, 250 steps: an epoch lasts long enough (about a second) to be killed in the middle of
SLOW = ["train", "lenet5", "--epochs", "4", "--batch-size", "2", "--steps-per-epoch", "250",
        "--verbose", "2", "--no-export"]


def test_sigkill_mid_epoch_then_resume(tmp_path):
    run_dir = tmp_path / "run"
    args = [*SLOW, "--run-dir", str(run_dir)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "kerasarch", *args], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.time() + 300
    while not (run_dir / "checkpoint" / "epoch-0002.json").exists():
        assert proc.poll() is None and time.time() < deadline, "training ended before epoch 2"
        time.sleep(0.05)
    time.sleep(0.4)  # into epoch 3
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = run_folder.latest_checkpoint(run_dir)
    assert killed_at is not None and 2 <= killed_at.epoch < 4
    completed = killed_at.epoch
    # no checkpoint file is half-written: every complete-named file is a valid archive
    for path in [*run_dir.glob("checkpoint/epoch-*.keras"), *run_dir.glob("*.keras")]:
        assert zipfile.is_zipfile(path), path
        keras.saving.load_model(path)
    rows_before = (run_dir / "history.csv").read_text().splitlines()
    assert len(rows_before) == completed + 1

    resumed = _run(args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    output = resumed.stdout + resumed.stderr
    assert "Resuming lenet5 on digits" in output and f"from epoch {completed + 1}" in output
    assert "Epoch 1/4" not in resumed.stdout and "Epoch 4/4" in resumed.stdout
    rows = (run_dir / "history.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[: completed + 1] == rows_before
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, 5))  # as the console counts
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == completed
    assert not list(run_dir.rglob(".*.tmp-*"))
    assert "serving" not in metrics and not (run_dir / "serving").exists()
    assert f"No serving export (--no-export): `kerasarch export {run_dir}`" in output
    exported = _run(["export", str(run_dir)], cwd=tmp_path)  # the command the message gives
    assert exported.returncode == 0, exported.stderr[-3000:]
    served = [p.parent for p in (run_dir / "export").rglob("saved_model.pb")]
    assert served == [run_dir / "export" / "lenet5" / "1"]


class _PoisonWeights(keras.callbacks.Callback):
    """Makes the loss NaN in the second epoch (what a too-large learning rate does)."""

    def on_train_batch_begin(self, batch, logs=None):
        if self.params and batch == 3 and self._epoch == 1:
            for v in self.model.trainable_variables[:1]:
                v.assign(np.full(v.shape, np.nan, dtype="float32"))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    run_dir = tmp_path / "nan"
    with pytest.raises(train.TrainingDivergedError) as error:
        train.fit(epochs=4, run_dir=str(run_dir), verbose=0, callbacks=[_PoisonWeights()])
    message = str(error.value)
    assert "nan at epoch 2, batch 4" in message and "epoch-0001.keras" in message
    last = run_folder.latest_checkpoint(run_dir)
    assert last.epoch == 1 and len(last.history) == 1
    model = keras.saving.load_model(last.path)
    assert all(np.isfinite(w).all() for w in model.get_weights())


# --- the whole run folder, evaluate, strategies, precision ---------------------------------


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("short") / "run"
    result = train.fit(epochs=2, run_dir=str(run_dir), verbose=0, label_smoothing=0.1,
                       schedule="cosine", warmup_epochs=1)
    return result


def test_run_folder_contents(short_run):
    run_dir = short_run.run_dir
    for name in ("config.json", "history.csv", "curves.png", "best.keras", "last.keras",
                 "metrics.json", "serving/lenet5/1/saved_model.pb"):
        assert (run_dir / name).exists(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["resolved"]["label_smoothing"] == 0.1 and config["resolved"]["schedule"] == "cosine"
    assert config["resolved"]["image_size"] == 32 and config["resolved"]["crop_fraction"] == 1.0
    assert any((run_dir / "logs").rglob("*tfevents*"))
    rows = (run_dir / "history.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[:2] == ["epoch", "lr"] and [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    lrs = [float(r.split(",")[1]) for r in rows[1:]]
    assert lrs[0] < lrs[1]  # the first epoch starts the warmup, the second starts at the peak
    assert [p.name for p in (run_dir / "serving" / "lenet5").iterdir()] == ["1"]


def test_metrics_are_those_of_best_keras(short_run):
    """One model per run: metrics.json and the serving export are best.keras's."""
    run_dir = short_run.run_dir
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = (run_dir / "history.csv").read_text().splitlines()
    val = [float(r.split(",")[history[0].split(",").index("val_top1")]) for r in history[1:]]
    best_epoch = 1 + int(np.argmax(val))
    assert metrics["model"] == f"best.keras (epoch {best_epoch})"
    assert metrics["serving"]["epoch"] == best_epoch
    images, labels = kerasarch.data.load_digits("test")
    best = keras.saving.load_model(run_dir / "best.keras")
    top1 = float((best.predict(images, verbose=0).argmax(-1) == labels).mean())
    assert top1 == pytest.approx(metrics["test_top1"], abs=1e-6)
    assert ("last_epoch" in metrics) == (best_epoch != 2)


SCHEDULE_RUNS = {
    "constant": {},
    "constant-warmup": {"warmup_epochs": 1},
    "step-warmup": {"schedule": "step", "warmup_epochs": 1},
    "cosine-warmup": {"schedule": "cosine", "warmup_epochs": 1},
}


def test_every_saved_file_loads_with_import_kerasarch_alone(tmp_path):
    """best.keras, last.keras and the checkpoint load in a fresh `import kerasarch` process."""
    paths = []
    for name, extra in SCHEDULE_RUNS.items():
        result = train.fit(epochs=2, steps_per_epoch=2, run_dir=str(tmp_path / name), verbose=0,
                           export=False, **extra)
        paths += [result.run_dir / "best.keras", result.run_dir / "last.keras",
                  run_folder.latest_checkpoint(result.run_dir).path]
    script = (
        "import sys, kerasarch, keras\n"
        "for p in sys.argv[1:]:\n"
        "    m = keras.saving.load_model(p)\n"
        "    print('loaded', p, type(m.optimizer.learning_rate).__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, *map(str, paths)], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("loaded ") == len(paths) == 12


def test_train_then_export_both_formats_through_the_cli(tmp_path):
    run_dir = tmp_path / "run"
    trained = _run(["train", "lenet5", "--epochs", "1", "--steps-per-epoch", "2", "--verbose", "0",
                    "--run-dir", str(run_dir)], cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    # one serving export per run: the plain export names the one training made
    saved = _run(["export", str(run_dir)], cwd=tmp_path, importtime=True)
    assert saved.returncode == 0, saved.stderr[-3000:]
    assert "already has its TF Serving export" in saved.stdout
    assert not _imported_tensorflow(saved)  # answered at once
    assert len(list(run_dir.rglob("saved_model.pb"))) == 1
    folded = _run(["export", str(run_dir), "--fold-batchnorm"], cwd=tmp_path)
    assert folded.returncode == 0, folded.stderr[-3000:]
    assert list((run_dir / "export").rglob("saved_model.pb"))
    litert = _run(["export", str(run_dir), "--format", "litert"], cwd=tmp_path)
    assert litert.returncode == 0, litert.stderr[-3000:]
    assert list(run_dir.rglob("*.tflite"))


# --- resuming with fewer arguments, the same random streams ----------------------------------

README_FIRST = ["train", "lenet5", "--epochs", "2", "--batch-size", "64", "--lr", "0.002",
                "--steps-per-epoch", "3", "--verbose", "2"]


def _history(run_dir):
    rows = (run_dir / "history.csv").read_text().splitlines()
    keys = rows[0].split(",")
    return [dict(zip(keys, map(float, r.split(",")), strict=True)) for r in rows[1:]]


def test_resume_with_only_epochs_repeats_an_uninterrupted_run(tmp_path):
    """The README's flow: train, then extend the run giving only --epochs and --run-dir."""
    extended, straight = tmp_path / "extended", tmp_path / "straight"
    first = _run([*README_FIRST, "--run-dir", str(extended)], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    refused = _run(["train", "lenet5", "--epochs", "4", "--lr", "0.01", "--run-dir", str(extended)],
                   cwd=tmp_path, importtime=True)
    assert refused.returncode == 2
    assert "--lr" in refused.stderr and "0.002" in refused.stderr and "0.01" in refused.stderr
    # refused at once: before TensorFlow's import, the seconds of a run's start
    assert not _imported_tensorflow(refused)
    second = _run(["train", "lenet5", "--epochs", "4", "--verbose", "2", "--run-dir", str(extended)],
                  cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "from epoch 3" in second.stdout + second.stderr and "Epoch 3/4" in second.stdout
    config = json.loads((extended / "config.json").read_text())["config"]
    assert config["epochs"] == 4 and config["learning_rate"] == 0.002 and config["batch_size"] == 64
    metrics = json.loads((extended / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == 2 and metrics["epochs"] == 4
    whole = _run([*README_FIRST[:3], "4", *README_FIRST[4:], "--run-dir", str(straight), "--no-export"],
                 cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]
    a, b = _history(extended), _history(straight)
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b] == [1, 2, 3, 4]
    for row_a, row_b in zip(a, b, strict=True):  # augmentation (shift) and shuffling included
        for key in ("loss", "top1", "val_loss", "val_top1"):
            assert row_a[key] == pytest.approx(row_b[key], abs=1e-5), (row_a["epoch"], key)


def test_merge_with_saved_refuses_contradictions_and_shrinking():
    saved = dataclasses.asdict(train.TrainConfig(epochs=10, batch_size=64, learning_rate=0.002))
    merged = train_config.merge_with_saved(saved, {"epochs": 20, "verbose": 0})
    assert merged["epochs"] == 20 and merged["batch_size"] == 64 and merged["learning_rate"] == 0.002
    with pytest.raises(ValueError, match=r"--batch-size.*batch_size=64, given 32"):
        train_config.merge_with_saved(saved, {"batch_size": 32})
    with pytest.raises(ValueError, match="may only raise --epochs"):
        train_config.merge_with_saved(saved, {"epochs": 5})
    assert train_config.merge_with_saved(saved, {"batch_size": 64})["batch_size"] == 64


def test_config_module_generates_the_options_and_imports_no_tensorflow():
    script = (
        "import argparse, sys, types\n"
        "pkg = types.ModuleType('kerasarch'); pkg.__path__ = ['kerasarch']\n"
        "sys.modules['kerasarch'] = pkg\n"
        "from kerasarch.train import config\n"
        "parser = argparse.ArgumentParser(); config.add_arguments(parser)\n"
        "print(config.from_args(parser.parse_args([])))\n"
        "print(config.from_args(parser.parse_args(['resnet18', '--lr', '0.1', '--augment', 'none',"
        " '--fine-tune', '0'])))\n"
        "print(parser.format_help())\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "{}"
    assert lines[1] == "{'model': 'resnet18', 'augment': None, 'learning_rate': 0.1, 'fine_tune': 0}"
    assert lines[-1] == "False False"
    help_text = " ".join(proc.stdout.split())
    assert "--batch-size BATCH_SIZE global batch size (split over replicas) (default: 32)" in help_text
    assert "--optimizer {sgd,adam,adamw,rmsprop}" in help_text
    assert len(dataclasses.fields(train.TrainConfig)) == help_text.count("(default:")


def test_source_defaults():
    digits = kerasarch.data.source_defaults("digits")
    assert (digits.image_size, digits.augment, digits.crop_fraction) == (32, "shift", 1.0)
    assert kerasarch.data.source_defaults("imagenette/160px-v2").val_split == "validation"
    cifar = kerasarch.data.source_defaults("cifar10")
    assert (cifar.val_split, cifar.test_split) == ("test", "")
    assert (cifar.augment, cifar.crop_fraction) == ("flip", 0.875)


def test_evaluate_command(short_run, tmp_path):
    out = tmp_path / "eval"
    proc = _run(["evaluate", str(short_run.run_dir), "--out", str(out)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "evaluation.json").read_text())
    assert report["num_examples"] == 360 and len(report["per_class"]) == 10
    matrix = np.array(report["confusion_matrix"])
    assert matrix.sum() == 360 and np.trace(matrix) / 360 == pytest.approx(report["top1"])
    assert (out / "confusion_matrix.png").stat().st_size > 1000
    best = keras.saving.load_model(short_run.run_dir / "best.keras")
    assert best is not None and 0 <= report["top1"] <= 1 and report["top5"] >= report["top1"]


MIRRORED = textwrap.dedent(
    """
    import json, sys, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from kerasarch import train
    result = train.fit(epochs=1, strategy="mirrored", run_dir=sys.argv[1], verbose=0,
                       batch_size=64)
    print(json.dumps(result.metrics))
    """
)


def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(tmp_path / "run")], capture_output=True, text=True,
        timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "over 2 replica(s)" in proc.stdout + proc.stderr
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert metrics["test_top1"] > 0.3  # one epoch learns something on both replicas


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_runs_and_outputs_float32(precision, tmp_path):
    result = train.fit(epochs=1, steps_per_epoch=5, precision=precision,
                       run_dir=str(tmp_path / precision), verbose=0, export=False)
    model = keras.saving.load_model(result.run_dir / "last.keras")
    assert model.output.dtype == "float32"
    assert model.get_layer("c1").compute_dtype == precision.split("_")[1]
    if precision == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


# --- transfer learning ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pretrained():
    return kerasarch.resnet18(input_shape=(32, 32, 3), classes=1000)


def _fit_a_little(model):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 32, 32, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 3, 16), 3)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)


def _weights_by_layer(model):
    return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in model.layers}


def test_feature_extraction_leaves_the_backbone_bit_identical(pretrained):
    before = _weights_by_layer(pretrained)
    model = train.transfer(pretrained, 3, mode="feature_extraction")
    head_before = [np.array(w) for w in model.get_layer("predictions").get_weights()]
    _fit_a_little(model)
    for layer in model.layers:
        if layer.name in before and layer.name != "predictions":
            for a, b in zip(before[layer.name], layer.get_weights(), strict=True):
                np.testing.assert_array_equal(a, b)  # BatchNorm moving statistics included
    head_after = model.get_layer("predictions").get_weights()
    assert not np.array_equal(head_before[0], head_after[0])


def test_fine_tuning_changes_only_the_unfrozen_layers():
    backbone = kerasarch.resnet18(input_shape=(32, 32, 3), classes=1000)
    before = _weights_by_layer(backbone)
    del before["predictions"]  # the old head; the new one has the same name and must train
    model = train.transfer(backbone, 3, mode="fine_tune", unfreeze="conv5_block2_2_conv")
    _fit_a_little(model)
    changed = {
        layer.name for layer in model.layers
        if layer.name in before and layer.weights and not all(
            np.array_equal(a, b) for a, b in zip(before[layer.name], layer.get_weights(), strict=True)
        )
    }
    assert changed == {"conv5_block2_2_conv"}  # its BatchNorm stays frozen
    with pytest.raises(ValueError, match="unfreeze"):
        train.transfer(backbone, 3, mode="fine_tune")


def test_cli_fine_tune_from_a_weights_file(tmp_path, pretrained):
    weights = tmp_path / "pretrained.weights.h5"
    pretrained.save_weights(weights)
    proc = _run(
        ["train", "resnet18", "--weights", str(weights), "--fine-tune", "0", "--dataset", "digits",
         "--epochs", "1", "--steps-per-epoch", "3", "--run-dir", str(tmp_path / "ft"),
         "--verbose", "0", "--no-export"],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = keras.saving.load_model(tmp_path / "ft" / "last.keras")
    assert model.output_shape == (None, 10)
    np.testing.assert_array_equal(
        model.get_layer("conv1_conv").get_weights()[0],
        pretrained.get_layer("conv1_conv").get_weights()[0],
    )


def _class_folders(root, classes=3, per_class=12):
    """A tiny folder dataset: class k is a colour band at row 8k, with noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k in range(classes):
        (root / f"class{k}").mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
            pixels[8 * k: 8 * k + 8] = 220
            Image.fromarray(pixels).save(root / f"class{k}" / f"{i}.png")
    return root


def test_cli_fine_tune_from_a_previous_run_with_another_class_count(tmp_path):
    """train lenet5 on digits, then on a 3-class folder from that run: one line, no weight dumps."""
    first = tmp_path / "digits-run"
    proc = _run(["train", "lenet5", "--epochs", "1", "--steps-per-epoch", "3", "--verbose", "0",
                 "--run-dir", str(first), "--no-export"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = _class_folders(tmp_path / "photos")
    second = tmp_path / "folder-run"
    proc = _run(["train", "lenet5", "--dataset", f"folder:{folder}", "--weights", str(first),
                 "--fine-tune", "0", "--epochs", "1", "--verbose", "0", "--run-dir", str(second)],
                cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert f"Loaded 4 layers from {first}; new head for 3 classes." in output
    assert len(output.splitlines()) < 40 and max(map(len, output.splitlines())) < 600
    assert "array(" not in output
    # degenerate data: a tiny validation split is a warning, top-5 on 3 classes is hidden
    assert "holds 4 images" in output and "top-5 accuracy is not reported" in output
    metrics = json.loads((second / "metrics.json").read_text())
    assert "validation_top1" in metrics and "validation_top5" not in metrics
    model = keras.saving.load_model(second / "best.keras")
    before = keras.saving.load_model(first / "best.keras")
    assert model.output_shape == (None, 3)
    np.testing.assert_array_equal(model.get_layer("c1").get_weights()[0],
                                  before.get_layer("c1").get_weights()[0])  # frozen, loaded


def test_weights_that_match_nothing_fail_in_one_line(tmp_path):
    weights = tmp_path / "other.weights.h5"
    kerasarch.resnet18(input_shape=(32, 32, 3), classes=7).save_weights(weights)
    proc = _run(["train", "lenet5", "--weights", str(weights), "--epochs", "1", "--verbose", "0",
                 "--run-dir", str(tmp_path / "run")], cwd=tmp_path)
    assert proc.returncode == 2
    error = [line for line in proc.stderr.splitlines() if line.startswith("kerasarch: error")]
    assert len(error) == 1 and "weights" in error[0] and len(error[0]) < 400


# --- multi-worker: two real processes on loopback ------------------------------------------

WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from kerasarch import train
    run_dir, strategy, loop, weights_out = sys.argv[1:5]
    result = train.fit(epochs=2, steps_per_epoch=12, batch_size=64, augment=None,
                       strategy=strategy, loop=loop, run_dir=run_dir, verbose=0, export=False)
    np.savez(weights_out, *result.model.get_weights())
    print("METRICS " + json.dumps(result.metrics))
    """
)


def _free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _history_losses(run_dir):
    rows = (run_dir / "history.csv").read_text().splitlines()
    keys = rows[0].split(",")
    return [float(r.split(",")[keys.index("loss")]) for r in rows[1:]]


def test_multiworker_two_processes_match_a_single_process_run(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    run_dir = tmp_path / "multi"
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                      "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, str(run_dir), "auto", "auto",
             str(tmp_path / f"worker{index}.npz")],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    outputs = [p.communicate(timeout=900) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-4000:]
    assert "over 2 replica(s)" in outputs[0][0] + outputs[0][1]
    # both workers end with identical weights
    w0, w1 = np.load(tmp_path / "worker0.npz"), np.load(tmp_path / "worker1.npz")
    assert len(w0.files) == len(w1.files) > 0
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])
    # only the chief (worker 0) wrote the run folder, and it is complete
    assert (run_dir / "last.keras").exists() and (run_dir / "metrics.json").exists()

    single_dir = tmp_path / "single"
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    single = subprocess.run(
        [sys.executable, "-c", WORKER, str(single_dir), "default", "fit",
         str(tmp_path / "single.npz")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert single.returncode == 0, single.stderr[-4000:]
    multi_loss, single_loss = _history_losses(run_dir), _history_losses(single_dir)
    print(f"multi-worker losses {multi_loss}, single-process {single_loss}")
    # the first epoch sees the same 12 global batches from the same initial weights
    assert multi_loss[0] == pytest.approx(single_loss[0], rel=2e-3)
    assert multi_loss[1] < multi_loss[0] and single_loss[1] < single_loss[0]


def test_the_train_step_is_traced_once(tmp_path):
    # On one device Keras would create the optimizer's and the metrics' variables inside the
    # first trace of the train step, and TensorFlow would then trace it twice.
    with VariablesCreatedWhileTracing() as created:
        result = train.fit(epochs=1, steps_per_epoch=2, run_dir=str(tmp_path / "run"), verbose=0,
                           export=False)
    assert created == []
    history = (result.run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 2  # and the run trained as usual


def test_jit_compiles_the_train_step_with_xla(tmp_path):
    result = train.fit(epochs=1, steps_per_epoch=3, jit=True, run_dir=str(tmp_path / "jit"),
                       verbose=0, augment=None, export=False)  # Keras' random layers do not support XLA
    assert result.model.jit_compile is True
    assert np.isfinite(result.metrics["test_loss"])


def test_curves_are_redrawn_at_most_every_few_seconds_and_at_the_end(tmp_path, monkeypatch):
    """history.csv is written every epoch; curves.png on the first epoch, then only after
    CURVES_EVERY_S, and at the end of training with every epoch in it."""
    from kerasarch.train import run_folder

    drawn: list[int] = []
    write = run_folder.write_history

    def recording(run_dir, history, curves=True):
        if curves:
            drawn.append(len(history))
        write(run_dir, history, curves)

    monkeypatch.setattr(run_folder, "write_history", recording)
    monkeypatch.setattr(run_folder, "CURVES_EVERY_S", 3600.0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.zeros((4, 2), "float32"), np.array([0, 1, 0, 1])
    model.fit(x, y, validation_data=(x, y), epochs=4, verbose=0,
              callbacks=[run_folder.RunFolder(tmp_path)])
    assert drawn == [1, 4]  # epoch 1, then the end of training (not epochs 2 and 3)
    assert len((tmp_path / "history.csv").read_text().splitlines()) == 5  # every epoch
    monkeypatch.setattr(run_folder, "CURVES_EVERY_S", 0.0)
    drawn.clear()
    model.fit(x, y, validation_data=(x, y), epochs=3, verbose=0,
              callbacks=[run_folder.RunFolder(tmp_path / "again")])
    assert drawn == [1, 2, 3]  # every epoch once the interval has passed; none repeated at the end
