"""`factorize`: unknown names list the layers; a rank no layer can take raises."""

import keras
import pytest

import tfcompress as tc


def _mlp():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(32, name="fc1"),
            keras.layers.Dense(32, name="fc2"),
            keras.layers.Dense(4, name="out"),
        ],
        name="mlp",
    )


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"rank": 2, "layers": ["fc1", "fc9", "head"]}, "layers"),
        ({"rank": {"fc9": 2, "head": 2}}, "rank"),
        ({"energy": {"fc9": 0.9, "head": 0.9}}, "energy"),
    ],
)
def test_unknown_names_are_all_listed_with_the_layers(kwargs, argument):
    with pytest.raises(
        ValueError,
        match=rf"No layer named 'fc9', 'head' in model 'mlp': every name in `{argument}` must "
        r"be one of its layers. Its layers: 'fc1', 'fc2', 'out'",
    ):
        tc.factorize(_mlp(), **kwargs)


def test_a_rank_no_layer_can_take_raises():
    with pytest.raises(
        ValueError,
        match=r"`rank` leaves every selected layer as it was.*'fc1' \(at most 16\), "
        r"'fc2' \(at most 32\), 'out' \(at most 4\). Received: rank=100000",
    ):
        tc.factorize(_mlp(), rank=100000)
    with pytest.raises(ValueError, match=r"Received: rank=16"):  # fits, but is not smaller
        tc.factorize(_mlp(), rank=16, layers=[keras.layers.Dense])


def test_a_rank_some_layers_take_still_factorizes_them():
    small = tc.factorize(_mlp(), rank=8)
    kinds = [type(layer).__name__ for layer in small.layers]
    assert kinds == ["FactorizedDense", "FactorizedDense", "Dense"]
