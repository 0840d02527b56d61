"""`FactorizedDense`: a Dense layer with a rank-r kernel, `act((x @ U) @ V + b)`."""

from __future__ import annotations

import keras
import numpy as np

from tfcompress.factorization.svd import (
    balanced_factors,
    check_energy,
    check_method,
    energy_rank,
    singular_values,
)
from tfcompress.factorization.validation import check_rank_choice, positive_int

# Dense arguments a FactorizedDense takes over unchanged.
_SHARED_ARGUMENTS = (
    "name",
    "trainable",
    "dtype",
    "units",
    "activation",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "bias_constraint",
)


def dense_unsupported(layer: keras.layers.Layer) -> str | None:
    """Why `layer` cannot be turned into a FactorizedDense, or None when it can."""
    if type(layer) is not keras.layers.Dense:  # a subclass may compute something else
        return f"it is a {type(layer).__name__}, not a Dense layer"
    if not layer.built:
        return "it is not built"
    if layer.quantization_mode is not None:
        return f"its kernel is quantized ({layer.quantization_mode})"
    return None


@keras.saving.register_keras_serializable(package="tfcompress")
class FactorizedDense(keras.layers.Layer):
    """A Dense layer whose `[in, units]` kernel is the product `U [in, rank] @ V [rank, units]`.

    Computes `activation((x @ U) @ V + bias)`: `rank * (in + units)` weights and
    multiply-accumulates instead of `in * units`. It takes Dense's arguments plus
    `rank`; the kernel initializer, regularizer and constraint apply to U and V
    alike. `FactorizedDense.from_dense` initialises U and V from the truncated
    SVD of a trained Dense kernel (the best rank-r approximation).

    Exported to `.tflite` it becomes two FULLY_CONNECTED ops: `[in] -> [rank]`
    without bias, then `[rank] -> [units]` with the bias and a fused ReLU/ReLU6.
    For int8 QAT, `tfcompress.quantize_model` splits it into the two Dense
    layers of `to_layers()` so that the `rank`-wide tensor between them gets a
    quantization range of its own.

    Args:
        units: Output features.
        rank: Inner dimension of the product, 1 to `min(in, units)`.
        activation: Activation applied to the output (name or callable).
        use_bias: Whether to add a bias.
        kernel_initializer: Initializer of U and V.
        bias_initializer: Initializer of the bias.
        kernel_regularizer: Regularizer of U and V.
        bias_regularizer: Regularizer of the bias.
        activity_regularizer: Regularizer of the output.
        kernel_constraint: Constraint on U and V.
        bias_constraint: Constraint on the bias.
        **kwargs: Base layer arguments (`name`, `dtype`, `trainable`).

    Input shape:
        `(batch, ..., in)`.

    Output shape:
        `(batch, ..., units)`.

    Example:
        >>> from tfcompress.factorization import FactorizedDense
        >>> layer = FactorizedDense(10, rank=4, activation="relu")
        >>> tuple(layer(np.ones((2, 32))).shape)
        (2, 10)
        >>> model = tfcompress.models.lenet_300_100()
        >>> small = FactorizedDense.from_dense(model.get_layer("fc1"), energy=0.9)
        >>> small.units, small.rank < 300
        (300, True)
    """

    def __init__(
        self,
        units: int,
        rank: int,
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
        where = f"FactorizedDense {self.name!r}: "
        self.units = positive_int(units, "units", where)
        self.rank = positive_int(rank, "rank", where)
        if self.rank > self.units:
            raise ValueError(
                f"{where}`rank` must be at most min(input features, units); units={self.units}. "
                f"Received: rank={rank!r}"
            )
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = True

    def build(self, input_shape):
        fan_in = input_shape[-1]
        if fan_in is None:
            raise ValueError(
                f"FactorizedDense {self.name!r}: the last input dimension must be known. "
                f"Received: input_shape={input_shape}"
            )
        if self.rank > fan_in:
            raise ValueError(
                f"FactorizedDense {self.name!r}: `rank` must be at most min(input features, "
                f"units) = {min(fan_in, self.units)}. Received: rank={self.rank}"
            )
        factor = {
            "initializer": self.kernel_initializer,
            "regularizer": self.kernel_regularizer,
            "constraint": self.kernel_constraint,
        }
        self.u = self.add_weight(name="u", shape=(fan_in, self.rank), **factor)
        self.v = self.add_weight(name="v", shape=(self.rank, self.units), **factor)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: fan_in})

    def call(self, inputs):
        outputs = keras.ops.matmul(keras.ops.matmul(inputs, self.u), self.v)
        if self.bias is not None:
            outputs = keras.ops.add(outputs, self.bias)
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict:
        config = {
            "units": self.units,
            "rank": self.rank,
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
        """The `[in, units]` kernel `U @ V` this layer applies."""
        return keras.ops.convert_to_numpy(self.u) @ keras.ops.convert_to_numpy(self.v)

    def to_layers(self) -> list[keras.layers.Layer]:
        """Two built Dense layers holding U, then V (and the bias, activation), in sequence.

        They compute what this layer computes; QAT quantizes each on its own.
        """
        input_shape = self.get_build_config()["input_shape"]
        first = keras.layers.Dense(
            self.rank, use_bias=False, name=f"{self.name}_u", dtype=self.dtype_policy
        )
        second = keras.layers.Dense(
            self.units,
            activation=self.activation,
            use_bias=self.use_bias,
            name=f"{self.name}_v",
            dtype=self.dtype_policy,
        )
        first.build(input_shape)
        first.kernel.assign(self.u)
        second.build(first.compute_output_shape(input_shape))
        second.kernel.assign(self.v)
        if self.use_bias:
            second.bias.assign(self.bias)
        return [first, second]

    @classmethod
    def from_dense(
        cls,
        layer: keras.layers.Dense,
        rank: int | None = None,
        energy: float | None = None,
        svd: str = "auto",
        seed: int = 0,
    ) -> FactorizedDense:
        """A built FactorizedDense whose `U @ V` is the truncated SVD of `layer`'s kernel.

        With singular values `s` of the kernel, `U = u_r * sqrt(s_r)` and
        `V = sqrt(s_r) * v_r^T`; the squared Frobenius error of the kernel is
        the sum of the discarded `s_i^2`. Name, activation, bias, dtype,
        initializers, regularizers and constraints are taken over.

        Args:
            layer: A built Dense layer.
            rank: Rank to keep, 1 to `min(in, units)`.
            energy: Instead of `rank`: keep the smallest rank whose singular
                values hold this fraction of `sum(s^2)`, in (0, 1].
            svd: `"auto"`, `"full"` or `"randomized"` (see `truncated_svd`).
            seed: Seed of the randomized SVD.

        Raises:
            ValueError: Not a built float Dense layer, both or neither of
                `rank`/`energy`, or either out of range.
        """
        where = f"FactorizedDense.from_dense (layer {getattr(layer, 'name', layer)!r}): "
        reason = dense_unsupported(layer)
        if reason is not None:
            raise ValueError(f"{where}cannot factorize it: {reason}.")
        check_rank_choice(rank, energy, where)
        check_method(svd)
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        full = min(kernel.shape)
        if energy is not None:
            rank = energy_rank(singular_values(kernel), check_energy(energy, where))
        elif positive_int(rank, "rank", where) > full:
            raise ValueError(
                f"{where}`rank` must be at most min(input features, units) = {full}. "
                f"Received: rank={rank!r}"
            )
        config = {k: v for k, v in layer.get_config().items() if k in _SHARED_ARGUMENTS}
        new = cls(rank=int(rank), activity_regularizer=layer.activity_regularizer, **config)
        new.build(layer.get_build_config()["input_shape"])
        u, v = balanced_factors(kernel, int(rank), svd, seed)
        new.u.assign(u.astype(kernel.dtype))
        new.v.assign(v.astype(kernel.dtype))
        if layer.use_bias:
            new.bias.assign(layer.bias)
        return new
