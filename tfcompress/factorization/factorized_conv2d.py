"""`FactorizedConv2D`: a Conv2D as two (spatial) or three (channel, Tucker-2) smaller ones."""

from __future__ import annotations

import keras
import numpy as np

from tfcompress.factorization.decompose import (
    channel_factors,
    channel_kernel,
    channel_spectra,
    spatial_factors,
    spatial_kernel,
    spatial_matrix,
)
from tfcompress.factorization.svd import check_energy, check_method, energy_rank, singular_values
from tfcompress.factorization.validation import check_rank_choice, int_pair, positive_int

SCHEMES = ("spatial", "channel")
PADDINGS = ("valid", "same")
# Conv2D arguments a FactorizedConv2D takes over unchanged.
_SHARED_ARGUMENTS = (
    "name",
    "trainable",
    "dtype",
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "dilation_rate",
    "activation",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
)


def conv_unsupported(layer: keras.layers.Layer) -> str | None:
    """Why `layer` cannot be turned into a FactorizedConv2D, or None when it can."""
    if type(layer) is not keras.layers.Conv2D:  # a subclass may compute something else
        return f"it is a {type(layer).__name__}, not a Conv2D layer"
    if not layer.built:
        return "it is not built"
    config = layer.get_config()
    if config["groups"] != 1:
        return f"it is a grouped convolution (groups={config['groups']})"
    if config["data_format"] != "channels_last":
        return f"it is {config['data_format']} (only channels_last is supported)"
    return None


def max_ranks(scheme: str, kernel_shape: tuple[int, int, int, int]) -> tuple[int, ...]:
    """The largest ranks of a scheme: `(min(kh * in, kw * out),)` or `(in, out)`."""
    kh, kw, cin, cout = kernel_shape
    return (min(kh * cin, kw * cout),) if scheme == "spatial" else (cin, cout)


