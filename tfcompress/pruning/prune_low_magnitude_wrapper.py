"""`PruneLowMagnitude`: the wrapper that holds a layer's pruning masks and step."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfcompress.core.weights import to_matrix
from tfcompress.pruning.constant_sparsity import ConstantSparsity
from tfcompress.pruning.masks import (
    CHANNEL_NORMS,
    POOLING,
    channel_masks,
    check_structure,
    compute_masks,
    structure_problem,
)
from tfcompress.pruning.prunable import is_prunable_layer, prunable_weights
from tfcompress.pruning.schedule import PruningSchedule

# Layers whose output channels (units, filters) channel pruning removes:
# kernel [..., out] and bias [out].
CHANNEL_LAYERS = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)

MISSING_CALLBACK = (
    "Pruning wrappers were trained without the step callback: add "
    "`tfcompress.pruning.UpdatePruningStep()` to the `callbacks` of `fit`."
)


class MaskConstraint(keras.constraints.Constraint):
    """Keeps pruned weights at zero: the optimizer applies it right after each update.

    Keras optimizers apply a variable's `constraint` inside the compiled
    training step, so masking costs no extra call per batch. It wraps the
    constraint the weight already had, if any.
    """

    def __init__(self, mask, inner=None):
        self.mask, self.inner = mask, inner

    def __call__(self, w):
        w = self.inner(w) if self.inner is not None else w
        return keras.ops.multiply(w, keras.ops.cast(self.mask, w.dtype))


IMPORTANCE = ("magnitude", "taylor")


def _taylor_probe(score):
    """Identity on a weight whose gradient adds `|w * dL/dw|` to `score` (first-order Taylor).

    Under a `tf.distribute` strategy with several replicas `dL/dw` is the global batch's:
    the replicas' gradients are summed first (one all-reduce), so every replica adds the
    same score, the one training in one process adds (a sum of the replicas' own
    `|w * g|` would not be: `|a + b| <= |a| + |b|`).
    """

    @tf.custom_gradient
    def probe(w):
        def grad(g):
            context = tf.distribute.get_replica_context()
            total = g
            if context is not None and context.num_replicas_in_sync > 1:
                total = context.all_reduce(tf.distribute.ReduceOp.SUM, g)
            score.assign_add(tf.abs(w * total))
            return g

        return tf.identity(w), grad

    return probe


def default_schedule() -> PruningSchedule:
    """tfmot's default: 50% sparsity from step 0, masks updated every 100 steps."""
    return ConstantSparsity(0.5, begin_step=0)


def _pair(name: str, value, layer_name: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if not (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and v >= 1 for v in value)
    ):
        raise ValueError(
            f"Layer {layer_name!r}: `{name}` must be a pair of positive integers. "
            f"Received: {name}={value!r}"
        )
    return int(value[0]), int(value[1])


