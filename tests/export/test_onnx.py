"""export_onnx: float, QAT int8 (QDQ), pruned and clustered models agree with Keras in ONNX
Runtime on real data, keep their int8 weights, zeros and shared values; bad input is refused."""

import os
import types

import keras
import numpy as np
import pytest
from helpers import compile_classifier
from test_tflite import check_agrees_with_keras

import tfcompress as tc

onnx = pytest.importorskip("onnx", reason="the onnx extra: pip install 'tfcompress[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra: pip install 'tfcompress[onnx]'")
pytest.importorskip("tf2onnx", reason="the onnx extra: pip install 'tfcompress[onnx]'")
from onnx import numpy_helper  # noqa: E402

# Bounds on each image's max |onnx - keras| logit error relative to max |keras| (median, 99th
# percentile, max), as in test_tflite. float32: ONNX Runtime and TF sum in different orders
# (measured: 1e-7 / 2.3e-7 / 3.9e-7). int8: ONNX Runtime fuses the QDQ pairs into integer kernels
# (QLinearConv, QGemm) while Keras fake-quantizes in float, so a value next to a rounding boundary
# may land one step away; one step of the logits' grid is ~0.007 of max |keras|. Measured on an
# AVX-512 VNNI/AMX Xeon: the QAT LeNet and CNN 0 / 0.0072 / 0.0072 (one step), the untrained
# 4-bit LeNet 0.0078 / 0.023 / 0.031, the tiny MobileNet (convolutions left float) 0 / 0 / 0.
# fake_quant: the same file without fusion (float kernels on dequantized values, what Keras
# computes): 0 / 0 / 0.0072.
TOLERANCES = {
    "float32": (1e-5, 1e-5, 1e-5),
    "int8": (0.02, 0.04, 0.1),
    "fake_quant": (1e-5, 0.01, 0.02),
}
WEIGHT_OPS = ("Conv", "MatMul", "Gemm")
WEIGHT_PATH = ("DequantizeLinear", "Reshape", "Transpose")


def _qat(model, data) -> types.SimpleNamespace:
    """A briefly trained QAT copy of `model`, and its int8 ONNX export."""
    keras.utils.set_random_seed(5)
    qat = compile_classifier(tc.quantize_model(model), learning_rate=1e-4)
    qat.fit(data.x_train[:512], data.y_train[:512], epochs=1, batch_size=64, verbose=0)
    return types.SimpleNamespace(model=qat, content=tc.export_onnx(qat, mode="int8"))


@pytest.fixture(scope="module")
def qat_lenet(trained_lenet, mnist):
    return _qat(trained_lenet, mnist)


@pytest.fixture(scope="module")
def qat_cnn(trained_cnn, mnist):
    return _qat(trained_cnn, mnist)


def _run(content: bytes, x: np.ndarray, fuse: bool = True) -> np.ndarray:
    """ONNX Runtime's outputs; `fuse=False` keeps it from fusing QDQ pairs into integer kernels."""
    options = ort.SessionOptions()
    if not fuse:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _graph(content: bytes):
    return onnx.load_from_string(content).graph


def _initializers(content: bytes) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in _graph(content).initializer}


def _kernels(model: keras.Model) -> list[np.ndarray]:
    return [w.numpy() for w in model.weights if w.path.endswith("kernel")]


def _weight_tensors(content: bytes) -> list[np.ndarray]:
    """The weights of each Conv/MatMul/Gemm, as stored (int8 behind a DequantizeLinear, and
    maybe a Reshape or Transpose to the layout the op takes)."""
    graph = _graph(content)
    values = _initializers(content)
    producers = {out: node for node in graph.node for out in node.output}
    weights = []
    for node in graph.node:
        if node.op_type in WEIGHT_OPS:
            name = node.input[1]
            while name not in values and producers[name].op_type in WEIGHT_PATH:
                name = producers[name].input[0]
            weights.append(values[name])
    return weights


@pytest.mark.parametrize("fixture", ["trained_lenet", "trained_cnn"])
def test_float_agrees_with_keras(fixture, mnist, request):
    model = request.getfixturevalue(fixture)
    got = _run(tc.export_onnx(model), mnist.x_test)
    check_agrees_with_keras(got, model.predict(mnist.x_test, verbose=0), TOLERANCES["float32"])


