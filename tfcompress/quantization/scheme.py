"""`QuantizeScheme`: the choices `quantize_apply` makes for every layer it quantizes."""

from __future__ import annotations

from tfcompress.quantization.activation_quantizer import ActivationQuantizer
from tfcompress.quantization.quantizer import WEIGHT_BITS, check_bits


class QuantizeScheme:
    """Weight bits and what QAT must preserve, for a whole model.

    Args:
        weight_bits: Default weight bits (8 or 4); `precision` in
            `quantize_apply` overrides it per layer.
        preserve_sparsity: Keep zero weights at zero (pruning-preserving QAT).
        preserve_clusters: Keep the distinct weight values shared
            (clustering-preserving QAT).
        learned_ranges: Train the activation ranges by gradient descent instead
            of following moving averages (`ActivationQuantizer(learned=True)`).

    Named schemes (pass the name to `quantize_apply(scheme=...)`): see `SCHEMES`.
    """

    def __init__(
        self,
        weight_bits: int = 8,
        preserve_sparsity: bool = False,
        preserve_clusters: bool = False,
        learned_ranges: bool = False,
    ):
        self.weight_bits = check_bits(weight_bits, WEIGHT_BITS, "weight_bits")
        self.preserve_sparsity = bool(preserve_sparsity)
        self.preserve_clusters = bool(preserve_clusters)
        self.learned_ranges = bool(learned_ranges)

    def activation_quantizer(self) -> ActivationQuantizer:
        """The quantizer of model inputs and of layer outputs the registry quantizes."""
        return ActivationQuantizer(learned=self.learned_ranges)

    def __repr__(self) -> str:
        return (
            f"QuantizeScheme(weight_bits={self.weight_bits}, preserve_sparsity="
            f"{self.preserve_sparsity}, preserve_clusters={self.preserve_clusters}, "
            f"learned_ranges={self.learned_ranges})"
        )


SCHEMES = {
    "default_8bit": QuantizeScheme(),
    "default_4bit": QuantizeScheme(weight_bits=4),
    "prune_preserve_8bit": QuantizeScheme(preserve_sparsity=True),
    "cluster_preserve_8bit": QuantizeScheme(preserve_clusters=True),
    "prune_cluster_preserve_8bit": QuantizeScheme(preserve_sparsity=True, preserve_clusters=True),
}


def get_scheme(scheme: str | QuantizeScheme) -> QuantizeScheme:
    if isinstance(scheme, QuantizeScheme):
        return scheme
    if scheme not in SCHEMES:
        raise ValueError(
            f"Unknown `scheme`. Expected a QuantizeScheme or one of {sorted(SCHEMES)}. "
            f"Received: scheme={scheme!r}"
        )
    return SCHEMES[scheme]
