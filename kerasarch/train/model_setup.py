"""Building a run's model, or resuming it, and seeding its random layers per epoch.

The model is the registry's, at the run's input size, with its augmentation layer. Initial
weights come from ImageNet, or from your own file or run folder (matching layers by name;
a head for another class count is new); `fine_tune` freezes the backbone (`transfer`).
"""

from __future__ import annotations

import inspect
import logging
import warnings

import keras
import tensorflow as tf

from kerasarch import registry
from kerasarch.train import run_folder, schedules
from kerasarch.train.metrics import training_metrics
from kerasarch.train.recipes import Hyperparameters
from kerasarch.train.transfer_learning import load_matching_weights, transfer

log = logging.getLogger("kerasarch.train")

# An auxiliary classifier's share of the training loss (Szegedy et al. 2014, sec. 5: 0.3).
AUX_LOSS_WEIGHT = 0.3


def _optimizer(hp: Hyperparameters, rate, precision: str) -> keras.optimizers.Optimizer:
    decay = hp.weight_decay or None
    if hp.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(rate, momentum=0.9, nesterov=True, weight_decay=decay)
    elif hp.optimizer == "adam":
        optimizer = keras.optimizers.Adam(rate, weight_decay=decay)
    elif hp.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(rate, weight_decay=decay or 0.05)
    else:
        optimizer = keras.optimizers.RMSprop(rate, rho=0.9, momentum=0.9, epsilon=1.0, weight_decay=decay)
    if precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _training_args(name: str) -> dict:
    """Architecture arguments of a run's model: its auxiliary classifiers where it has them.

    GoogLeNet's paper (and Inception v3's) trained with the auxiliary classifiers, so a run
    builds a model whose builder takes `aux_logits` with them; metrics, the run's scores
    and every export use the main output (`heads.main_output`).
    """
    parameters = inspect.signature(registry.builder(name)).parameters
    return {"aux_logits": True} if "aux_logits" in parameters else {}


def objective(model: keras.Model, classes: int, label_smoothing: float = 0.0) -> dict:
    """`compile` arguments: the loss, its weights and the metrics, on the main output.

    A model with auxiliary outputs (`[main, aux1, ...]`) trains on the weighted sum of
    their cross-entropies, main 1.0 and each auxiliary `AUX_LOSS_WEIGHT` (Keras'
    `loss_weights`); its metrics measure the main output only. Keras names those
    `<output>_top1`; `MainOutputLogs` gives them back their plain names.

    Args:
        model: The model to compile.
        classes: Classes of the task.
        label_smoothing: Cross-entropy label smoothing.

    Returns:
        Keyword arguments for `model.compile`.
    """
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    extra = len(model.outputs) - 1
    if not extra:
        return {"loss": loss, "metrics": training_metrics(classes)}
    return {"loss": [loss] * (extra + 1), "loss_weights": [1.0] + [AUX_LOSS_WEIGHT] * extra,
            "metrics": [training_metrics(classes)] + [[] for _ in range(extra)]}


def build_training_state(model: keras.Model) -> None:
    """Creates the optimizer's slots and the compiled loss' and metrics' variables now.

    Keras creates them before the first trace of the train step only for a model built
    under a `tf.distribute` strategy scope other than the default one; on one device it
    defers them to that trace, and TensorFlow then traces the step a second time, because a
    `tf.function` that creates variables is traced again without creating them (GoogLeNet
    with its auxiliary heads: 8.3 s, then 5.1 s more; LeNet-5: 1.3 s, then 1.0 s). Building
    them here, eagerly, leaves one trace. The loss and metrics are built on a placeholder
    prediction (uniform probabilities for one image) and then reset, so no figure of the run
    includes it. A model with its own `train_step` (Meta Pseudo Labels) builds its own state.
    """
    if tf.distribute.has_strategy() or type(model).train_step is not keras.Model.train_step:
        return  # Keras' own symbolic build runs under a strategy scope; a custom step is its own
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    classes = [output.shape[-1] for output in model.outputs]
    y_pred = [keras.ops.full((1, n), 1.0 / n) for n in classes]
    y_true = tuple(keras.ops.one_hot(keras.ops.zeros((1,), "int32"), n) for n in classes)
    if len(classes) == 1:  # else a list and a tuple: the structures `fit_targets` gives
        y_pred, y_true = y_pred[0], y_true[0]
    model.compute_loss(y=y_true, y_pred=y_pred, training=False)
    model.compute_metrics(None, y_true, y_pred)
    model.reset_metrics()


def fit_targets(model: keras.Model, dataset):
    """`(images, labels)` batches as `model.fit` wants them: the labels once per output."""
    outputs = len(model.outputs)
    if dataset is None or outputs == 1:
        return dataset
    return dataset.map(lambda images, labels: (images, (labels,) * outputs))


