"""Names in `precision=` that match no layer raise, listing the layers."""

import keras
import pytest

import tfcompress as tc


def _mlp():
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, name="fc"), keras.layers.Dense(3, name="out")],
        name="mlp",
    )


class _Sub(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.fc = keras.layers.Dense(3, name="fc")

    def call(self, x):
        return self.fc(x)


def _built_sub():
    model = _Sub(name="mlp")
    model.build((None, 4))
    return model


MESSAGE = r"No layer named 'fc1' in model 'mlp': every name in `precision` must be one of"


def test_quantize_model_refuses_unknown_precision_names():
    with pytest.raises(ValueError, match=MESSAGE + r" its layers. Its layers: 'fc', 'out'"):
        tc.quantize_model(_mlp(), precision={"fc1": 4})


def test_quantize_apply_refuses_unknown_precision_names():
    annotated = tc.quantization.quantize_annotate_model(_mlp())
    with pytest.raises(ValueError, match=MESSAGE):
        tc.quantization.quantize_apply(annotated, precision={"fc1": "float"})


def test_subclassed_models_refuse_unknown_precision_names():
    with pytest.raises(ValueError, match=MESSAGE):
        tc.quantize_model(_built_sub(), precision={"fc1": 8})


def test_known_names_and_classes_are_accepted():
    model = tc.quantize_model(_mlp(), precision={"fc": 4, keras.layers.Dense: 8})
    assert model.count_params() > 0
