"""Meta Pseudo Labels (Pham et al. 2021): the teacher learns from the student's feedback.

One training step (`MetaPseudoLabels.train_step`, the paper's algorithm 1 in its first-order
form):

1. The unlabeled batch is noised once (RandAugment); the teacher, in training mode, gives
   its class probabilities on it and a hard pseudo label is *sampled* from them.
2. The student takes one optimizer step on the pseudo-labeled batch. Its cross-entropy on
   the labeled batch is measured right before and right after that step.
3. The feedback is `h = loss_before - loss_after` minus a moving-average baseline: by a
   first-order Taylor expansion, `h ~ lr_S * grad L_l(theta_S')^T grad CE(y_hat, S)`, the
   paper's `h` (appendix A.1). `h > 0`: the pseudo labels helped the student on labeled data.
4. The teacher minimizes `supervised_weight * CE(y_l, T(x_l)) + h * CE(y_hat, T(x_u))`:
   with `h > 0` it makes the pseudo labels it gave more likely, with `h < 0` less likely
   (the score-function gradient of the student's labeled loss).

The released reference code computes `loss_after - loss_before` and multiplies it by the
teacher's cross-entropy against its own *soft* prediction, whose gradient is zero (its
authors' answer in google-research issue #534: hard labels at scale). Here the labels are
sampled hard labels, so the feedback term has a gradient, with the sign the paper derives.

Not here (yet): the UDA consistency loss. `kerasarch.train.mpl_training` runs this model
through the trainer (`meta_pseudo_labels(...)`, `kerasarch mpl`).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from kerasarch.layers import PACKAGE
from kerasarch.train.metrics import training_metrics

BASELINE_DECAY = 0.01  # the reference code's moving average of the feedback


def _cross_entropy(labels, probabilities):
    return ops.mean(keras.losses.categorical_crossentropy(labels, probabilities))


def _per_replica(loss):
    """A replica's share of the loss: Keras' optimizers sum the replicas' gradients."""
    return loss / tf.distribute.get_strategy().num_replicas_in_sync


