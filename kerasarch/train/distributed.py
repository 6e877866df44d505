"""A training loop for `tf.distribute` strategies where `model.fit` does not work.

Keras 3.15's `model.fit` fails under `MultiWorkerMirroredStrategy` (it cannot convert the
strategy's `PerReplica` values), so multi-worker runs go through this loop. It keeps what
`fit` gives a run: the same compiled optimizer (Keras' TF optimizer all-reduces gradients
across replicas itself), the same loss and label smoothing, top-1/top-5 metrics, Keras
callbacks (the run folder, the NaN guard, TensorBoard on the chief) and a progress bar.

The loss is averaged over the *global* batch (`tf.nn.compute_average_loss`), so a step
over N replicas computes the same update as one step over the whole batch on one device.
Metrics are summed across replicas as counts, so they do not depend on how the batch was
split; top-k uses `kerasarch.train.metrics.top_k_hits`, as `evaluate` does.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerasarch.train.metrics import reported_ks, top_k_hits
from kerasarch.train.model_setup import AUX_LOSS_WEIGHT


def _main_and_aux(outputs) -> tuple[tf.Tensor, list]:
    """A model's main output and its auxiliary ones (`[main, aux1, ...]`, or one tensor)."""
    if isinstance(outputs, (list, tuple)):
        return outputs[0], list(outputs[1:])
    return outputs, []


def _distribute(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
    options = tf.data.Options()
    # Every worker reads the same seeded order and keeps its share of each global batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def _sums(y, probs, per_example_loss) -> list[tf.Tensor]:
    """[loss sum, examples, top-1 hits(, top-5 hits)] of one replica's batch."""
    truth = tf.argmax(y, axis=-1)
    hits = [tf.reduce_sum(top_k_hits(truth, probs, k)) for k in reported_ks(int(probs.shape[-1]))]
    return [tf.reduce_sum(per_example_loss), tf.cast(tf.shape(y)[0], tf.float32), *hits]


def _means(totals: list[float]) -> dict[str, float]:
    """Loss and top-k accuracies from the summed `_sums` (top-5 only with 6 classes or more)."""
    seen = max(totals[1], 1.0)
    names = ["loss", None, "top1", "top5"]
    return {name: total / seen for name, total in zip(names, totals, strict=False) if name}


def make_evaluator(model: keras.Model, strategy: tf.distribute.Strategy):
    """A function `dataset -> {"loss", "top1", "top5"}` that evaluates under `strategy`.

    The step is traced once, so calling the evaluator every epoch costs no retracing.
    """

    def replica(x, y):
        probs, _ = _main_and_aux(model(x, training=False))
        return _sums(y, probs, keras.losses.categorical_crossentropy(y, probs))

    @tf.function
    def step(batch):
        values = strategy.run(replica, args=batch)
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in values]

    def evaluate(dataset: tf.data.Dataset) -> dict[str, float]:
        totals = None
        for batch in _distribute(strategy, dataset):
            values = [float(v) for v in step(batch)]
            totals = values if totals is None else [a + b for a, b in zip(totals, values, strict=True)]
        return _means(totals or [0.0, 0.0, 0.0])

    return evaluate


def fit_distributed(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    train_data: tf.data.Dataset,
    epochs: int,
    steps_per_epoch: int,
    global_batch_size: int,
    label_smoothing: float = 0.0,
    validation_data: tf.data.Dataset | None = None,
    initial_epoch: int = 0,
    callbacks: list | None = None,
    verbose: int = 1,
    show_progress: bool = True,
) -> list[dict]:
    """Trains a compiled model with a custom loop under `strategy`.

    Args:
        model: A model compiled (under `strategy.scope()`) with its optimizer.
        strategy: The distribution strategy.
        train_data: Batches of `(images, one-hot labels)` at the global batch size, at
            least `steps_per_epoch` long; each epoch reads it through a new iterator (with
            a seeded reshuffling pipeline: the next reshuffle).
        epochs: Last epoch (exclusive upper bound, as in `fit`).
        steps_per_epoch: Steps per epoch, the same on every worker.
        global_batch_size: Examples per step over all replicas.
        label_smoothing: Cross-entropy label smoothing.
        validation_data: Evaluation batches (optional).
        initial_epoch: Epoch to start from (a resumed run).
        callbacks: Keras callbacks, driven as `fit` drives them.
        verbose: 1 for a progress bar, 2 for a line per epoch, 0 for none.
        show_progress: False on non-chief workers.

    Returns:
        The per-epoch logs (`"epoch"` numbered from 1).
    """
    optimizer = model.optimizer

    def train_replica(x, y):
        with tf.GradientTape() as tape:
            probs, aux = _main_and_aux(model(x, training=True))
            per_example = keras.losses.categorical_crossentropy(
                y, probs, label_smoothing=label_smoothing
            )
            for output in aux:  # auxiliary classifiers: the weighted objective of `fit`
                per_example += AUX_LOSS_WEIGHT * keras.losses.categorical_crossentropy(
                    y, output, label_smoothing=label_smoothing
                )
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return _sums(y, probs, per_example)

    @tf.function
    def train_step(iterator):
        values = strategy.run(train_replica, args=next(iterator))
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in values]

    evaluate = make_evaluator(model, strategy)
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=False, add_progbar=verbose != 0 and show_progress,
        model=model, verbose=verbose, epochs=epochs, steps=steps_per_epoch,
    )
    distributed_train = _distribute(strategy, train_data)
    history = []
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        iterator = iter(distributed_train)
        totals = None
        for step in range(steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            values = [float(v) for v in train_step(iterator)]
            totals = values if totals is None else [a + b for a, b in zip(totals, values, strict=True)]
            logs = _means(totals)
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        if validation_data is not None and not model.stop_training:
            logs.update({f"val_{k}": v for k, v in evaluate(validation_data).items()})
        callback_list.on_epoch_end(epoch, logs)
        history.append({"epoch": epoch + 1, **logs})
        if model.stop_training:
            break
    callback_list.on_train_end()
    return history


def evaluate_distributed(
    model: keras.Model, strategy: tf.distribute.Strategy, dataset: tf.data.Dataset
) -> dict[str, float]:
    """Loss, top-1 and top-5 of a model on `(images, one-hot labels)` batches under `strategy`."""
    return make_evaluator(model, strategy)(dataset)
