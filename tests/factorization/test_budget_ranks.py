"""The global budget of `factorize(compression=...)`: the greedy rule, at the cost of a heap."""

import keras
import numpy as np
import pytest

from tfcompress.factorization import ranks as ranks_module
from tfcompress.factorization.ranks import Candidate, _steps, budget_ranks


def scan_all_layers(candidates, fraction, measure):
    """The rule as the module states it: each round, scan every layer for the best step."""
    budget = fraction * sum(c.cost(None, measure) for c in candidates)
    chosen = [
        (1,) * len(c.max_ranks) if c.smaller((1,) * len(c.max_ranks)) else None for c in candidates
    ]
    spent = sum(c.cost(r, measure) for c, r in zip(candidates, chosen))
    while True:
        best = None
        for i, (c, current) in enumerate(zip(candidates, chosen)):
            if current is None:
                continue
            for gain, new in ranks_module._steps(c, current):
                extra = c.cost(new, measure) - c.cost(current, measure)
                score = gain / max(extra, 1)
                if spent + extra <= budget and (best is None or score > best[0]):
                    best = (score, i, new, extra)
        if best is None:
            return chosen
        _, i, chosen[i], extra = best
        spent += extra


def candidates(seed: int = 0) -> list[Candidate]:
    rng = np.random.default_rng(seed)
    inputs = keras.Input((12, 12, 8))
    x = inputs
    for i, filters in enumerate((16, 24, 16, 32)):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"c{i}")(x)
    x = keras.layers.Flatten()(keras.layers.MaxPooling2D(4)(x))
    for i, units in enumerate((64, 48, 10)):
        x = keras.layers.Dense(units, name=f"d{i}")(x)
    model = keras.Model(inputs, x)
    for weight in model.weights:  # spectra that fall off at different rates per layer
        decay = rng.uniform(0.5, 3.0)
        value = rng.normal(size=weight.shape) * np.exp(-decay * rng.random(weight.shape))
        weight.assign(value.astype("float32"))
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            found += [Candidate(layer, "spatial", False), Candidate(layer, "channel", False)]
        elif isinstance(layer, keras.layers.Dense):
            found.append(Candidate(layer, "dense", False))
    return found


@pytest.mark.parametrize("fraction,measure", [(0.2, "params"), (0.5, "params"), (0.4, "macs")])
def test_heap_picks_what_scanning_every_layer_picks(fraction, measure, monkeypatch):
    calls = []
    monkeypatch.setattr(ranks_module, "_steps", lambda c, r: calls.append(c) or _steps(c, r))
    chosen = budget_ranks(candidates(), fraction, measure)
    heap_calls = len(calls)
    assert chosen == scan_all_layers(candidates(), fraction, measure)
    # ... asking a layer for its next steps once per step it takes, not every layer at
    # every step (quadratic: minutes on ResNet50's 53 convolutions).
    assert 5 * heap_calls < len(calls) - heap_calls, (heap_calls, len(calls) - heap_calls)
