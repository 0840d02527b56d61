"""`shrink`: remove pruned channels, making the model physically smaller and faster."""

from __future__ import annotations

import keras
import numpy as np

from tfcompress.core.weights import to_matrix
from tfcompress.pruning.channel_graph import Chain, channel_chains
from tfcompress.pruning.prune import strip_pruning
from tfcompress.pruning.update_pruning_step import collect_wrappers


def _kept_channels(layer: keras.layers.Layer) -> np.ndarray:
    """Output channels with any non-zero weight or bias (at least one is always kept)."""
    alive = (to_matrix(keras.ops.convert_to_numpy(layer.kernel)) != 0).any(axis=1)
    if layer.use_bias:
        alive |= keras.ops.convert_to_numpy(layer.bias) != 0
    return np.flatnonzero(alive) if alive.any() else np.array([0])


def _removed_constants(chain: Chain, keep: np.ndarray) -> np.ndarray:
    """What the consumer receives from the removed channels, as a float array of its input.

    A removed channel leaves the producer as exact zeros; BatchNormalization
    (or an activation with f(0) != 0) can turn that into a constant, which is
    computed here by running the pass-through layers on zeros.
    """
    x = np.zeros((1, *chain.producer.output.shape[1:]), dtype="float32")
    for layer in chain.between:
        x = keras.ops.convert_to_numpy(layer(x, training=False))
    channels = chain.producer.output.shape[-1]
    removed = np.ones(channels, dtype=bool)
    removed[keep] = False
    if x.ndim == 2 and x.shape[-1] != channels:  # after Flatten: channel is the fastest axis
        removed = np.tile(removed, x.shape[-1] // channels)
    return np.where(np.broadcast_to(removed, x.shape), x, 0.0)[0]


def _input_index(chain: Chain, keep: np.ndarray) -> np.ndarray:
    """The consumer's input positions that survive (through Flatten when there is one)."""
    flatten = [layer for layer in chain.between if isinstance(layer, keras.layers.Flatten)]
    if not flatten:
        return keep
    shape = tuple(flatten[0].input.shape[1:])
    return np.arange(int(np.prod(shape))).reshape(shape)[..., keep].ravel()


def _fold(chain: Chain, constants: np.ndarray) -> np.ndarray | None:
    """The consumer's bias change that accounts for constant removed inputs, or None if zero."""
    if not np.any(constants):
        return None
    kernel = keras.ops.convert_to_numpy(chain.consumer.kernel)
    if isinstance(chain.consumer, keras.layers.Dense):
        return constants.reshape(-1) @ kernel.reshape(constants.size, -1)
    if chain.consumer.padding != "valid":
        raise ValueError(
            f"shrink: removing channels of {chain.producer.name!r} leaves constant inputs of "
            f"{chain.consumer.name!r} (through {[layer.name for layer in chain.between]}), which "
            f"cannot be folded exactly into a convolution with padding="
            f"{chain.consumer.padding!r}. Skip {chain.producer.name!r} when channel pruning."
        )
    per_channel = constants.reshape(-1, constants.shape[-1])[0]
    window_sum = kernel.reshape(-1, kernel.shape[-2], kernel.shape[-1]).sum(axis=0)  # [in, out]
    return per_channel @ window_sum


def shrink(model: keras.Model) -> keras.Model:
    """A new, smaller model without the channels that channel pruning zeroed.

    For each Dense/ConvND layer whose output channels are all-zero (kernel row
    and bias, as `prune_low_magnitude(..., channel_norm="L1")` leaves them),
    the channels are removed from the layer, from BatchNormalization and other
    per-channel layers after it, and the matching inputs of the next Dense or
    ConvND layer (through Flatten too). Where a removed channel still carries a
    constant (BatchNormalization's shift), the constant's contribution is folded
    into the next layer's bias. The result computes what the pruned model
    computed, with fewer parameters and MACs. Channels that reach an `Add`,
    `Concatenate`, a model output or several layers are kept.

    Args:
        model: A flat Sequential or functional model, pruned (wrappers are
            stripped first) or already stripped.

    Returns:
        A new plain Keras model; `model` is left untouched.

    Raises:
        ValueError: Nothing to remove (no structured pruning), a nested model,
            or a constant that cannot be folded exactly.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: type {type(model).__name__}")
    plain = strip_pruning(model) if collect_wrappers(model) else model
    chains = channel_chains(plain)
    keep = {}
    for name, chain in chains.items():
        kept = _kept_channels(chain.producer)
        if len(kept) < chain.producer.output.shape[-1]:
            keep[name] = kept
    if not keep:
        raise ValueError(
            f"shrink: model {model.name!r} has no removable all-zero channels. Prune it with "
            "`prune_low_magnitude(..., channel_norm='L1')` (structured pruning) first."
        )
    planned = [chain for name, chain in chains.items() if name in keep]
    folds = {
        c.consumer.name: _fold(c, _removed_constants(c, keep[c.producer.name])) for c in planned
    }
    input_keep = {c.consumer.name: _input_index(c, keep[c.producer.name]) for c in planned}
    between_keep = {b.name: keep[c.producer.name] for c in planned for b in c.between}

    def clone(layer):
        config = layer.get_config()
        if layer.name in keep:
            config["units" if "units" in config else "filters"] = int(len(keep[layer.name]))
        if folds.get(layer.name) is not None:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    small = keras.models.clone_model(plain, clone_function=clone)
    for old, new in zip(plain.layers, small.layers):
        new.set_weights(_new_weights(old, keep, input_keep, between_keep, folds))
    return small


def _new_weights(layer, keep, input_keep, between_keep, folds) -> list[np.ndarray]:
    weights = [keras.ops.convert_to_numpy(w) for w in layer.weights]
    if layer.name in between_keep:  # BatchNormalization: every vector is per channel
        return [w[between_keep[layer.name]] for w in weights]
    if not weights or not (layer.name in keep or layer.name in input_keep):
        return weights
    kernel = weights[0]
    bias = weights[1] if layer.use_bias else np.zeros(kernel.shape[-1], kernel.dtype)
    if layer.name in input_keep:
        fold = folds.get(layer.name)
        if fold is not None:
            bias = bias + fold.astype(bias.dtype)
        index = input_keep[layer.name]
        kernel = kernel[index] if kernel.ndim == 2 else kernel[..., index, :]
    if layer.name in keep:
        kernel, bias = kernel[..., keep[layer.name]], bias[keep[layer.name]]
    has_bias = layer.use_bias or folds.get(layer.name) is not None
    return [kernel, bias] if has_bias else [kernel]
