"""`Sensitivity.merge`'s checks and merge of sensitivity shards."""

from __future__ import annotations

from collections import Counter

WHERE = "Sensitivity.merge"
_SHOWN = 10  # pairs named in an error at most


def _pairs(pairs) -> str:
    listed = [f"{layer}/{key}" for layer, key in pairs]
    more = f" and {len(listed) - _SHOWN} more" if len(listed) > _SHOWN else ""
    return ", ".join(listed[:_SHOWN]) + more


def _check_shards(shards: list) -> dict:
    """The first shard's `shard` dict, after checking that all split the same measurement."""
    if not shards:
        raise ValueError(f"{WHERE}: `shards` is empty; pass the results of every shard.")
    for position, part in enumerate(shards):
        if getattr(part, "shard", None) is None:
            what = type(part).__name__
            raise ValueError(
                f"{WHERE}: `shards[{position}]` is not a shard (a {what} measured without "
                "`shard=`); pass the results of `tfcompress.sensitivity(..., shard=(i, n))`."
            )
    first = shards[0].shard
    for position, part in enumerate(shards[1:], 1):
        info = part.shard
        if info["count"] != first["count"]:
            raise ValueError(
                f"{WHERE}: `shards[{position}]` is shard {info['index']} of {info['count']}, "
                f"`shards[0]` one of {first['count']}; pass shards of one split."
            )
        if info["fingerprint"] != first["fingerprint"] or info["units"] != first["units"]:
            raise ValueError(
                f"{WHERE}: `shards[{position}]` (shard {info['index']}) measured another model, "
                "data, options or settings than `shards[0]` (fingerprints "
                f"{info['fingerprint']} and {first['fingerprint']}); measure every shard of "
                "the same model on the same data with the same arguments."
            )
    indices = Counter(part.shard["index"] for part in shards)
    twice = sorted(i for i, n in indices.items() if n > 1)
    if twice:
        raise ValueError(f"{WHERE}: shard(s) {twice} of {first['count']} are given twice.")
    missing = sorted(set(range(first["count"])) - set(indices))
    if missing:
        raise ValueError(f"{WHERE}: shard(s) {missing} of {first['count']} are missing.")
    return first


def merge_shards(cls, shards: list):
    """One `cls` (a `Sensitivity`) of every shard's entries, in the unsharded order."""
    first = _check_shards(shards)
    order = {tuple(unit): position for position, unit in enumerate(first["units"])}
    entries = [e for part in shards for e in part.entries]
    found = Counter((e.layer, e.key) for e in entries)
    twice = [pair for pair, n in found.items() if n > 1]
    unknown = [pair for pair in found if pair not in order]
    missing = [pair for pair in order if pair not in found]
    for pairs, what in (
        (twice, "twice"),
        (unknown, "that the shards do not list"),
        (missing, "in no shard"),
    ):
        if pairs:
            raise ValueError(f"{WHERE}: (layer/option) pairs {what}: {_pairs(pairs)}.")
    last = next(part for part in shards if part.shard["index"] == first["count"] - 1)
    model = {k: v for k, v in last.model.items() if k != "shard"}
    seconds = [part.model.get("seconds") for part in shards]
    if all(s is not None for s in seconds):
        model["seconds"] = max(seconds)
    return cls(sorted(entries, key=lambda e: order[e.layer, e.key]), model)