@pytest.fixture
def tiny():
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )


@pytest.mark.parametrize("fixture", ["qat_lenet", "qat_cnn"])
def test_qat_int8_agrees_with_keras(fixture, mnist, request):
    qat = request.getfixturevalue(fixture)
    content = qat.content
    expected = qat.model.predict(mnist.x_test, verbose=0)
    got = _run(content, mnist.x_test)
    check_agrees_with_keras(got, expected, TOLERANCES["int8"])
    emulated = _run(content, mnist.x_test, fuse=False)  # float kernels on dequantized values
    check_agrees_with_keras(emulated, expected, TOLERANCES["fake_quant"])
    (last,) = [n for n in _graph(content).node if n.output[0] == _graph(content).output[0].name]
    assert last.op_type == "DequantizeLinear"  # the logits are quantized at their learned range
    scale = float(_initializers(content)[last.input[1]])
    steps = np.abs(got - expected).max() / scale
    agreement = np.mean(got.argmax(-1) == expected.argmax(-1))
    print(f"{fixture}: top-1 agreement {agreement:.4f}, max |logit diff| {steps:.1f} steps")
    assert agreement >= 0.99
    assert steps <= 4  # a step or two from integer requantization along the way, as in TFLite


def test_qat_weights_are_int8_on_the_qat_grid(qat_lenet):
    """Each Dense kernel is stored as int8 `round(w / (max|w| / 127))`, as QAT fake-quantized it."""
    stored = _weight_tensors(qat_lenet.content)
    assert [w.dtype for w in stored] == [np.int8] * 3
    for kernel, q in zip(_kernels(qat_lenet.model), stored):
        expected = np.rint(kernel / (np.abs(kernel).max() / 127))
        assert q.shape == kernel.shape and np.abs(q).max() == 127
        assert np.mean(q == expected) > 0.9999  # ties may round either way


def test_qat_activations_use_the_learned_ranges(qat_cnn):
    """One QuantizeLinear per range QAT learned (input, conv1, conv2, fc1, logits), at its scale."""
    graph = _graph(qat_cnn.content)
    values = _initializers(qat_cnn.content)
    ranges = {
        w.path: float(w.numpy()) for w in qat_cnn.model.weights if w.path.endswith(("_min", "_max"))
    }
    learned = sorted(
        (ranges[path.replace("_min", "_max")] - min(lo, 0.0)) / 255
        for path, lo in ranges.items()
        if path.endswith("_min")
    )
    scales = sorted(float(values[n.input[1]]) for n in graph.node if n.op_type == "QuantizeLinear")
    assert len(learned) == 5
    np.testing.assert_allclose(scales, learned, rtol=1e-6)
    assert [w.dtype for w in _weight_tensors(qat_cnn.content)] == [np.int8] * 4
    zero_points = {n.input[2] for n in graph.node if n.op_type.endswith("QuantizeLinear")}
    assert {values[name].dtype for name in zero_points} == {np.dtype(np.int8)}  # as in TFLite