@keras.saving.register_keras_serializable(package="tfcompress")
class PruneLowMagnitude(keras.layers.Wrapper):
    """Wraps a layer so that `UpdatePruningStep` can prune its weights during `fit`.

    The wrapper adds, per prunable weight, a `mask` (1 keep, 0 pruned) and a
    `threshold` (the smallest importance kept), and one `pruning_step`. The
    callback advances the step and recomputes masks when the schedule says so;
    a `MaskConstraint` on each pruned variable makes the optimizer multiply it
    by its mask right after every update, inside the compiled training step.
    So the forward pass always sees pruned weights and `call` stays a plain
    call of the wrapped layer. Masks and step are weights: they save and load
    with the model.

    Structure, on each weight viewed as `[out, in]` (see `tfcompress.pruning.masks`):
    `block_size=(16, 4)` prunes tiles of 16 output channels by 4 inputs. For a
    Dense kernel `[in, out]` a tile is `kernel[i:i+4, o:o+16]`; for a Conv2D
    kernel `[kh, kw, in, out]` the inputs are the flattened `(kh, kw, in)`
    window, so a tile spans 16 filters and 4 consecutive `(kh, kw, in)`
    positions, matching the rows of TFLite's FULLY_CONNECTED and CONV_2D
    weights. `sparsity_m_by_n=(2, 4)` keeps 2 of every 4 consecutive inputs.

    Args:
        layer: The layer to prune (a built-in one, or one implementing
            `PrunableLayer` or registered with `register_prunable`).
        pruning_schedule: A `PruningSchedule` (default: 50% from step 0).
        block_size: `(out, in)` tile pruned as a whole; `(1, 1)` is unstructured.
        block_pooling_type: `"AVG"` or `"MAX"`: a tile's score from its elements.
        sparsity_m_by_n: `(n, m)` with `n < m`, or None. The schedule then only
            decides when; the sparsity is `1 - n / m`.
        pruning_group: Wrappers sharing a group name share one magnitude
            threshold (global pruning); None prunes this layer on its own.
        importance: `"magnitude"` ranks weights by `|w|`; `"taylor"` by the
            first-order Taylor estimate of the loss change, `|w * dL/dw|`
            summed over the training batches since the last mask update (the
            first update, with no gradients seen yet, uses magnitude). Taylor
            needs a layer whose variables are all trainable (Dense, ConvND...).
        channel_norm: `"L1"` or `"L2"` prunes whole output channels (Dense
            units, Conv filters) of the lowest norm, bias included, so
            `tfcompress.pruning.shrink` can remove them; None prunes weights.
        strict: True: a prunable weight that `block_size` or `sparsity_m_by_n`
            does not fit raises when the layer is built. False: such weights
            stay dense and `dense_weights` says why (a SeparableConv2D's
            depthwise kernel under 16x4 blocks, while its pointwise kernel is
            pruned); the structure must still fit one weight at least.
            `prune_low_magnitude` on a whole model uses False.
        **kwargs: Base layer arguments.

    Attributes:
        dense_weights: Once built, `{weight name: reason}` for the prunable
            weights left dense (`strict=False` only).

    Example:
        >>> from tfcompress.pruning import ConstantSparsity, PruneLowMagnitude
        >>> dense = PruneLowMagnitude(keras.layers.Dense(64, name="fc"), ConstantSparsity(0.75, 0),
        ...                           block_size=(16, 4))
        >>> model = keras.Sequential([keras.Input((32,)), dense], name="mlp")
        >>> model.compile("sgd", "mse")
        >>> history = model.fit(np.ones((8, 32)), np.zeros((8, 64)), epochs=1, verbose=0,
        ...                     callbacks=[tfcompress.UpdatePruningStep()])
        >>> tfcompress.get_sparsity(model)
        {'mlp/prune_low_magnitude_fc/fc/kernel': 0.75}
    """

    def __init__(
        self,
        layer: keras.layers.Layer,
        pruning_schedule: PruningSchedule | None = None,
        block_size: tuple[int, int] = (1, 1),
        block_pooling_type: str = "AVG",
        sparsity_m_by_n: tuple[int, int] | None = None,
        pruning_group: str | None = None,
        channel_norm: str | None = None,
        importance: str = "magnitude",
        strict: bool = True,
        **kwargs,
    ):
        if isinstance(layer, PruneLowMagnitude):
            raise ValueError(
                f"Layer {layer.name!r} is already wrapped for pruning; call "
                "`strip_pruning` first to prune it again."
            )
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(
                f"`layer` must be a keras.layers.Layer. Received: type {type(layer).__name__}"
            )
        if not is_prunable_layer(layer):
            raise ValueError(
                f"Layer {layer.name!r} of type {type(layer).__name__} is not supported by "
                "pruning. Make the class implement `tfcompress.pruning.PrunableLayer` "
                "(`get_prunable_weights()`), or register it with "
                f"`tfcompress.pruning.register_prunable({type(layer).__name__}, fn)`."
            )
        kwargs.setdefault("name", f"prune_low_magnitude_{layer.name}")
        super().__init__(layer, **kwargs)
        if pruning_schedule is None:
            pruning_schedule = default_schedule()
        if isinstance(pruning_schedule, dict):
            pruning_schedule = keras.saving.deserialize_keras_object(pruning_schedule)
        if not isinstance(pruning_schedule, PruningSchedule):
            raise TypeError(
                f"Layer {layer.name!r}: `pruning_schedule` must be a PruningSchedule. "
                f"Received: {pruning_schedule!r}"
            )
        self.pruning_schedule = pruning_schedule
        self.block_size = _pair("block_size", block_size, layer.name)
        if block_pooling_type not in POOLING:
            raise ValueError(
                f"Layer {layer.name!r}: `block_pooling_type` must be one of {POOLING}. "
                f"Received: block_pooling_type={block_pooling_type!r}"
            )
        self.block_pooling_type = block_pooling_type
        self.sparsity_m_by_n = _pair("sparsity_m_by_n", sparsity_m_by_n, layer.name)
        if self.sparsity_m_by_n is not None:
            n, m = self.sparsity_m_by_n
            if n >= m:
                raise ValueError(
                    f"Layer {layer.name!r}: N:M sparsity needs N < M. "
                    f"Received: sparsity_m_by_n={tuple(sparsity_m_by_n)}"
                )
            if self.block_size != (1, 1):
                raise ValueError(
                    f"Layer {layer.name!r}: use either `block_size` or `sparsity_m_by_n`. "
                    f"Received: block_size={self.block_size}, "
                    f"sparsity_m_by_n={self.sparsity_m_by_n}"
                )
        self.pruning_group = pruning_group
        if channel_norm is not None:
            if channel_norm not in CHANNEL_NORMS:
                raise ValueError(
                    f"Layer {layer.name!r}: `channel_norm` must be one of {CHANNEL_NORMS} or None. "
                    f"Received: channel_norm={channel_norm!r}"
                )
            if not isinstance(layer, CHANNEL_LAYERS):
                raise ValueError(
                    f"Layer {layer.name!r}: channel pruning supports "
                    f"{[c.__name__ for c in CHANNEL_LAYERS]}. Received: {type(layer).__name__}"
                )
            if self.block_size != (1, 1) or self.sparsity_m_by_n is not None:
                raise ValueError(
                    f"Layer {layer.name!r}: `channel_norm` prunes whole channels; do not combine "
                    f"it with block_size={self.block_size} or sparsity_m_by_n="
                    f"{self.sparsity_m_by_n}."
                )
        self.channel_norm = channel_norm
        if importance not in IMPORTANCE:
            raise ValueError(
                f"Layer {layer.name!r}: `importance` must be one of {IMPORTANCE}. "
                f"Received: importance={importance!r}"
            )
        self.importance_kind = importance
        if not isinstance(strict, bool):
            raise TypeError(
                f"Layer {layer.name!r}: `strict` must be True or False. Received: strict={strict!r}"
            )
        self.strict = strict
        self.dense_weights: dict[str, str] = {}

    def build(self, input_shape=None):
        if not self.layer.built:
            try:
                self.layer.build(input_shape)
            except TypeError as err:  # e.g. MultiHeadAttention.build(query_shape, value_shape)
                raise ValueError(
                    f"Layer {self.layer.name!r} cannot be built from one input shape "
                    f"({err}); build it before wrapping it for pruning."
                ) from err
        self._prunable = self._fitting(prunable_weights(self.layer))
        self.masks, self.thresholds = [], []
        for i, weight in enumerate(self._prunable):
            self.masks.append(
                self.add_weight(
                    name=f"mask_{i}",
                    shape=weight.shape,
                    initializer="ones",
                    trainable=False,
                    dtype="float32",
                )
            )
            self.thresholds.append(
                self.add_weight(
                    name=f"threshold_{i}",
                    shape=(),
                    initializer="zeros",
                    trainable=False,
                    dtype="float32",
                )
            )
        self.bias_mask = None
        if self.channel_norm is not None and self.layer.use_bias:
            self.bias_mask = self.add_weight(
                name="bias_mask",
                shape=self.layer.bias.shape,
                initializer="ones",
                trainable=False,
                dtype="float32",
            )
        self.pruning_step = self.add_weight(
            name="pruning_step",
            shape=(),
            dtype="int64",
            trainable=False,
            initializer=keras.initializers.Constant(-1),
        )
        self.scores = []
        if self.importance_kind == "taylor":
            if self.layer.non_trainable_variables:
                raise ValueError(
                    f"Layer {self.layer.name!r}: importance='taylor' needs a layer whose "
                    "variables are all trainable; it has non-trainable "
                    f"{[v.name for v in self.layer.non_trainable_variables]}."
                )
            self.scores = [
                self.add_weight(
                    name=f"taylor_score_{i}",
                    shape=w.shape,
                    initializer="zeros",
                    trainable=False,
                    dtype="float32",
                    # The same on every replica (see `_taylor_probe`): no reduction.
                    aggregation="only_first_replica",
                )
                for i, w in enumerate(self._prunable)
            ]
        for weight, mask in self._masked_pairs():
            weight.constraint = MaskConstraint(mask, weight.constraint)
        self.built = True

    def _fitting(self, weights: list) -> list:
        """The weights the structure fits; the others raise (strict) or stay dense."""
        where = f"Layer {self.layer.name!r}"
        if self.strict:
            for weight in weights:
                check_structure(tuple(weight.shape), self.block_size, self.sparsity_m_by_n, where)
            return list(weights)
        fitting = []
        for weight in weights:
            problem = structure_problem(tuple(weight.shape), self.block_size, self.sparsity_m_by_n)
            if problem is None:
                fitting.append(weight)
            else:
                self.dense_weights[weight.name] = problem
        if weights and not fitting:
            reasons = "; ".join(f"{n}: {p}" for n, p in self.dense_weights.items())
            raise ValueError(
                f"{where}: the structure fits none of its prunable weights ({reasons}). "
                "Leave this layer unwrapped or pick a block (or N:M pattern) that fits it."
            )
        return fitting

    def _masked_pairs(self) -> list:
        pairs = list(zip(self._prunable, self.masks))
        if self.bias_mask is not None:
            pairs.append((self.layer.bias, self.bias_mask))
        return pairs

    def remove_constraints(self) -> None:
        """Gives each pruned variable back the constraint it had before wrapping."""
        for weight, _ in self._masked_pairs():
            if isinstance(weight.constraint, MaskConstraint):
                weight.constraint = weight.constraint.inner

    def call(self, inputs, training=None, **kwargs):
        if training and self._prunable:
            tf.debugging.assert_non_negative(self.pruning_step.value, message=MISSING_CALLBACK)
        if not (training and self.scores):
            return self.layer(inputs, **kwargs)
        # Taylor: run the layer on its weights passed through gradient probes.
        probes = {id(w): _taylor_probe(s) for w, s in zip(self._prunable, self.scores)}
        values = [
            probes[id(v)](v.value) if id(v) in probes else v.value
            for v in self.layer.trainable_variables
        ]
        outputs, _ = self.layer.stateless_call(values, [], inputs, **kwargs)
        return outputs

    @property
    def prunable_weights(self) -> list:
        """The wrapped layer's weights that pruning acts on."""
        return list(self._prunable)

    def importance(self) -> list[np.ndarray]:
        """Score of each prunable weight: `|w|`, or the accumulated Taylor scores."""
        if self.scores:
            taylor = [keras.ops.convert_to_numpy(s) for s in self.scores]
            if any(t.any() for t in taylor):
                return taylor
        return [np.abs(keras.ops.convert_to_numpy(w)) for w in self._prunable]

    def set_masks(self, masks: list[np.ndarray], scores: list[np.ndarray]) -> None:
        """Stores new masks, the smallest kept score as threshold, and applies the masks."""
        for mask_var, threshold_var, mask, score in zip(self.masks, self.thresholds, masks, scores):
            mask_var.assign(mask)
            kept = score[mask > 0]
            threshold_var.assign(float(kept.min()) if kept.size else 0.0)
        if self.bias_mask is not None:
            self.bias_mask.assign(to_matrix(masks[0]).max(axis=1))
        for score in self.scores:  # Taylor scores restart after each mask update
            score.assign(keras.ops.zeros_like(score))
        self.apply_masks()

    def update_masks(self, sparsity: float) -> None:
        """Recomputes this layer's masks on its own: each weight reaches `sparsity`."""
        scores = self.importance()
        self.set_masks([self.compute([score], sparsity)[0] for score in scores], scores)

    def compute(self, scores: list[np.ndarray], sparsity: float) -> list[np.ndarray]:
        if self.channel_norm is not None:
            return channel_masks(scores, sparsity, self.channel_norm)
        return compute_masks(
            scores, sparsity, self.block_size, self.block_pooling_type, self.sparsity_m_by_n
        )

    def apply_masks(self) -> None:
        """Multiplies each prunable weight by its mask."""
        for weight, mask in self._masked_pairs():
            weight.assign(keras.ops.multiply(weight, keras.ops.cast(mask, weight.dtype)))

    def get_config(self) -> dict:
        config = super().get_config()
        return {
            **config,
            "pruning_schedule": keras.saving.serialize_keras_object(self.pruning_schedule),
            "block_size": list(self.block_size),
            "block_pooling_type": self.block_pooling_type,
            "sparsity_m_by_n": None if self.sparsity_m_by_n is None else list(self.sparsity_m_by_n),
            "pruning_group": self.pruning_group,
            "channel_norm": self.channel_norm,
            "importance": self.importance_kind,
            "strict": self.strict,
        }
