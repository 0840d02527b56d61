"""TFLiteModel: batching, quantized I/O scaling, accuracy, latency and both runtimes."""

import sys

import numpy as np
import pytest

import tfcompress as tc


@pytest.fixture(scope="module")
def lenet_int8(trained_lenet, mnist):
    return tc.export_tflite(trained_lenet, mode="int8", representative_data=mnist.x_train[:200])


def test_batch_size_does_not_change_outputs(lenet_int8, mnist):
    runner = tc.TFLiteModel(lenet_int8)
    x = mnist.x_test[:37]
    np.testing.assert_array_equal(runner.predict(x, batch_size=5), runner.predict(x, batch_size=37))


def test_litert_and_tf_runtimes_agree(lenet_int8, mnist):
    litert = tc.TFLiteModel(lenet_int8, backend="litert")
    tf_lite = tc.TFLiteModel(lenet_int8, backend="tf")
    assert litert.backend == "ai_edge_litert" and tf_lite.backend == "tensorflow"
    np.testing.assert_array_equal(
        litert.predict(mnist.x_test[:100]), tf_lite.predict(mnist.x_test[:100])
    )


def test_reference_kernels_close_to_xnnpack(lenet_int8, mnist):
    raw_ref = tc.TFLiteModel(lenet_int8, reference_kernels=True).run_batch(mnist.x_test[:50], True)
    raw_default = tc.TFLiteModel(lenet_int8).run_batch(mnist.x_test[:50], True)
    assert np.abs(raw_ref.astype(int) - raw_default.astype(int)).max() <= 3


def test_quantized_io_scaling_matches_manual(trained_lenet, mnist):
    from ai_edge_litert.interpreter import Interpreter

    content = tc.export_tflite(
        trained_lenet, mode="int8", representative_data=mnist.x_train[:200], io_type="int8"
    )
    x = mnist.x_test[:1]
    raw = Interpreter(model_content=content)
    raw.allocate_tensors()
    inp, out = raw.get_input_details()[0], raw.get_output_details()[0]
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    raw.set_tensor(
        inp["index"], np.clip(np.round(x / in_scale) + in_zero, -128, 127).astype(np.int8)
    )
    raw.invoke()
    manual = (raw.get_tensor(out["index"]).astype(np.float32) - out_zero) * out_scale
    np.testing.assert_allclose(tc.TFLiteModel(content).predict(x), manual)


def test_evaluate_matches_predict(lenet_int8, mnist):
    runner = tc.TFLiteModel(lenet_int8)
    expected = np.mean(runner.predict(mnist.x_test).argmax(-1) == mnist.y_test)
    assert runner.evaluate(mnist.x_test, mnist.y_test) == pytest.approx(expected)
    assert expected > 0.8


def test_latency_fields(lenet_int8, mnist):
    lat = tc.TFLiteModel(lenet_int8, num_threads=2).latency(mnist.x_test[:1], warmup=2, runs=20)
    assert lat["runs"] == 20 and lat["batch"] == 1 and lat["num_threads"] == 2
    assert 0 < lat["min_ms"] <= lat["median_ms"] <= lat["p90_ms"]


def test_reads_from_path(lenet_int8, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(lenet_int8)
    assert tc.TFLiteModel(str(path)).content == lenet_int8


class TestBadInput:
    def test_wrong_shape(self, lenet_int8):
        with pytest.raises(ValueError, match=r"x.shape=\(4, 8, 8\)"):
            tc.TFLiteModel(lenet_int8).predict(np.zeros((4, 8, 8)))

    def test_labels_length(self, lenet_int8, mnist):
        with pytest.raises(ValueError, match="10 samples and 9 labels"):
            tc.TFLiteModel(lenet_int8).evaluate(mnist.x_test[:10], mnist.y_test[:9])

    @pytest.mark.parametrize(
        "kwargs,match",
        [({"backend": "onnx"}, "backend='onnx'"), ({"num_threads": 0}, "num_threads=0")],
    )
    def test_bad_options(self, lenet_int8, kwargs, match):
        with pytest.raises(ValueError, match=match):
            tc.TFLiteModel(lenet_int8, **kwargs)

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="m.tflite"):
            tc.TFLiteModel(str(tmp_path / "m.tflite"))


def test_falls_back_to_tf_lite_without_litert(lenet_int8, mnist, monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    runner = tc.TFLiteModel(lenet_int8)
    assert runner.backend == "tensorflow"
    assert runner.evaluate(mnist.x_test[:100], mnist.y_test[:100]) > 0.7
    with pytest.raises(ImportError, match=r"tfcompress\[litert\]"):
        tc.TFLiteModel(lenet_int8, backend="litert")
