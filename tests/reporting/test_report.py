"""report(): summary, renderings, comparison, and bad input."""

import gzip
import json

import keras
import numpy as np
import pytest

import tfcompress as tc
from tfcompress.reporting import gzip_size


@pytest.fixture(scope="module")
def reports(trained_lenet, mnist):
    test = (mnist.x_test, mnist.y_test)
    float_bytes = tc.export_tflite(trained_lenet)
    int8_bytes = tc.export_tflite(
        trained_lenet, mode="int8", representative_data=mnist.x_train[:200]
    )
    before = tc.report(trained_lenet, float_bytes, data=test, latency_runs=20, name="float")
    after = tc.report(tflite=int8_bytes, data=test, latency_runs=20, name="int8")
    return before, after, float_bytes, int8_bytes


def test_summary_values(reports, trained_lenet, mnist):
    before, after, float_bytes, int8_bytes = reports
    s = before.summary
    assert s["params"] == trained_lenet.count_params() == s["tflite_params"]
    assert s["float32_bytes"] == 4 * s["params"]
    assert s["macs"] == 784 * 300 + 300 * 100 + 100 * 10
    assert s["tflite_bytes"] == len(float_bytes)
    assert s["gzip_bytes"] == len(gzip.compress(float_bytes, 9, mtime=0))
    assert s["keras_accuracy"] == pytest.approx(s["tflite_accuracy"])
    assert after.summary["tflite_weight_bytes"] < s["tflite_weight_bytes"] / 3.5
    assert abs(after.summary["tflite_accuracy"] - s["tflite_accuracy"]) < 0.02
    assert 0 < s["latency_ms"] <= s["latency_p90_ms"]
    assert "params" not in after.summary  # no Keras model given


def test_renderings_carry_the_numbers(reports):
    before, _, _, _ = reports
    text, markdown = before.to_text(), before.to_markdown()
    for rendering in (text, markdown):
        assert f"{before.summary['params']:,}" in rendering
        assert f"{before.summary['gzip_bytes']:,}" in rendering
        assert "fc1" in rendering
    assert markdown.count("|:---|") >= 2 and "## float" in markdown
    data = json.loads(before.to_json())
    assert data["summary"]["params"] == before.summary["params"]
    assert [layer["name"] for layer in data["layers"]] == ["flatten", "fc1", "fc2", "logits"]
    assert data["layers"][1]["macs"] == 784 * 300


def test_comparison(reports):
    before, after, float_bytes, int8_bytes = reports
    comparison = before.compare(after)
    assert comparison.ratio("tflite_bytes") == pytest.approx(len(float_bytes) / len(int8_bytes))
    assert comparison.ratio("params") is None  # only "before" has a Keras model
    text = comparison.to_text()
    assert f"{comparison.ratio('gzip_bytes'):.2f}x" in text
    assert "pt" in text  # accuracy change in points
    # per-op rows pair the weight ops of both .tflite files by layer name
    for name in ("fc1", "fc2", "logits"):
        assert name in text
    data = json.loads(comparison.to_json())
    assert data["ratios"]["tflite_bytes"] == pytest.approx(comparison.ratio("tflite_bytes"))


def test_report_reads_a_path(reports, tmp_path):
    _, _, float_bytes, _ = reports
    path = tmp_path / "m.tflite"
    path.write_bytes(float_bytes)
    assert tc.report(tflite=str(path)).summary["tflite_bytes"] == len(float_bytes)


def test_structure_shows_in_report():
    inputs = keras.Input((32,))
    layer = keras.layers.Dense(32, name="fc")
    model = keras.Model(inputs, layer(inputs))
    kernel = np.ones((32, 32), "float32")  # Keras layout [in, out]
    kernel[:8, :16] = 0  # inputs 0..7 of outputs 0..15: two 16x4 blocks of [out, in]
    layer.kernel.assign(kernel)
    result = tc.report(model, tc.export_tflite(model))
    assert result.layers[0].structure == "block 16x4"
    assert result.ops[0].structure == "block 16x4"
    assert result.summary["sparsity"] == pytest.approx(128 / 1024)


def test_gzip_size_is_reproducible():
    data = bytes(range(256)) * 10
    assert gzip_size(data) == gzip_size(data) < len(data)


class TestBadInput:
    def test_nothing_to_report(self):
        with pytest.raises(ValueError, match="Pass `model`"):
            tc.report()

    def test_unbuilt_model(self):
        with pytest.raises(ValueError, match="never built"):
            tc.report(keras.Sequential([keras.layers.Dense(2)]))

    def test_data_of_wrong_shape(self, trained_lenet, digits):
        with pytest.raises(ValueError, match=r"data\[0\].*expected \(n, 28, 28, 1\)"):
            tc.report(trained_lenet, data=(digits.x_test, digits.y_test))

    def test_data_not_a_pair(self, trained_lenet, mnist):
        with pytest.raises(ValueError, match="pair"):
            tc.report(trained_lenet, data=mnist.x_test)

    def test_labels_length(self, trained_lenet, mnist):
        with pytest.raises(ValueError, match="10 samples but 9 labels"):
            tc.report(trained_lenet, data=(mnist.x_test[:10], mnist.y_test[:9]))
