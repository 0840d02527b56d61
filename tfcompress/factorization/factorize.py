"""`factorize`: a copy of a model with Dense/Conv2D layers replaced by low-rank factorized ones."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable

import keras

from tfcompress.factorization.factorized_conv2d import SCHEMES, FactorizedConv2D, conv_unsupported
from tfcompress.factorization.factorized_dense import FactorizedDense, dense_unsupported
from tfcompress.factorization.ranks import MEASURES, Candidate, Ranks, budget_ranks
from tfcompress.factorization.svd import check_energy, check_method
from tfcompress.factorization.validation import int_pair, positive_int
from tfcompress.utils.surgery import check_model, clone_graph, leaf_layers, require_graph
from tfcompress.utils.validation import check_layer_names

RankArg = int | tuple[int, int] | dict[str, int | tuple[int, int]] | None
EnergyArg = float | dict[str, float] | None
Selection = Iterable[str | type] | str | None


def _unsupported(layer: keras.layers.Layer) -> str | None:
    if isinstance(layer, (FactorizedDense, FactorizedConv2D)):
        return "it is already factorized"
    if isinstance(layer, keras.layers.Dense):
        return dense_unsupported(layer)
    if isinstance(layer, keras.layers.Conv2D):
        return conv_unsupported(layer)
    return f"it is a {type(layer).__name__}; only Dense and Conv2D layers are factorized"


def _select(
    model: keras.Model, layers: Selection, named: dict | None, argument: str, conv_scheme: str
) -> list[Candidate]:
    """The candidates: named layers (explicit, errors when unsupported) and layers picked by
    class or by default (implicit, skipped when unsupported). `argument` gave the names."""
    if named is not None:
        if layers is not None:
            raise ValueError(
                "A dict of per-layer `rank` or `energy` selects the layers itself; leave "
                f"`layers` unset. Received: layers={layers!r}"
            )
        layers = list(named)
    elif layers is not None:
        layers = [layers] if isinstance(layers, str) else list(layers)
    names = [s for s in layers or () if isinstance(s, str)]
    classes = tuple(s for s in layers or () if isinstance(s, type))
    if layers is not None and len(names) + len(classes) != len(layers):
        raise TypeError(f"`layers` must hold layer names and layer classes. Received: {layers!r}")
    leaves = leaf_layers(model, (keras.layers.Wrapper,))  # a wrapper is one layer here
    check_layer_names(model, names, argument, known={layer.name for layer in leaves})
    candidates = []
    for layer in leaves:
        explicit = layer.name in names
        if not explicit and layers is not None and not isinstance(layer, classes):
            continue
        reason = _unsupported(layer)
        if reason is not None:
            if explicit:
                raise ValueError(f"Layer {layer.name!r} cannot be factorized: {reason}.")
            continue
        scheme = "dense" if isinstance(layer, keras.layers.Dense) else conv_scheme
        candidates.append(Candidate(layer, scheme, explicit))
    return candidates


def _fixed_ranks(c: Candidate, rank) -> Ranks | None:
    where = f"Layer {c.layer.name!r}: "
    if c.scheme == "channel":
        ranks = int_pair(rank, "rank", where)
    elif isinstance(rank, (list, tuple)):
        raise ValueError(
            f"{where}a {c.scheme} factorization has one rank (an integer). Received: rank={rank!r}"
        )
    else:
        ranks = (positive_int(rank, "rank", where),)
    if c.within_limits(ranks):
        return ranks
    if c.explicit:
        limit = c.max_ranks[0] if len(c.max_ranks) == 1 else c.max_ranks
        raise ValueError(
            f"{where}`rank` must be at most {limit} (min(in, out) of its {c.scheme} "
            f"factorization). Received: rank={rank!r}"
        )
    return None  # never smaller than the original; the layer is left alone


def _check_some_take(candidates: list[Candidate], chosen: list, rank) -> None:
    """Raises when one `rank` for all leaves every selected layer as it was (layers named
    in `layers` get their own error or warning)."""
    if (
        not candidates
        or any(c.explicit for c in candidates)
        or any(r is not None and c.smaller(r) for c, r in zip(candidates, chosen))
    ):
        return
    limits = ", ".join(
        f"{c.layer.name!r} (at most {c.max_ranks[0] if len(c.max_ranks) == 1 else c.max_ranks})"
        for c in candidates
    )
    raise ValueError(
        "`rank` leaves every selected layer as it was: it is above their largest rank, or "
        "their factorized form would not be smaller. The selected layers and their largest "
        f"ranks: {limits}. Received: rank={rank!r}"
    )


def _check_fraction(compression) -> float:
    if (
        isinstance(compression, bool)
        or not isinstance(compression, numbers.Real)
        or not 0 < compression < 1
    ):
        raise ValueError(
            "`compression` must be a number in (0, 1): the fraction of the selected layers' "
            f"parameters (or MACs) to keep. Received: compression={compression!r}"
        )
    return float(compression)


def factorize(
    model: keras.Model,
    rank: RankArg = None,
    energy: EnergyArg = None,
    compression: float | None = None,
    layers: Selection = None,
    conv_scheme: str = "spatial",
    budget: str = "params",
    svd: str = "auto",
    seed: int = 0,
) -> keras.Model:
    """A copy of a Sequential or functional model with layers replaced by factorized ones.

    Dense layers become `FactorizedDense`, Conv2D layers `FactorizedConv2D`
    (scheme `conv_scheme`), each initialised from the truncated SVD (or HOSVD)
    of the trained kernel; every other layer is copied with its weights. The
    original is left untouched. Give exactly one of `rank`, `energy` and
    `compression`. A layer whose factorized form would not have fewer weights
    and fewer MACs than the original is left alone (with a warning when it was
    named).

    Args:
        model: A built Sequential or functional model (nested ones included).
        rank: The rank of every selected layer (a pair `(r_in, r_out)` for
            the channel scheme), or a dict `{layer name: rank}`. Selected
            layers whose largest rank is below it are left alone; a named one
            raises, and so does a rank that leaves every selected layer alone.
        energy: The fraction of each layer's squared singular values to keep,
            in (0, 1], or a dict `{layer name: energy}`.
        compression: A global budget: the fraction of the selected layers'
            kernel weights (or MACs, see `budget`) to keep, in (0, 1). Ranks
            are distributed by the greedy rule of `tfcompress.factorization.ranks`
            (the most singular-value energy per parameter first).
        layers: Which layers: names (explicit: an unknown name, or a layer
            that cannot be factorized, raises) and/or classes
            (`keras.layers.Dense`). Default: every Dense and Conv2D layer
            (except grouped and channels-first ones); with a dict `rank` or
            `energy`, the dict's keys.
        conv_scheme: `"spatial"` (`kh x 1` then `1 x kw`) or `"channel"`
            (Tucker-2: 1x1, `kh x kw`, 1x1); see `FactorizedConv2D`.
        budget: What `compression` counts: `"params"` or `"macs"`.
        svd: `"auto"`, `"full"` or `"randomized"` (see `truncated_svd`).
        seed: Seed of the randomized SVD.

    Returns:
        The factorized model (a functional model stays functional, a
        Sequential one Sequential); `factorization_summary(model, result)`
        lists each replaced layer's rank, parameters and MACs.

    Raises:
        ValueError: Not exactly one of `rank`/`energy`/`compression`, values
            out of range, unknown layer names, named layers that cannot be
            factorized.

    Example:
        >>> model = tfcompress.models.lenet_300_100()
        >>> small = tfcompress.factorize(model, rank=16, layers=["fc1"])
        >>> small.get_layer("fc1").rank
        16
        >>> small.count_params() < model.count_params()
        True
    """
    check_model(model, "factorize", "model")
    require_graph(
        model,
        "factorize",
        "Replace its layers with `FactorizedDense.from_dense` / `FactorizedConv2D.from_conv2d` "
        "in its code instead.",
    )
    given = [
        name
        for name, v in (("rank", rank), ("energy", energy), ("compression", compression))
        if v is not None
    ]
    if len(given) != 1:
        raise ValueError(
            "Pass exactly one of `rank`, `energy` and `compression`. "
            f"Received: {', '.join(given) or 'none of them'}"
        )
    if conv_scheme not in SCHEMES:
        raise ValueError(
            f"`conv_scheme` must be one of {SCHEMES}. Received: conv_scheme={conv_scheme!r}"
        )
    if budget not in MEASURES:
        raise ValueError(f"`budget` must be one of {MEASURES}. Received: budget={budget!r}")
    check_method(svd)
    per_layer = rank if isinstance(rank, dict) else energy if isinstance(energy, dict) else None
    argument = "layers" if per_layer is None else "rank" if per_layer is rank else "energy"
    candidates = _select(model, layers, per_layer, argument, conv_scheme)

    if compression is not None:
        chosen = budget_ranks(candidates, _check_fraction(compression), budget)
    elif rank is not None:
        chosen = [_fixed_ranks(c, rank[c.layer.name] if per_layer else rank) for c in candidates]
    else:
        chosen = []
        for c in candidates:
            value = energy[c.layer.name] if per_layer else energy
            chosen.append(c.energy_ranks(check_energy(value, f"Layer {c.layer.name!r}: ")))

    if rank is not None and not per_layer:
        _check_some_take(candidates, chosen, rank)
    replacements = {}
    for c, ranks in zip(candidates, chosen):
        if ranks is None:
            continue
        if not c.smaller(ranks):
            if c.explicit:
                warnings.warn(
                    f"Layer {c.layer.name!r} is left as it is: at rank {ranks} its factorized "
                    "form would not have fewer weights and MACs.",
                    stacklevel=2,
                )
            continue
        if c.scheme == "dense":
            new = FactorizedDense.from_dense(c.layer, rank=ranks[0], svd=svd, seed=seed)
        else:
            value = ranks[0] if c.scheme == "spatial" else ranks
            new = FactorizedConv2D.from_conv2d(c.layer, value, scheme=c.scheme, svd=svd, seed=seed)
        replacements[c.layer] = new
    return clone_graph(model, replacements.get)  # other layers: copies holding their weights
