"""`TeacherOutputs` on its own: keys, live and bulk outputs, the per-sample cache."""

import keras
import numpy as np
import pytest

from tfcompress.distillation import ExternalTeacher
from tfcompress.distillation.teacher_outputs import (
    CACHED,
    INPUTS,
    TeacherOutputs,
    unpack_inputs,
)

RNG = np.random.default_rng(0)


def _model(name):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden), name=name)


def test_keys_name_each_teachers_output_and_hint_features():
    first, second = _model("first"), _model("second")
    outputs = TeacherOutputs([first, second], {1: ["hidden"]})
    x = RNG.normal(size=(5, 4)).astype("float32")
    live = outputs(x)
    assert sorted(live) == ["0", "1", "1:hidden"]
    np.testing.assert_allclose(live["0"], first(x), rtol=1e-6)
    np.testing.assert_allclose(live["1:hidden"], second.get_layer("hidden")(x), rtol=1e-6)
    bulk = outputs.predict(x, batch_size=2)
    assert sorted(bulk) == sorted(live)
    for key, value in live.items():
        np.testing.assert_allclose(bulk[key], value, rtol=1e-5, atol=1e-6)


def test_rows_seen_before_are_not_recomputed():
    rows = []

    def counted(batch):
        rows.append(len(batch))
        return batch[:, :2] * 2

    outputs = TeacherOutputs([ExternalTeacher(counted, input_shape=(4,))], {})
    rows.clear()  # the construction probe
    x = RNG.normal(size=(6, 4)).astype("float32")
    np.testing.assert_allclose(outputs.predict(x)["0"], x[:, :2] * 2)
    np.testing.assert_allclose(outputs.predict(x[::-1])["0"], x[::-1, :2] * 2)
    assert rows == [6]  # a reshuffled copy costs no teacher pass
    outputs.predict(np.concatenate([x[:2], x[:1] + 1]))
    assert rows == [6, 1]  # only the new row


def test_changed_weights_forget_the_cache():
    model = _model("t")
    outputs = TeacherOutputs([model], {})
    x = RNG.normal(size=(3, 4)).astype("float32")
    before = outputs.predict(x)["0"]
    model.get_layer("out").kernel.assign(model.get_layer("out").kernel * 2)
    after = outputs.predict(x)["0"]
    np.testing.assert_allclose(after, model.predict(x, verbose=0), rtol=1e-5)
    assert not np.allclose(after, before)


def test_attach_packs_arrays_and_refuses_datasets():
    outputs = TeacherOutputs([_model("t")], {})
    x = RNG.normal(size=(3, 4)).astype("float32")
    packed = outputs.attach(x, "x")
    assert sorted(packed) == sorted([INPUTS, CACHED]) and outputs.attach(packed, "x") is packed
    inputs, cached = unpack_inputs(packed)
    assert inputs is packed[INPUTS] and sorted(cached) == ["0"]
    assert unpack_inputs(x) == (x, None)
    with pytest.raises(ValueError, match="needs `validation_data` as one array.*list"):
        outputs.attach([x], "validation_data")