def main_output_logs(model: keras.Model, logs: dict) -> dict:
    """Adds the main output's metrics under their plain names (`top1`, `val_top1`) to `logs`.

    Keras prefixes the metrics of a model with several outputs with the output's name
    (`predictions_top1`); the run folder, best-epoch choice and scores read `top1`.
    """
    if len(model.outputs) > 1:
        main = model.output_names[0]
        for key in [k for k in logs if k.startswith((f"{main}_", f"val_{main}_"))]:
            plain = key.replace(f"{main}_", "", 1)
            if not plain.endswith("loss"):  # `loss` stays the weighted total
                logs[plain] = logs[key]
    return logs


class MainOutputLogs(keras.callbacks.Callback):
    """Gives the main output's metrics their plain names in the logs the next callbacks read."""

    def on_epoch_end(self, epoch, logs=None):
        """Adds `top1`, `val_top1`, ... (see `main_output_logs`)."""
        main_output_logs(self.model, logs if logs is not None else {})


def _build_model(plan, classes: int) -> keras.Model:
    config = plan.config
    shape = (plan.image_size, plan.image_size, plan.channels)
    unfreeze = config.fine_tune
    mode = "feature_extraction" if unfreeze in (0, "0") else "fine_tune"
    if isinstance(unfreeze, str) and unfreeze.isdigit():
        unfreeze = int(unfreeze)
    if config.weights == "imagenet" and config.fine_tune is not None:
        info = registry.model_info(config.model)
        pretrained = registry.get_model(
            config.model, weights="imagenet", include_top=True, classes=info.classes,
            input_shape=None if info.fixed_size_with_top else shape, augmentation=plan.augment,
        )
        return transfer(pretrained, classes, mode=mode, unfreeze=unfreeze or None)
    arguments = dict(classes=classes, input_shape=shape, augmentation=plan.augment,
                     weights="imagenet" if config.weights == "imagenet" else None)
    extra = _training_args(config.model)
    try:
        model = registry.get_model(config.model, **arguments, **extra)
    except ValueError as error:
        if not extra or "aux_logits=True" not in str(error):
            raise
        # Inception v3's auxiliary head reads a 17x17 map: below 299 px it cannot exist.
        log.warning("Training %s without its auxiliary classifier: %s", config.model, error)
        model = registry.get_model(config.model, **arguments)
    if config.weights in (None, "imagenet"):
        return model
    loaded = load_matching_weights(model, config.weights)
    with_weights = sum(1 for layer in model.layers if layer.weights)
    if config.fine_tune is not None:
        model = transfer(model, classes, mode=mode, unfreeze=unfreeze or None)
    head = ("the head included" if loaded == with_weights and config.fine_tune is None
            else f"new head for {classes} classes")
    log.info("Loaded %d layers from %s; %s.", loaded, config.weights, head)
    return model


def build_or_resume(plan, strategy, steps: int, classes: int,
                    resume: run_folder.Checkpoint | None, build=None) -> keras.Model:
    """A compiled model: loaded from the run's last checkpoint, or built new.

    Args:
        plan: The run's `trainer.Plan`.
        strategy: The `tf.distribute` strategy to build under.
        steps: Steps per epoch (the schedule's length).
        classes: Classes of the task.
        resume: The checkpoint to resume from, or None.
        build: `(plan, classes) -> keras.Model` in place of the registry's model (a `Stage`'s).

    Returns:
        The model, compiled with the run's optimizer, loss and metrics.
    """
    config = plan.config
    rate = schedules.plan_schedule(plan.hp, steps, config.epochs).build()
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        with strategy.scope():
            if resume:
                model = keras.saving.load_model(resume.path)
                schedules.replace_schedule(model.optimizer, rate)  # an extended run's length
                build_training_state(model)
                return model
            keras.utils.set_random_seed(config.seed)
            model = (build or _build_model)(plan, classes)
            model.compile(
                optimizer=_optimizer(plan.hp, rate, config.precision),
                jit_compile=config.jit,
                **objective(model, classes, plan.hp.label_smoothing),
            )
            build_training_state(model)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    if config.jit and not model.jit_compile:
        unsupported = [layer.name for layer in model.layers
                       if not getattr(layer, "supports_jit", True)] or ["the augmentation"]
        warnings.warn(f"--jit: Keras compiles without XLA: {', '.join(unsupported)} does not "
                      "support it (Keras' random augmentation layers do not); try --augment none.",
                      stacklevel=3)
    return model



class EpochSeeds(keras.callbacks.Callback):
    """Seeds the model's random layers (augmentation, dropout) from `(seed, epoch)`.

    Keras does not save the state of its seed generators in `.keras` files; seeding them
    at each epoch's start makes an epoch's augmentation the same in a resumed run.
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        """Gives every seed generator of the model the state of `(seed, epoch)`."""
        states = [v for v in self.model.variables if "seed_generator_state" in v.path]
        for index, state in enumerate(states):
            value = (self.seed * 1_000_003 + epoch * 7_919 + index) % 2**31
            state.assign(keras.ops.convert_to_tensor([value, 0], dtype=state.dtype))