@keras.saving.register_keras_serializable(package=PACKAGE)
class MetaPseudoLabels(keras.Model):
    """A teacher and a student trained together; the model's own output is the student's.

    Train it on batches `({"labeled": x_l, "unlabeled": x_u}, one_hot_y_l)` (Keras builds
    the metrics from such a batch: the student's output on `x_l` against `y_l`); evaluate
    and predict it like the student (`(images, one_hot_labels)` batches).

    Args:
        teacher: A classifier with a softmax output.
        student: A classifier with a softmax output (the model that is kept).
        noise: The augmentation both see the unlabeled batch through (None: none).
        supervised_weight: Weight of the teacher's own cross-entropy on the labeled batch.
        seed: Seed of the pseudo-label sampling.
        **kwargs: Base model arguments.
    """

    def __init__(self, teacher: keras.Model, student: keras.Model,
                 noise: keras.layers.Layer | None = None, supervised_weight: float = 1.0,
                 seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.teacher, self.student, self.noise = teacher, student, noise
        self.supervised_weight = float(supervised_weight)
        self.seed = seed
        self.sampler = keras.random.SeedGenerator(seed, name="pseudo_label_sampler")
        self.baseline = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                        aggregation="mean", name="feedback_baseline")
        self.teacher_optimizer: keras.optimizers.Optimizer | None = None
        self.built = True  # its two models are built; it has no layers of its own to build

    @property
    def outputs(self):
        """The student's outputs (what the trainer's loss and metrics are set up for)."""
        return self.student.outputs

    def call(self, inputs, training=False):
        """The student's output (on the labeled images of a training batch)."""
        if isinstance(inputs, dict):  # Keras builds the metrics on a training batch
            inputs = inputs["labeled"]
        return self.student(inputs, training=training)

    def compile(self, optimizer: Any = "adam", teacher_optimizer: Any = None, **kwargs: Any) -> None:
        """The student's `optimizer` and the teacher's (default: a copy of the student's).

        `loss` and `metrics` (the student's, for evaluation) default to the cross-entropy
        and top-1/top-5.
        """
        student_optimizer = keras.optimizers.get(optimizer)
        if teacher_optimizer is None:
            teacher_optimizer = student_optimizer.__class__.from_config(student_optimizer.get_config())
        kwargs.setdefault("loss", keras.losses.CategoricalCrossentropy())
        kwargs.setdefault("metrics", training_metrics(self.student.output_shape[-1]))
        super().compile(optimizer=student_optimizer, **kwargs)
        self.teacher_optimizer = keras.optimizers.get(teacher_optimizer)
        self.teacher_optimizer.build(self.teacher.trainable_variables)
        self.optimizer.build(self.student.trainable_variables)

    def get_compile_config(self):
        """Keras' compile config, with the teacher's optimizer."""
        config = super().get_compile_config() or {}
        if self.teacher_optimizer is not None:
            config["teacher_optimizer"] = keras.saving.serialize_keras_object(self.teacher_optimizer)
        return config

    def compile_from_config(self, config):
        """Compiles a loaded model as it was saved (both optimizers)."""
        config = dict(config)
        teacher = config.pop("teacher_optimizer", None)
        config = keras.saving.deserialize_keras_object(config)
        teacher = None if teacher is None else keras.saving.deserialize_keras_object(teacher)
        self.compile(**config, teacher_optimizer=teacher)

    # -- the step, in parts the tests call one by one (TensorFlow's tape: the TF backend) --

    def pseudo_labels(self, unlabeled_noised):
        """One-hot labels sampled from the teacher's probabilities (training mode)."""
        probabilities = self.teacher(unlabeled_noised, training=True)
        logits = ops.log(ops.maximum(ops.cast(probabilities, "float32"), 1e-7))
        sampled = keras.random.categorical(logits, 1, seed=self.sampler)[:, 0]
        return ops.one_hot(sampled, ops.shape(probabilities)[-1])

    def student_step(self, labeled, labels, unlabeled_noised, pseudo):
        """One student update on the pseudo labels; its labeled loss before and after (and output)."""
        before = _cross_entropy(labels, self.student(labeled, training=True))
        variables = self.student.trainable_variables
        with tf.GradientTape() as tape:
            loss = _cross_entropy(pseudo, self.student(unlabeled_noised, training=True))
            share = self.optimizer.scale_loss(_per_replica(loss))  # mixed_float16: loss scaling
        self.optimizer.apply(tape.gradient(share, variables), variables)
        predictions = self.student(labeled, training=True)
        return before, _cross_entropy(labels, predictions), loss, predictions

    def feedback(self, before, after):
        """`h`: the fall of the student's labeled loss, minus its moving average (baseline)."""
        raw = ops.cast(before - after, "float32")
        self.baseline.assign(self.baseline - BASELINE_DECAY * (self.baseline - raw))
        return ops.stop_gradient(raw - self.baseline)

    def teacher_step(self, labeled, labels, unlabeled_noised, pseudo, feedback):
        """One teacher update: its supervised loss plus `feedback * CE(pseudo, T(x_u))`."""
        variables = self.teacher.trainable_variables
        with tf.GradientTape() as tape:
            supervised = _cross_entropy(labels, self.teacher(labeled, training=True))
            meta = _cross_entropy(pseudo, self.teacher(unlabeled_noised, training=True))
            share = self.teacher_optimizer.scale_loss(
                _per_replica(self.supervised_weight * supervised + feedback * meta))
        self.teacher_optimizer.apply(tape.gradient(share, variables), variables)
        return supervised, meta

    def train_step(self, data):
        """Pseudo labels, the student's step, the feedback, the teacher's step."""
        inputs, labels = data
        labeled, unlabeled, labels = inputs["labeled"], inputs["unlabeled"], ops.cast(labels, "float32")
        if self.noise is not None:
            unlabeled = self.noise(unlabeled, training=True)
        pseudo = ops.stop_gradient(self.pseudo_labels(unlabeled))
        before, after, student_loss, predictions = self.student_step(labeled, labels, unlabeled, pseudo)
        h = self.feedback(before, after)
        supervised, _ = self.teacher_step(labeled, labels, unlabeled, pseudo, h)
        # the compiled metrics (top-1, top-5) of the student on the labeled batch, after its step
        logs = self.compute_metrics(labeled, labels, predictions)
        return {**logs, "loss": student_loss, "student_labeled_loss": after, "feedback": h,
                "teacher_labeled_loss": supervised}

    def get_config(self):
        """The teacher, the student and the noise, serialized."""
        config = super().get_config()
        config.update(
            teacher=keras.saving.serialize_keras_object(self.teacher),
            student=keras.saving.serialize_keras_object(self.student),
            noise=None if self.noise is None else keras.saving.serialize_keras_object(self.noise),
            supervised_weight=self.supervised_weight, seed=self.seed,
        )
        return config

    @classmethod
    def from_config(cls, config):
        """Rebuilds the teacher, the student and the noise."""
        config = dict(config)
        for key in ("teacher", "student", "noise"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
