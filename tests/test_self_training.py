"""Noisy Student: the labeled split, pseudo labels, balancing, the noised student, CLI and resume."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import keras
import numpy as np
import pytest

from kerasarch.train import pseudo_labels, self_training
from kerasarch.train.self_training_config import NoisyStudentConfig, merge_with_saved

from conftest import kill_cli_when


@pytest.fixture(scope="module")
def split():
    return self_training.load_split(NoisyStudentConfig(labels_per_class=10, seed=0))


@pytest.fixture(scope="module")
def student():
    """A LeNet-5 student with its noise (untrained: the mechanics do not need training)."""
    model, noise = self_training.build_student(NoisyStudentConfig(), "lenet5", 10, 32, seed=0)
    return model, noise


def test_labeled_split_draws_n_per_class_seeded_and_keeps_the_rest_unlabeled(split):
    assert np.bincount(split.labeled_labels).tolist() == [10] * 10
    assert len(split.labeled_labels) + len(split.unlabeled_images) == 1293  # digits' train split
    labeled = {image.tobytes() for image in split.labeled_images}
    assert not labeled & {image.tobytes() for image in split.unlabeled_images}
    again = self_training.load_split(NoisyStudentConfig(labels_per_class=10, seed=0))
    np.testing.assert_array_equal(again.labeled_images, split.labeled_images)
    other = self_training.load_split(NoisyStudentConfig(labels_per_class=10, seed=1))
    assert not np.array_equal(other.labeled_images, split.labeled_images)
    with pytest.raises(ValueError, match="labels_per_class"):
        pseudo_labels.split_labeled(split.labeled_images, split.labeled_labels, 10, 0,
                                    split.class_names)


def test_pseudo_labels_come_from_the_unnoised_teacher(student, split):
    teacher, _ = student
    images = split.unlabeled_images[:64]
    first = pseudo_labels.teacher_probabilities(teacher, images)
    second = pseudo_labels.teacher_probabilities(teacher, images)
    np.testing.assert_array_equal(first, second)  # inference mode: no augmentation, no dropout
    noised = keras.ops.convert_to_numpy(teacher(images.astype("float32"), training=True))
    assert np.abs(noised - first).max() > 1e-3  # a noised forward pass gives other labels


def test_soft_labels_sum_to_one_and_hard_labels_are_the_argmax():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 10)) * 3
    probabilities = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    soft = pseudo_labels.pseudo_label(probabilities, balanced=False)
    np.testing.assert_allclose(soft.targets.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(soft.targets, probabilities, atol=1e-6)
    hard = pseudo_labels.pseudo_label(probabilities, hard=True, balanced=False)
    assert set(np.unique(hard.targets)) == {0.0, 1.0}
    np.testing.assert_array_equal(hard.targets.argmax(1), probabilities.argmax(1))


def test_threshold_and_balancing_give_equal_counts_keeping_the_most_confident():
    classes, rng = 4, np.random.default_rng(1)
    predicted = np.repeat(np.arange(classes), [50, 20, 5, 1])  # skewed classes
    confidence = rng.uniform(0.4, 1.0, size=len(predicted))
    probabilities = np.full((len(predicted), classes), 0.0, np.float32)
    probabilities[np.arange(len(predicted)), predicted] = confidence
    rest = (1 - confidence) / (classes - 1)
    probabilities += np.where(probabilities == 0, rest[:, None], 0).astype(np.float32)
    labels = pseudo_labels.pseudo_label(probabilities, hard=True, per_class=12)
    assert labels.counts_after.tolist() == [12] * classes
    assert labels.counts_before.tolist() == [50, 20, 5, 1]
    big = labels.kept[predicted[labels.kept] == 0]
    assert sorted(confidence[big]) == sorted(np.sort(confidence[predicted == 0])[-12:])  # most confident
    small = labels.kept[predicted[labels.kept] == 3]
    assert len(set(small.tolist())) == 1  # the one image, duplicated
    default = pseudo_labels.pseudo_label(probabilities)  # target: the mean count, 19
    assert default.counts_after.tolist() == [19] * classes
    strict = pseudo_labels.pseudo_label(probabilities, threshold=0.9, balanced=False)
    assert probabilities[strict.kept].max(1).min() >= 0.9
    with pytest.raises(ValueError, match="threshold"):
        pseudo_labels.pseudo_label(probabilities, threshold=1.0)


def test_student_sees_noise_in_training_and_not_at_inference(student, split):
    model, noise = student
    raw = split.unlabeled_images[:16].astype("float32")
    augmentation = model.get_layer("augmentation")  # RandAugment, right after the input
    trained = keras.ops.convert_to_numpy(augmentation(raw, training=True))
    assert np.abs(trained - raw).mean() > 1.0
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augmentation(raw, training=False)), raw)
    assert model.get_layer("noise_dropout").rate == 0.5  # LeNet-5 has no dropout argument
    assert noise["randaugment"] == {"num_ops": 2, "magnitude": 5.0}
    inference = [keras.ops.convert_to_numpy(model(raw, training=False)) for _ in range(2)]
    np.testing.assert_array_equal(*inference)


def test_a_residual_student_gets_stochastic_depth_from_its_builder():
    model, noise = self_training.build_student(
        NoisyStudentConfig(stochastic_depth=0.3, dropout=0.1), "resnet18", 10, 32, seed=0)
    assert noise["stochastic_depth"] == {"rate": 0.3, "argument": "drop_path_rate"}
    assert noise["dropout"]["where"] == "before predictions"
    assert any("drop" in layer.name and layer.name != "noise_dropout" for layer in model.layers)


def test_a_student_step_reads_labeled_then_ratio_times_as_many_pseudo_labeled(split):
    cfg = NoisyStudentConfig(batch_size=4, unlabeled_ratio=3)
    probabilities = np.full((len(split.unlabeled_images), 10), 0.01, np.float32)
    probabilities[:, 0] = 0.91
    labels = pseudo_labels.pseudo_label(probabilities, balanced=False)
    config = types.SimpleNamespace(seed=0, batch_size=16)
    plan = types.SimpleNamespace(config=config, image_size=32, channels=1, splits=(("train", "t"),))
    splits, infos = self_training._stage_pipelines(cfg, split, labels, plan, 1)
    images, targets = next(iter(splits["train"]))
    assert images.shape == (16, 32, 32, 1) and targets.shape == (16, 10)
    targets = targets.numpy()
    assert set(targets[:4].max(1)) == {1.0}  # the labeled images' one-hot labels
    np.testing.assert_allclose(targets[4:], np.tile(labels.targets[:1], (12, 1)), atol=1e-6)
    steps = -(-len(labels.kept) // 12)
    assert infos["train"].num_examples == steps * 16
    assert sum(1 for _ in splits["train"]) == steps


def test_resumed_options_must_agree_and_iterations_may_only_grow():
    saved = {"iterations": 2, "labels_per_class": 10}
    assert merge_with_saved(saved, {"iterations": 3})["iterations"] == 3
    with pytest.raises(ValueError, match="--labels-per-class"):
        merge_with_saved(saved, {"labels_per_class": 5})
    with pytest.raises(ValueError, match="shorten"):
        merge_with_saved(saved, {"iterations": 1})


TINY = ["noisy-student", "--labels-per-class", "5", "--iterations", "2", "--epochs", "2",
        "--teacher-epochs", "1", "--batch-size", "8", "--unlabeled-ratio", "4", "--verbose", "2"]


def test_cli_noisy_student_killed_in_iteration_two_resumes_there(tmp_path):
    run_dir = tmp_path / "ns"
    command = [sys.executable, "-m", "kerasarch", *TINY, "--run-dir", str(run_dir)]
    kill_cli_when(command[3:], run_dir / "iteration-2" / "student" / "checkpoint" / "epoch-0001.keras",
                  cwd=tmp_path)
    assert not (run_dir / "summary.json").exists()
    pseudo = (run_dir / "iteration-2" / "pseudo_labels.npz").read_bytes()
    first = json.loads((run_dir / "iteration-1" / "iteration.json").read_text())

    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    output = resumed.stdout + resumed.stderr
    assert "the teacher is trained" in output and "the student is trained" in output  # skipped
    assert "Resuming lenet5 on digits" in output and "from epoch 2" in output
    assert "Epoch 1/2" not in resumed.stdout
    assert (run_dir / "iteration-2" / "pseudo_labels.npz").read_bytes() == pseudo
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert [r["iteration"] for r in result["iterations"]] == [1, 2]
    second = json.loads((run_dir / "iteration-2" / "iteration.json").read_text())
    assert second["teacher"]["test_top1"] == first["student"]["test_top1"]  # the student taught
    stats = second["pseudo_labels"]
    assert sum(stats["confidence_histogram"]["counts"]) == stats["unlabeled_images"] == 1243
    assert len({n for n in stats["per_class_after_balancing"].values() if n}) == 1
    assert (run_dir / "iteration-2" / "iteration.png").stat().st_size > 0
    # one TF Serving export: the last student's
    assert (run_dir / "iteration-2" / "student" / "serving").is_dir()
    assert not (run_dir / "teacher" / "serving").exists()
    assert not (run_dir / "iteration-1" / "student" / "serving").exists()
    history = (run_dir / "iteration-2" / "student" / "history.csv").read_text().splitlines()
    assert len(history) == 3  # header + 2 epochs, none repeated
    stage = json.loads((run_dir / "iteration-2" / "student" / "config.json").read_text())["stage"]
    assert stage["role"] == "student" and stage["pseudo_labeled_batch"] == 32

    with pytest.raises(ValueError, match="labels_per_class=5, given 7"):  # before any training
        self_training.noisy_student(run_dir=str(run_dir), labels_per_class=7)


def test_a_given_teacher_labels_the_first_iteration_without_a_teacher_stage(tmp_path, student):
    model, _ = student
    keras.utils.set_random_seed(0)
    teacher_path = tmp_path / "teacher.keras"
    model.save(teacher_path)
    result = self_training.noisy_student(
        teacher=str(teacher_path), run_dir=str(tmp_path / "ns"), labels_per_class=5, epochs=1,
        batch_size=8, unlabeled_ratio=8, hard_labels=True, threshold=0.0, verbose=0)
    assert not (tmp_path / "ns" / "teacher").exists()
    record = result.iterations[0]
    assert record["teacher"]["source"] == str(teacher_path)
    expected = pseudo_labels.teacher_probabilities(model, self_training.load_split(
        NoisyStudentConfig(labels_per_class=5)).unlabeled_images)
    saved = pseudo_labels.load(tmp_path / "ns" / "iteration-1" / "pseudo_labels.npz")
    np.testing.assert_allclose(saved.probabilities, expected, atol=1e-6)  # the given teacher's
    assert set(np.unique(saved.targets)) == {0.0, 1.0}
    with pytest.raises(ValueError, match="teacher"):
        self_training.noisy_student(teacher=str(tmp_path / "missing.keras"), run_dir=str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()  # refused before the run folder records anything
