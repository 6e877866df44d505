"""Meta Pseudo Labels: the teacher moves only through its losses, the feedback's sign, strategies, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from kerasarch.train.mpl_model import MetaPseudoLabels

from conftest import kill_cli_when


def _linear(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((2,))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))


def _mpl(supervised_weight: float = 1.0) -> MetaPseudoLabels:
    model = MetaPseudoLabels(_linear(0), _linear(1), supervised_weight=supervised_weight, seed=0)
    model.compile(keras.optimizers.SGD(0.5), teacher_optimizer=keras.optimizers.SGD(0.5))
    return model


X = np.array([[2.0, 0.0], [0.0, 2.0], [1.5, 0.2], [0.1, 1.8]], np.float32)
Y = np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def test_zero_feedback_and_zero_supervised_loss_leave_the_teacher_unchanged():
    model = _mpl(supervised_weight=0.0)
    before = _weights(model.teacher)
    model.teacher_step(X, Y, X, 1 - Y, feedback=0.0)
    for old, new in zip(before, _weights(model.teacher), strict=True):
        np.testing.assert_array_equal(old, new)
    model.teacher_step(X, Y, X, 1 - Y, feedback=1.0)  # either loss alone moves it
    assert any(np.abs(o - n).max() > 0 for o, n in zip(before, _weights(model.teacher), strict=True))
    supervised = _mpl(supervised_weight=1.0)
    start = _weights(supervised.teacher)
    supervised.teacher_step(X, Y, X, 1 - Y, feedback=0.0)
    assert any(np.abs(o - n).max() > 0 for o, n in zip(start, _weights(supervised.teacher), strict=True))


@pytest.mark.parametrize("right", [True, False])
def test_feedback_has_the_papers_sign(right):
    """Pseudo labels that teach the student the labeled batch: h > 0; wrong ones: h < 0."""
    model = _mpl(supervised_weight=0.0)
    pseudo = Y if right else 1 - Y
    before, after, _, _ = model.student_step(X, Y, X, pseudo)  # the unlabeled batch is X itself
    h = float(model.feedback(before, after))
    assert (h > 0) == right and abs(h) > 1e-4
    # the teacher then makes the pseudo labels it gave more likely when h > 0, less when h < 0
    likelihood = float(np.sum(model.teacher.predict(X, verbose=0) * pseudo))
    model.teacher_step(X, Y, X, pseudo, feedback=h)
    moved = float(np.sum(model.teacher.predict(X, verbose=0) * pseudo)) - likelihood
    assert (moved > 0) == right


def test_fit_trains_both_and_the_model_round_trips(tmp_path):
    from kerasarch import registry

    teacher = registry.get_model("lenet5", classes=10)
    student = registry.get_model("lenet5", classes=10)
    model = MetaPseudoLabels(teacher, student, noise=keras.layers.RandomTranslation(0.1, 0.1, seed=0),
                             seed=0)
    model.compile(keras.optimizers.Adam(1e-3))  # the teacher's: a copy
    rng = np.random.default_rng(0)
    batch = {"labeled": rng.uniform(0, 255, (8, 32, 32, 1)).astype("float32"),
             "unlabeled": rng.uniform(0, 255, (16, 32, 32, 1)).astype("float32")}
    labels = np.eye(10, dtype="float32")[rng.integers(0, 10, 8)]
    import tensorflow as tf

    teacher_before, student_before = _weights(teacher), _weights(student)
    history = model.fit(tf.data.Dataset.from_tensors((batch, labels)).repeat(2), epochs=1, verbose=0)
    assert {"loss", "feedback", "teacher_labeled_loss"} <= set(history.history)
    assert any(np.abs(o - n).max() > 0 for o, n in zip(teacher_before, _weights(teacher), strict=True))
    assert any(np.abs(o - n).max() > 0 for o, n in zip(student_before, _weights(student), strict=True))
    scores = model.evaluate(batch["labeled"], labels, return_dict=True, verbose=0)
    assert 0.0 <= scores["top1"] <= 1.0  # evaluated as the student
    path = tmp_path / "mpl.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # both optimizers and their state: a run can resume
    assert int(loaded.teacher_optimizer.iterations) == int(model.teacher_optimizer.iterations) == 2
    for saved, kept in zip(loaded.teacher_optimizer.variables, model.teacher_optimizer.variables,
                           strict=True):
        np.testing.assert_array_equal(np.array(saved), np.array(kept))
    assert int(loaded.optimizer.iterations) == 2
    np.testing.assert_allclose(loaded.predict(batch["labeled"], verbose=0),
                               model.predict(batch["labeled"], verbose=0), atol=1e-6)


MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from kerasarch import train
print(json.dumps(train.meta_pseudo_labels(run_dir=sys.argv[1], epochs=1, finetune_epochs=0, verbose=0,
                                          labels_per_class=5, batch_size=8, unlabeled_ratio=4,
                                          strategy="mirrored")))
"""


def test_mpl_trains_under_the_mirrored_strategy(tmp_path):
    proc = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path / "run")], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "over 2 replica(s)" in proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["teacher_test_top1"] > 0.3  # both replicas' steps taught it something
    assert "finetuned_test_top1" not in summary


TINY = ["mpl", "--labels-per-class", "5", "--epochs", "2", "--finetune-epochs", "1", "--batch-size", "8",
        "--unlabeled-ratio", "4", "--verbose", "2"]


def test_cli_mpl_killed_mid_training_resumes_then_fine_tunes(tmp_path):
    run_dir = tmp_path / "mpl"
    command = [sys.executable, "-m", "kerasarch", *TINY, "--run-dir", str(run_dir)]
    kill_cli_when(command[3:], run_dir / "mpl" / "checkpoint" / "epoch-0001.keras", cwd=tmp_path)
    assert not (run_dir / "summary.json").exists()
    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    output = resumed.stdout + resumed.stderr
    assert "Resuming lenet5 on digits" in output and "from epoch 2" in output
    assert "Epoch 1/2" not in resumed.stdout
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert {"teacher_test_top1", "mpl_student_test_top1", "finetuned_test_top1"} <= set(summary)
    assert len((run_dir / "mpl" / "history.csv").read_text().splitlines()) == 3  # 2 epochs, once each
    assert (run_dir / "finetune" / "serving").is_dir() and not (run_dir / "mpl" / "serving").exists()
    stage = json.loads((run_dir / "mpl" / "config.json").read_text())["stage"]
    assert stage["method"] == "meta_pseudo_labels" and stage["unlabeled_batch"] == 32


def test_mpl_refuses_the_custom_loop_it_cannot_run():
    from kerasarch.train.self_training_config import MPLConfig

    with pytest.raises(ValueError, match="`loop`: 'custom'"):
        MPLConfig(loop="custom").validate()
    with pytest.raises(ValueError, match="`strategy`: 'multiworker'"):
        MPLConfig(strategy="multiworker").validate()
    MPLConfig().validate()
