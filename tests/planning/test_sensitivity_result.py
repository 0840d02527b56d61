"""The Sensitivity data class and the per-layer options."""

import keras
import numpy as np
import pytest

from tfcompress.planning import LayerOption, Sensitivity, SensitivityEntry, default_options


def _entry(layer, option, drop):
    return SensitivityEntry(
        layer, option, drop, 0.1 * drop, 1.0 - 0.01 * drop, 100, 50, 400, 150, 90, 0.01, None
    )


def test_round_trip_table_and_lookup(tmp_path):
    pruned = LayerOption("prune", structure="16x4", sparsity=0.8)
    four = LayerOption("bits", bits=4)
    result = Sensitivity(
        [
            _entry("a", None, 0.0),
            _entry("a", pruned, 2.0),
            _entry("b", None, 0.0),
            _entry("b", four, 0.5),
        ],
        {"name": "m", "accuracy": 0.9},
    )
    assert result.layers == ["a", "b"]
    assert result.options("a") == [pruned]
    assert result.entry("b", "bits:4").accuracy_drop == 0.5
    path = result.save(tmp_path / "s.json")
    loaded = Sensitivity.load(path)
    assert loaded.entries == result.entries and loaded.model == result.model
    assert (
        "prune:16x4:0.8" in result.to_table() and "| a | prune:16x4:0.8 |" in result.to_markdown()
    )
    with pytest.raises(KeyError, match="Options: \\['baseline', 'prune:16x4:0.8'\\]"):
        result.entry("a", "bits:8")
    with pytest.raises(ValueError, match="baseline entry.*\\['c'\\]"):
        Sensitivity([_entry("c", four, 1.0)])


def test_option_validation_names_the_value():
    with pytest.raises(ValueError, match="structure='8x8'"):
        LayerOption("prune", structure="8x8", sparsity=0.5)
    with pytest.raises(ValueError, match="bits=3"):
        LayerOption("bits", bits=3)
    with pytest.raises(ValueError, match="sparsity=1.0"):
        LayerOption("prune", structure="unstructured", sparsity=1.0)


def test_default_options_follow_what_fits():
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Conv2D(8, 3, name="conv"),
            keras.layers.Flatten(name="flatten"),  # not auto-named: other tests make Flattens
            keras.layers.Dense(32, name="fc"),
            keras.layers.Dense(10, name="out"),
        ]
    )
    keys = {layer.name: [o.key for o in default_options(layer)] for layer in model.layers}
    assert "prune:16x4:0.9" not in keys["conv"]  # 9 inputs per filter: no 4-wide block
    assert "prune:16x4:0.9" in keys["fc"] and "prune:2:4:0.5" in keys["fc"]
    assert keys["flatten"] == [] and "bits:4" in keys["conv"]
    ranks = [o for o in default_options(model.get_layer("fc")) if o.kind == "rank"]
    assert ranks and all(o.rank * (128 + 32) < 128 * 32 for o in ranks)
    kernel = model.get_layer("fc").kernel.numpy()
    energy = np.cumsum(np.linalg.svd(kernel, compute_uv=False) ** 2)
    for option in ranks:
        assert energy[option.rank - 1] / energy[-1] >= option.energy - 1e-6
