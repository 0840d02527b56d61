"""`report`'s errors name its own arguments."""

import keras
import numpy as np
import pytest

import tfcompress as tc


def test_a_missing_tflite_file_names_tflite(tmp_path):
    missing = tmp_path / "missing.tflite"
    with pytest.raises(FileNotFoundError, match=r"No `.tflite` file at `tflite`=.*missing"):
        tc.report(tflite=missing)
    with pytest.raises(ValueError, match=r"`tflite` is empty"):
        tc.report(tflite=b"")


@pytest.mark.parametrize("runs", [0, -3, True, 2.5])
def test_latency_runs_is_named(runs):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    content = tc.export_tflite(model)
    data = (np.zeros((4, 4), "float32"), np.zeros(4, "int64"))
    with pytest.raises(ValueError, match=rf"`latency_runs` .* Received: latency_runs={runs!r}"):
        tc.report(model, content, data=data, latency_runs=runs)
