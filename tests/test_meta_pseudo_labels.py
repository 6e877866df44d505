"""Meta Pseudo Labels' step: the teacher moves only through its losses, the feedback's sign."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasarch.train.meta_pseudo_labels import MetaPseudoLabels


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
             "labels": np.eye(10, dtype="float32")[rng.integers(0, 10, 8)],
             "unlabeled": rng.uniform(0, 255, (16, 32, 32, 1)).astype("float32")}
    import tensorflow as tf

    teacher_before, student_before = _weights(teacher), _weights(student)
    history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(2), epochs=1, verbose=0)
    assert {"loss", "feedback", "teacher_labeled_loss"} <= set(history.history)
    assert any(np.abs(o - n).max() > 0 for o, n in zip(teacher_before, _weights(teacher), strict=True))
    assert any(np.abs(o - n).max() > 0 for o, n in zip(student_before, _weights(student), strict=True))
    scores = model.evaluate(batch["labeled"], batch["labels"], return_dict=True, verbose=0)
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
