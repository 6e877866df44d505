"""Choosing a `tf.distribute` strategy: `--strategy auto|default|mirrored|multiworker|tpu`."""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")


def workers_in_tf_config() -> int:
    """How many workers `$TF_CONFIG` names (0 when it is unset)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    cluster = json.loads(raw).get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _tpu():
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def _local_devices() -> list[str]:
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return [d.name for d in gpus]
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Returns the strategy for `name`.

    `auto` picks, in order: MultiWorkerMirroredStrategy when `$TF_CONFIG` names several
    workers, a TPU when a TPU cluster resolver finds one, MirroredStrategy for more than
    one GPU, the default (one device) strategy otherwise. `mirrored` mirrors over every
    local GPU, or over the logical CPU devices when there is no GPU (how the tests run it).

    Args:
        name: One of `STRATEGIES`.

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        ValueError: For an unknown name, or `tpu` where no TPU is found.
    """
    if name not in STRATEGIES:
        raise ValueError(f"Invalid value for argument `strategy`: {name!r}. Expected one of {STRATEGIES}.")
    if name == "auto":
        if workers_in_tf_config() > 1:
            name = "multiworker"
        else:
            try:
                return _tpu()
            except (ValueError, RuntimeError, tf.errors.OpError):
                pass
            name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=_local_devices())
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        return _tpu()
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise ValueError(f"--strategy tpu: no TPU found ({error}).") from error


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run folder (the chief, or worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )
