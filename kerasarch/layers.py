"""The few custom layers kerasarch needs, each registered serializable.

Keras has no layer for a per-channel affine normalization with channel reordering, nor for
the others here; each says what it adds. The augmentation layers are in `kerasarch.augment`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

PACKAGE = "kerasarch"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Normalize(keras.layers.Layer):
    """Normalizes raw pixels: `(x[..., order] - mean) / std`, with constants in pixel units.

    Accepts uint8 or float input, so a model that starts with this layer takes raw images of
    either type. The arithmetic is done in float32 (float64 under a float64 policy) whatever
    the dtype policy, and only the result is cast to the layer's compute dtype: under
    `mixed_bfloat16` the input is not autocast to bfloat16 on the way in, so neither the
    pixels nor the constants round (103.939 would become 104); only the output does, once.

    Args:
        mean: Per-channel mean (after reordering), or one value for all channels.
        std: Per-channel standard deviation, or one value for all channels.
        reverse_channels: Reverse the channel axis first (RGB to BGR, as caffe weights want).
        **kwargs: Base layer arguments (`name`, `dtype`).
    """

    def __init__(
        self,
        mean: Sequence[float] = (0.0,),
        std: Sequence[float] = (1.0,),
        reverse_channels: bool = False,
        **kwargs: Any,
    ):
        # autocast=False: Keras would otherwise cast float inputs to the compute dtype
        # (bfloat16 under mixed precision) before `call` sees them.
        kwargs["autocast"] = False
        super().__init__(**kwargs)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        if any(s <= 0 for s in self.std):
            raise ValueError(f"Normalize: every `std` must be > 0, received {self.std}.")
        self.reverse_channels = bool(reverse_channels)

    def build(self, input_shape):
        channels = input_shape[-1]
        for arg, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, channels):
                raise ValueError(
                    f"Normalize: `{arg}` has {len(values)} values but the input has "
                    f"{channels} channels (input shape {input_shape})."
                )

    def call(self, inputs):
        dtype = "float64" if self.compute_dtype == "float64" else "float32"
        x = ops.cast(inputs, dtype)
        if self.reverse_channels:
            x = ops.flip(x, axis=-1)
        x = x - ops.convert_to_tensor(self.mean, dtype=dtype)
        if any(s != 1.0 for s in self.std):
            x = x / ops.convert_to_tensor(self.std, dtype=dtype)
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            mean=list(self.mean), std=list(self.std), reverse_channels=self.reverse_channels
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class TrainingOnly(keras.layers.Layer):
    """Runs the wrapped layer in training and passes inputs through unchanged otherwise.

    Keras' random augmentation layers default to `training=True` when called without a
    training flag, so `model(images)` would augment; the contract says augmentation is
    inert at inference, whichever way the model is called. Wrapped, it runs only when
    Keras passes `training=True` (`fit`, `train_step`, or an explicit flag).

    The presets (`kerasarch.preprocessing.augmentation_layer`) compute in float32 under any
    policy, so raw pixels reach the normalization unrounded in training too.

    Args:
        layer: The augmentation layer (or `keras.Sequential` of layers).
        **kwargs: Base layer arguments.
    """

    def __init__(self, layer: keras.layers.Layer, **kwargs: Any):
        # A float32 policy and no autocast: under mixed precision Keras would otherwise cast
        # the raw pixels to bfloat16 here, before the normalization that follows computes in
        # float32 (see `Normalize`); at inference the input passes through untouched.
        kwargs["autocast"] = False
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)

    def call(self, inputs, training=False):
        if training:
            return self.layer(inputs, training=True)
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["layer"] = keras.saving.serialize_keras_object(self.layer)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)


@keras.saving.register_keras_serializable(package=PACKAGE)
class StandardizedConv2D(keras.layers.Conv2D):
    """`Conv2D` whose kernel is standardized per output channel before every use.

    Weight Standardization (Qiao et al., 2019), as BiT uses it: the effective kernel is
    `(w - mean(w)) / sqrt(var(w) + epsilon)`, the moments taken over height, width and
    input channels of each output channel (biased variance). The stored kernel stays the
    trainable variable; only the public `convolution_op` hook is overridden.

    Args:
        *args: `keras.layers.Conv2D` arguments.
        ws_epsilon: Added to the variance. BiT's own code uses 1e-10 (PyTorch and JAX
            releases), timm 1e-8 and the Weight Standardization paper's code 1e-5; the
            default follows BiT so that its published weights reproduce its outputs.
        **kwargs: `keras.layers.Conv2D` keyword arguments.
    """

    def __init__(self, *args: Any, ws_epsilon: float = 1e-10, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.ws_epsilon = float(ws_epsilon)

    def standardized_kernel(self, kernel=None):
        """The kernel the convolution actually uses (zero mean, unit variance per filter)."""
        kernel = self.kernel if kernel is None else kernel
        kernel = ops.cast(kernel, "float32")  # moments in float32 under mixed precision
        mean = ops.mean(kernel, axis=(0, 1, 2), keepdims=True)
        var = ops.var(kernel, axis=(0, 1, 2), keepdims=True)
        return (kernel - mean) / ops.sqrt(var + self.ws_epsilon)

    def convolution_op(self, inputs, kernel):
        kernel = ops.cast(self.standardized_kernel(kernel), self.compute_dtype)
        return super().convolution_op(inputs, kernel)

    def get_config(self):
        config = super().get_config()
        config["ws_epsilon"] = self.ws_epsilon
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class StochasticDepth(keras.layers.Layer):
    """Drops a residual branch for a random subset of the batch in training.

    Stochastic depth (Huang et al., 2016) in its per-sample form ("drop path"): each
    sample's branch is zeroed with probability `rate` and the survivors are scaled by
    `1 / (1 - rate)`, so the expected output is unchanged and inference is the identity.

    Args:
        rate: Probability of dropping the branch, in [0, 1).
        seed: Seed of the layer's random stream.
        **kwargs: Base layer arguments.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"StochasticDepth: `rate` must be in [0, 1), received {rate}.")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        batch = ops.shape(inputs)[0]
        shape = (batch,) + (1,) * (len(inputs.shape) - 1)
        keep = 1.0 - self.rate
        draw = keras.random.uniform(shape, seed=self.seed_generator, dtype=self.compute_dtype)
        mask = ops.cast(draw < keep, self.compute_dtype)
        return inputs * mask / keep

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class AdaptiveAveragePooling2D(keras.layers.Layer):
    """Average-pools a `(batch, height, width, channels)` map to a fixed `output_size` grid.

    Output cell `i` of an axis of length `n` averages input rows `floor(i * n / out)` to
    `ceil((i + 1) * n / out) - 1`, as torchvision's `AdaptiveAvgPool2d` does, written as two
    small averaging matrices. Unlike `keras.layers.AdaptiveAveragePooling2D` (Keras 3.15),
    it accepts a map smaller than the grid (a 1x1 map is repeated, a 2x2 map mostly
    repeated) and height and width unknown until the call. A map already of the grid's size
    passes through unchanged.

    Args:
        output_size: Output height and width, or one value for both.
        **kwargs: Base layer arguments.
    """

    def __init__(self, output_size: int | Sequence[int], **kwargs: Any):
        super().__init__(**kwargs)
        size = (output_size, output_size) if isinstance(output_size, int) else output_size
        self.output_size = tuple(int(s) for s in size)
        if len(self.output_size) != 2 or min(self.output_size) < 1:
            raise ValueError(
                f"AdaptiveAveragePooling2D: `output_size` must be one or two integers >= 1, "
                f"received {output_size!r}."
            )

    def _averaging_matrix(self, size_in, size_out: int):
        """`(size_out, size_in)` matrix whose row `i` averages output cell `i`'s inputs."""
        i = ops.arange(size_out, dtype="int32")
        start = ops.expand_dims((i * size_in) // size_out, 1)
        end = ops.expand_dims(((i + 1) * size_in + size_out - 1) // size_out, 1)
        j = ops.expand_dims(ops.arange(size_in, dtype="int32"), 0)
        inside = ops.cast(ops.logical_and(j >= start, j < end), self.compute_dtype)
        return inside / ops.cast(end - start, self.compute_dtype)

    def call(self, inputs):
        height, width = inputs.shape[1], inputs.shape[2]
        if (height, width) == self.output_size:
            return inputs
        shape = ops.shape(inputs)
        rows = self._averaging_matrix(shape[1], self.output_size[0])
        cols = self._averaging_matrix(shape[2], self.output_size[1])
        x = ops.einsum("ph,bhwc->bpwc", rows, inputs)
        return ops.einsum("qw,bpwc->bpqc", cols, x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[3])

    def get_config(self):
        config = super().get_config()
        config["output_size"] = list(self.output_size)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class LayerScale(keras.layers.Layer):
    """Multiplies each channel by a learned scale (Touvron et al., 2021; ConvNeXt).

    Args:
        init_value: Initial value of every scale (1e-6 in ConvNeXt).
        **kwargs: Base layer arguments.
    """

    def __init__(self, init_value: float = 1e-6, **kwargs: Any):
        super().__init__(**kwargs)
        self.init_value = float(init_value)

    def build(self, input_shape):
        self.gamma = self.add_weight(
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.init_value),
            name="gamma",
        )

    def call(self, inputs):
        return inputs * ops.cast(self.gamma, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["init_value"] = self.init_value
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class FoldedBatchNorm(keras.layers.Layer):
    """Stands where a BatchNormalization was folded into the convolution before it.

    Passes its input through (TensorFlow's graph optimizer removes it). It accepts the
    arguments a BatchNormalization is called with (`training`, `mask`), so a model's graph
    can be cloned with this layer in the BatchNorm's place and keep its layer names.
    """

    def call(self, inputs, training=None, mask=None):
        """Returns `inputs` unchanged."""
        del training, mask
        return inputs

    def compute_output_shape(self, input_shape):
        """The input's shape."""
        return input_shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalization across channels (Krizhevsky et al. 2012), as caffe's LRN.

    `x / (bias + alpha / size * sum of x^2 over size neighbouring channels) ** beta`, the
    window centred on each channel and cut at the ends (GoogLeNet's stem uses it). Keras
    has no such layer; `tf.nn.local_response_normalization` has it without the division
    by `size` and only for TensorFlow, so it is written here with `keras.ops`. It computes
    in float32 (the squares overflow float16) and returns the input's dtype.

    Args:
        size: Channels in the window (odd).
        alpha: Scale of the sum of squares (caffe's convention: divided by `size`).
        beta: Exponent.
        bias: Additive constant (caffe's `k`).
        **kwargs: Base layer arguments.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0,
                 **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise ValueError(
                f"Invalid value for argument `size`: {size!r}. Expected an odd integer >= 1."
            )
        self.size, self.alpha, self.beta, self.bias = size, float(alpha), float(beta), float(bias)

    def call(self, inputs):
        """Divides each value by its channel window's response."""
        x = ops.cast(inputs, "float32")
        channels, radius = x.shape[-1], self.size // 2
        squares = ops.pad(ops.square(x), [[0, 0]] * (len(x.shape) - 1) + [[radius, radius]])
        window = squares[..., :channels]
        for shift in range(1, self.size):
            window = window + squares[..., shift:shift + channels]
        scale = ops.power(self.bias + (self.alpha / self.size) * window, self.beta)
        return ops.cast(x / scale, inputs.dtype)

    def compute_output_shape(self, input_shape):
        """The input's shape."""
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """The window and constants, for `.keras` files."""
        return {**super().get_config(), "size": self.size, "alpha": self.alpha,
                "beta": self.beta, "bias": self.bias}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GroupedDepthwiseConv2D(keras.layers.Conv2D):
    """A depthwise convolution stored as a `Conv2D` with one group per channel.

    keras.applications' ConvNeXt writes its depthwise convolutions as `Conv2D(groups=C)`,
    whose kernel is `(kh, kw, 1, C)`; `DepthwiseConv2D` stores the same numbers as
    `(kh, kw, C, 1)`. This layer keeps the `Conv2D` kernel (so those files load by name)
    and computes with the depthwise kernel through the public `convolution_op` hook:
    TensorFlow's grouped convolution on CPU was 5x slower than its depthwise one for
    ConvNeXt-T's 7x7 at 56x56x96 (measured on this project's 2-core machine).

    Args:
        filters: Output channels; equal to the input channels and to `groups`.
        kernel_size: The kernel size.
        **kwargs: `keras.layers.Conv2D` keyword arguments (`groups`, if given, must equal
            `filters`).
    """

    def __init__(self, filters: int, kernel_size: Any, **kwargs: Any):
        groups = kwargs.pop("groups", filters)
        if groups != filters:
            raise ValueError(
                f"GroupedDepthwiseConv2D: `groups` must equal `filters` ({filters}), received {groups}."
            )
        super().__init__(filters, kernel_size, groups=filters, **kwargs)

    def build(self, input_shape):
        if input_shape[-1] != self.filters:
            raise ValueError(
                f"GroupedDepthwiseConv2D: the input has {input_shape[-1]} channels, the layer "
                f"{self.filters} filters; a depthwise convolution needs them equal."
            )
        super().build(input_shape)

    def convolution_op(self, inputs, kernel):
        # (kh, kw, 1, C) -> (kh, kw, C, 1): one axis has size 1, so the order is unchanged.
        depthwise = ops.reshape(kernel, (*self.kernel_size, self.filters, 1))
        return ops.depthwise_conv(
            inputs, depthwise, strides=self.strides, padding=self.padding,
            data_format=self.data_format, dilation_rate=self.dilation_rate,
        )
