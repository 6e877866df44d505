"""Input pipelines: `load(name, split, ...)` returns a batched `tf.data.Dataset` and its info.

Datasets yield `(raw pixels in [0, 255], integer label)`; the model's own in-graph
preprocessing does the normalization.
"""

from kerasarch.data.core import DatasetInfo, load
from kerasarch.data.digits import load_digits

__all__ = ["DatasetInfo", "load", "load_digits"]