def test_onnx_runtime_runs_integer_kernels(qat_cnn, tmp_path):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(qat_cnn.content, options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    assert ops.count("QLinearConv") == 2 and "Conv" not in ops, ops
    assert "MatMul" not in ops and "Gemm" not in ops, ops  # QGemm or QLinearMatMul instead


def test_qat_mobilenet_with_folded_batch_norm_and_depthwise_convs(mnist):
    keras.utils.set_random_seed(7)
    qat = tc.quantize_model(tc.models.tiny_mobilenet())
    qat(mnist.x_train[:256], training=True)  # the first training batch sets the ranges
    content = tc.export_onnx(qat, mode="int8")
    stored = _weight_tensors(content)
    assert len(stored) == 7 and all(w.dtype == np.int8 for w in stored)
    x = mnist.x_test[:300]
    expected = qat.predict(x, verbose=0)
    check_agrees_with_keras(_run(content, x), expected, TOLERANCES["int8"])
    check_agrees_with_keras(_run(content, x, fuse=False), expected, TOLERANCES["fake_quant"])


def test_uint8_activations(qat_cnn, mnist):
    content = tc.export_onnx(qat_cnn.model, mode="int8", activation_type="uint8")
    graph = _graph(content)
    values = _initializers(content)
    activations = {n.input[2] for n in graph.node if n.op_type == "QuantizeLinear"}
    assert {values[name].dtype for name in activations} == {np.dtype(np.uint8)}
    assert [w.dtype for w in _weight_tensors(content)] == [np.int8] * 4
    signed = {n.input[2] for n in _graph(qat_cnn.content).node if n.op_type == "QuantizeLinear"}
    shifted = sorted(int(values[name]) - 128 for name in activations)
    assert shifted == sorted(int(_initializers(qat_cnn.content)[name]) for name in signed)
    expected = qat_cnn.model.predict(mnist.x_test, verbose=0)
    check_agrees_with_keras(_run(content, mnist.x_test), expected, TOLERANCES["int8"])


def test_openvino_runs_the_files(qat_cnn, trained_cnn, mnist):
    """OpenVINO (not in the onnx extra; runs where it is installed) reads both kinds of file."""
    ov = pytest.importorskip("openvino", reason="OpenVINO is not installed")
    core = ov.Core()
    f32 = {"INFERENCE_PRECISION_HINT": "f32"}  # not bf16, on CPUs that have it
    x = mnist.x_test
    content = tc.export_onnx(trained_cnn)
    got = core.compile_model(core.read_model(content, b""), "CPU", f32)(x)[0]
    check_agrees_with_keras(got, trained_cnn.predict(x, verbose=0), TOLERANCES["float32"])
    expected = qat_cnn.model.predict(x, verbose=0)
    for content in (
        qat_cnn.content,
        tc.export_onnx(qat_cnn.model, mode="int8", activation_type="uint8"),
    ):
        got = core.compile_model(core.read_model(content, b""), "CPU", f32)(x)[0]
        check_agrees_with_keras(got, expected, TOLERANCES["int8"])


def test_4bit_weights_keep_15_levels(trained_lenet, mnist):
    qat = tc.quantize_model(trained_lenet, scheme="default_4bit")
    content = tc.export_onnx(qat, mode="int8")
    for q in _weight_tensors(content):
        assert q.dtype == np.int8 and np.abs(q).max() == 7
    expected = qat.predict(mnist.x_test[:500], verbose=0)
    check_agrees_with_keras(_run(content, mnist.x_test[:500]), expected, TOLERANCES["int8"])


def test_pruned_model_keeps_its_zeros(trained_lenet, mnist):
    keras.utils.set_random_seed(0)
    schedule = tc.ConstantSparsity(0.8, begin_step=0, frequency=4)
    pruned = compile_classifier(tc.prune_low_magnitude(trained_lenet, schedule))
    pruned.fit(
        mnist.x_train[:256],
        mnist.y_train[:256],
        batch_size=64,
        verbose=0,
        callbacks=[tc.UpdatePruningStep()],
    )
    content = tc.export_onnx(pruned)  # the wrappers are stripped on the way
    plain = tc.strip_pruning(pruned)
    zeros = sorted((k.size, int(np.sum(k == 0))) for k in _kernels(plain))
    assert sorted((w.size, int(np.sum(w == 0))) for w in _weight_tensors(content)) == zeros
    assert sum(z for _, z in zeros) > 0.75 * sum(s for s, _ in zeros)
    got = _run(content, mnist.x_test)
    check_agrees_with_keras(got, plain.predict(mnist.x_test, verbose=0), TOLERANCES["float32"])
    pqat = tc.quantize_model(plain, scheme="prune_preserve_8bit")
    for kernel, q in zip(_kernels(plain), _weight_tensors(tc.export_onnx(pqat, mode="int8"))):
        assert q.dtype == np.int8 and np.all(q[kernel == 0] == 0)  # Dense: the same [in, out]


def test_clustered_model_keeps_its_shared_values(trained_lenet, mnist):
    clustered = tc.cluster_weights(
        trained_lenet, number_of_clusters=8, cluster_centroids_init="linear"
    )
    content = tc.export_onnx(clustered)  # the wrappers are stripped on the way
    plain = tc.strip_clustering(clustered)
    unique = sorted((k.size, len(np.unique(k))) for k in _kernels(plain))
    assert sorted((w.size, len(np.unique(w))) for w in _weight_tensors(content)) == unique
    assert len(unique) == 3 and max(n for _, n in unique) <= 8
    got = _run(content, mnist.x_test)
    check_agrees_with_keras(got, plain.predict(mnist.x_test, verbose=0), TOLERANCES["float32"])


def test_subclassed_model_with_input_shape(digits):
    class TwoLayer(keras.Model):
        def __init__(self):
            super().__init__()
            self.flatten = keras.layers.Flatten()
            self.dense = keras.layers.Dense(10)

        def call(self, x):
            return self.dense(self.flatten(x))

    model = TwoLayer()
    model(digits.x_test[:1])
    got = _run(tc.export_onnx(model, input_shape=(8, 8, 1)), digits.x_test)
    np.testing.assert_allclose(got, model.predict(digits.x_test, verbose=0), atol=1e-5)
    with pytest.raises(ValueError, match="input_shape"):
        tc.export_onnx(model)
    with pytest.raises(ValueError, match=r"does not fit.*Received: input_shape=\(7,\)"):
        tc.export_onnx(model, input_shape=(7,))


def test_opset(tiny):
    assert onnx.load_from_string(tc.export_onnx(tiny, opset=13)).opset_import[0].version == 13


def test_writes_file_atomically(tiny, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")
    content = tc.export_onnx(tiny, path)
    assert path.read_bytes() == content
    assert os.listdir(tmp_path) == ["model.onnx"]  # no temporary file left behind


def test_failed_export_keeps_existing_file(trained_lenet, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"precious")
    with pytest.raises(ValueError):
        tc.export_onnx(trained_lenet, path, mode="int8")
    assert path.read_bytes() == b"precious"


class TestBadInput:
    def test_unknown_mode(self, trained_lenet):
        with pytest.raises(ValueError, match=r"mode='int4'.*|.*'float32', 'int8'"):
            tc.export_onnx(trained_lenet, mode="int4")

    def test_int8_without_qat(self, trained_lenet):
        with pytest.raises(ValueError, match=r"quantize_model.*Received: mode='int8'"):
            tc.export_onnx(trained_lenet, mode="int8")

    def test_float_for_a_qat_model(self, qat_lenet):
        with pytest.raises(ValueError, match=r"strip_quantization.*Received: mode='float32'"):
            tc.export_onnx(qat_lenet.model)

    @pytest.mark.parametrize("opset", [12, 99, "15", True])
    def test_bad_opset(self, trained_lenet, opset):
        with pytest.raises(ValueError, match=rf"Received: opset={opset!r}"):
            tc.export_onnx(trained_lenet, opset=opset)

    @pytest.mark.parametrize("kwargs", [{"activation_type": "int4"}, {"activation_type": "uint8"}])
    def test_bad_activation_type(self, trained_lenet, kwargs):
        with pytest.raises(
            ValueError, match=rf"Received: activation_type={kwargs['activation_type']!r}"
        ):
            tc.export_onnx(trained_lenet, **kwargs)  # uint8: mode float32 has no activation type

    def test_model_never_built(self):
        with pytest.raises(ValueError, match="never built"):
            tc.export_onnx(keras.Sequential([keras.layers.Dense(3)]))

    def test_not_a_model(self):
        with pytest.raises(TypeError, match="Received: model of type str"):
            tc.export_onnx("model.keras")

    def test_missing_folder(self, trained_lenet, tmp_path):
        with pytest.raises(FileNotFoundError, match="does not exist.*path="):
            tc.export_onnx(trained_lenet, tmp_path / "nope" / "m.onnx")

    @pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
    def test_unwritable_folder(self, trained_lenet):
        # /proc takes no new files even for root (a chmod'ed folder would not stop root)
        with pytest.raises(PermissionError, match=r"`path` is not writable.*path='/proc/m.onnx'"):
            tc.export_onnx(trained_lenet, "/proc/m.onnx")