@keras.saving.register_keras_serializable(package="tfcompress")
class FactorizedConv2D(keras.layers.Layer):
    """A 2-D convolution computed as a sequence of smaller convolutions (channels last).

    Two schemes, each initialisable from a trained Conv2D with `from_conv2d`
    (see `tfcompress.factorization.decompose` for the decompositions):

    * `"spatial"` (Jaderberg et al. 2014): a `kh x 1` convolution to `rank`
      channels, then a `1 x kw` one to `filters`, with the bias and the
      activation: `rank * (kh * in + kw * filters)` weights. The vertical
      convolution takes the strides and dilation along the height, the
      horizontal one along the width. In a `.tflite`: two CONV_2D ops.
    * `"channel"` (Tucker-2): a 1x1 convolution down to `r_in` channels, a
      `kh x kw` one (strides, padding, dilation) to `r_out`, and a 1x1 up to
      `filters` with the bias and the activation: `in * r_in + kh * kw * r_in *
      r_out + r_out * filters` weights. `rank` is `r_in = r_out` or a pair
      `(r_in, r_out)`. In a `.tflite`: three CONV_2D ops.

    A ReLU/ReLU6 activation is fused into the last CONV_2D; the converter gives
    the inner CONV_2D ops zero biases (`rank`, or `r_in + r_out`, more
    parameters in the file than in Keras). For int8 QAT,
    `tfcompress.quantize_model` splits the layer into the Conv2D layers of
    `to_layers()`, so every tensor between them gets a quantization range.

    Args:
        filters: Output channels.
        kernel_size: `kh x kw`, an int or a pair.
        rank: Spatial: 1 to `min(kh * in, kw * filters)`. Channel: an int or a
            pair `(r_in, r_out)`, with `r_in <= in` and `r_out <= filters`.
        scheme: `"spatial"` or `"channel"`.
        strides: An int or a pair.
        padding: `"valid"` or `"same"`.
        dilation_rate: An int or a pair.
        activation: Activation applied to the output (name or callable).
        use_bias: Whether to add a bias.
        kernel_initializer: Initializer of every factor kernel.
        bias_initializer: Initializer of the bias.
        kernel_regularizer: Regularizer of every factor kernel.
        bias_regularizer: Regularizer of the bias.
        activity_regularizer: Regularizer of the output.
        kernel_constraint: Constraint on every factor kernel.
        bias_constraint: Constraint on the bias.
        **kwargs: Base layer arguments (`name`, `dtype`, `trainable`).

    Input shape:
        `(batch, height, width, in)`.

    Output shape:
        `(batch, new_height, new_width, filters)`, as Conv2D's.

    Example:
        >>> from tfcompress.factorization import FactorizedConv2D
        >>> layer = FactorizedConv2D(16, 3, rank=4, scheme="spatial", padding="same")
        >>> tuple(layer(np.ones((1, 8, 8, 3))).shape)
        (1, 8, 8, 16)
        >>> model = tfcompress.models.small_cnn()
        >>> small = FactorizedConv2D.from_conv2d(model.get_layer("conv2"), rank=(8, 16),
        ...                                      scheme="channel")
        >>> small.filters, small.count_params() < model.get_layer("conv2").count_params()
        (64, True)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        rank: int | tuple[int, int],
        scheme: str = "spatial",
        strides: int | tuple[int, int] = 1,
        padding: str = "valid",
        dilation_rate: int | tuple[int, int] = 1,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        where = f"FactorizedConv2D {self.name!r}: "
        if scheme not in SCHEMES:
            raise ValueError(
                f"{where}`scheme` must be one of {SCHEMES}. Received: scheme={scheme!r}"
            )
        if padding not in PADDINGS:
            raise ValueError(
                f"{where}`padding` must be one of {PADDINGS}. Received: padding={padding!r}"
            )
        self.scheme = scheme
        self.filters = positive_int(filters, "filters", where)
        self.kernel_size = int_pair(kernel_size, "kernel_size", where)
        if scheme == "spatial" and isinstance(rank, (list, tuple)):
            raise ValueError(
                f"{where}the spatial scheme has one rank (an integer). Received: rank={rank!r}"
            )
        self.ranks = (
            (positive_int(rank, "rank", where),)
            if scheme == "spatial"
            else (int_pair(rank, "rank", where))
        )
        self.rank = self.ranks[0] if len(set(self.ranks)) == 1 else self.ranks
        self.strides = int_pair(strides, "strides", where)
        self.padding = padding
        self.dilation_rate = int_pair(dilation_rate, "dilation_rate", where)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _parts(self, cin: int) -> list[dict]:
        """Each convolution in order: its weight name, kernel shape, strides and dilation."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.strides, self.dilation_rate
        if self.scheme == "spatial":
            (rank,) = self.ranks
            return [
                {
                    "name": "vertical_kernel",
                    "shape": (kh, 1, cin, rank),
                    "strides": (sh, 1),
                    "dilation_rate": (dh, 1),
                },
                {
                    "name": "horizontal_kernel",
                    "shape": (1, kw, rank, self.filters),
                    "strides": (1, sw),
                    "dilation_rate": (1, dw),
                },
            ]
        r_in, r_out = self.ranks
        return [
            {
                "name": "down_kernel",
                "shape": (1, 1, cin, r_in),
                "strides": (1, 1),
                "dilation_rate": (1, 1),
            },
            {
                "name": "core_kernel",
                "shape": (kh, kw, r_in, r_out),
                "strides": self.strides,
                "dilation_rate": self.dilation_rate,
            },
            {
                "name": "up_kernel",
                "shape": (1, 1, r_out, self.filters),
                "strides": (1, 1),
                "dilation_rate": (1, 1),
            },
        ]

    def build(self, input_shape):
        cin = input_shape[-1]
        if cin is None:
            raise ValueError(
                f"FactorizedConv2D {self.name!r}: the input channels must be known. "
                f"Received: input_shape={input_shape}"
            )
        limits = max_ranks(self.scheme, (*self.kernel_size, cin, self.filters))
        if any(r > limit for r, limit in zip(self.ranks, limits)):
            bound = (
                f"min(kh * in, kw * filters) = {limits[0]}"
                if self.scheme == "spatial"
                else f"(in, filters) = {limits}"
            )
            raise ValueError(
                f"FactorizedConv2D {self.name!r}: `rank` must be at most {bound} for the "
                f"{self.scheme} scheme. Received: rank={self.rank!r}"
            )
        self.kernels = [
            self.add_weight(
                name=part["name"],
                shape=part["shape"],
                initializer=self.kernel_initializer,
                regularizer=self.kernel_regularizer,
                constraint=self.kernel_constraint,
            )
            for part in self._parts(cin)
        ]
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.filters,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: cin})

    def _padding(self, part: dict) -> str:
        """1x1 convolutions need no padding; the others take the layer's."""
        return "valid" if part["shape"][:2] == (1, 1) else self.padding

    def call(self, inputs):
        x = inputs
        for part, kernel in zip(self._parts(self.kernels[0].shape[2]), self.kernels):
            x = keras.ops.conv(
                x,
                kernel,
                strides=part["strides"],
                padding=self._padding(part),
                dilation_rate=part["dilation_rate"],
            )
        if self.bias is not None:
            x = keras.ops.add(x, self.bias)
        return self.activation(x)

    def compute_output_shape(self, input_shape):
        spatial = []
        for size, k, s, d in zip(
            input_shape[1:3], self.kernel_size, self.strides, self.dilation_rate
        ):
            if size is None:
                spatial.append(None)
            elif self.padding == "same":
                spatial.append(-(-size // s))
            else:
                spatial.append((size - d * (k - 1) - 1) // s + 1)
        return (input_shape[0], *spatial, self.filters)

    def get_config(self) -> dict:
        config = {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "rank": self.rank,
            "scheme": self.scheme,
            "strides": self.strides,
            "padding": self.padding,
            "dilation_rate": self.dilation_rate,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": keras.regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
        }
        return {**super().get_config(), **config}

    def effective_kernel(self) -> np.ndarray:
        """The `[kh, kw, in, filters]` kernel the factor convolutions apply together."""
        factors = [keras.ops.convert_to_numpy(k) for k in self.kernels]
        return spatial_kernel(*factors) if self.scheme == "spatial" else channel_kernel(*factors)

    def to_layers(self) -> list[keras.layers.Layer]:
        """Built Conv2D layers holding the factors (the last one: bias, activation), in sequence.

        They compute what this layer computes; QAT quantizes each on its own.
        """
        shape = self.get_build_config()["input_shape"]
        parts = self._parts(shape[-1])
        layers = []
        for i, (part, kernel) in enumerate(zip(parts, self.kernels)):
            last = i == len(parts) - 1
            conv = keras.layers.Conv2D(
                part["shape"][-1],
                part["shape"][:2],
                strides=part["strides"],
                padding=self._padding(part),
                dilation_rate=part["dilation_rate"],
                activation=self.activation if last else None,
                use_bias=last and self.use_bias,
                name=f"{self.name}_{part['name'].removesuffix('_kernel')}",
                dtype=self.dtype_policy,
            )
            conv.build(shape)
            conv.kernel.assign(kernel)
            if last and self.use_bias:
                conv.bias.assign(self.bias)
            shape = conv.compute_output_shape(shape)
            layers.append(conv)
        return layers

    @classmethod
    def from_conv2d(
        cls,
        layer: keras.layers.Conv2D,
        rank: int | tuple[int, int] | None = None,
        energy: float | None = None,
        scheme: str = "spatial",
        svd: str = "auto",
        seed: int = 0,
    ) -> FactorizedConv2D:
        """A built FactorizedConv2D initialised from a trained Conv2D's kernel.

        Spatial: the truncated SVD of the `[kh * in, kw * out]` matrix, split
        evenly (`sqrt(s)` on each side); its squared error is the sum of the
        discarded squared singular values. Channel: the truncated HOSVD of the
        kernel. Strides, padding, dilation, activation, bias, dtype,
        initializers, regularizers and constraints are taken over.

        Args:
            layer: A built channels-last Conv2D with `groups=1`.
            rank: See the class; at the largest ranks the layer is exact.
            energy: Instead of `rank`: the fraction of the squared singular
                values to keep, in (0, 1]; for the channel scheme, of each
                unfolding's (input channels for `r_in`, output channels for
                `r_out`).
            scheme: `"spatial"` or `"channel"`.
            svd: `"auto"`, `"full"` or `"randomized"` (see `truncated_svd`).
            seed: Seed of the randomized SVD.

        Raises:
            ValueError: An unsupported layer, both or neither of `rank`/`energy`,
                or either out of range.
        """
        where = f"FactorizedConv2D.from_conv2d (layer {getattr(layer, 'name', layer)!r}): "
        reason = conv_unsupported(layer)
        if reason is not None:
            raise ValueError(f"{where}cannot factorize it: {reason}.")
        if scheme not in SCHEMES:
            raise ValueError(
                f"{where}`scheme` must be one of {SCHEMES}. Received: scheme={scheme!r}"
            )
        check_rank_choice(rank, energy, where)
        check_method(svd)
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        if energy is not None:
            check_energy(energy, where)
            spectra = (
                (singular_values(spatial_matrix(kernel)),)
                if scheme == "spatial"
                else channel_spectra(kernel)
            )
            ranks = tuple(energy_rank(s, energy) for s in spectra)
            rank = ranks[0] if scheme == "spatial" else ranks
        config = {k: v for k, v in layer.get_config().items() if k in _SHARED_ARGUMENTS}
        new = cls(rank=rank, scheme=scheme, **config)
        new.build(layer.get_build_config()["input_shape"])  # checks the ranks against the shape
        if scheme == "spatial":
            factors = spatial_factors(kernel, new.ranks[0], svd, seed)
        else:
            factors = channel_factors(kernel, new.ranks, svd, seed)
        for variable, value in zip(new.kernels, factors):
            variable.assign(value.astype(kernel.dtype))
        if layer.use_bias:
            new.bias.assign(layer.bias)
        return new
