"""Per layer-option costs against hand computation, and the per-CPU latency cache."""

import gzip
import json
import os

import keras
import numpy as np

import tfcompress as tc
from tfcompress.planning import LayerOption, costs, latency_cache
from tfcompress.planning.changes import changed_kernels, fake_quant


def _dense(inputs=8, units=16, seed=0):
    layer = keras.layers.Dense(units, name="fc")
    layer.build((None, inputs))
    rng = np.random.default_rng(seed)
    layer.kernel.assign(rng.normal(size=(inputs, units)).astype("float32"))
    layer.bias.assign(rng.normal(size=units).astype("float32"))
    return layer


def _gz(*parts, level=9):
    return len(gzip.compress(b"".join(parts), compresslevel=level, mtime=0))


def test_dense_costs_match_hand_computation():
    layer = _dense()
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.weights)
    f32 = bias.astype("<f4").tobytes()

    base = costs.baseline_cost(layer)
    assert (base.params, base.nonzeros, base.macs) == (144, 144, 128)
    assert base.bytes == 4 * 144
    assert base.gzip_bytes == _gz(np.ascontiguousarray(kernel.T).astype("<f4").tobytes(), f32)

    # 4 bits: per output channel (a row of TFLite's [out, in]), scale = max|w| / 7.
    rows = kernel.T
    scale = np.abs(rows).max(axis=1) / 7
    scaled = rows / scale[:, None]
    q = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5), -7, 7)  # TFLite's rounding
    four = costs.option_cost(layer, LayerOption("bits", bits=4))
    assert four.bytes == 128 + 4 * 16 + 4 * 16  # int8 containers, float32 scales, int32 bias
    assert four.gzip_bytes == _gz(q.astype(np.int8).tobytes(), scale.astype("<f4").tobytes(), f32)
    assert four.nonzeros == np.count_nonzero(q) + 16
    np.testing.assert_allclose(fake_quant(kernel, 4), (q * scale[:, None]).T, rtol=1e-6)

    pruned = costs.option_cost(layer, LayerOption("prune", structure="unstructured", sparsity=0.5))
    assert (pruned.params, pruned.nonzeros, pruned.macs, pruned.bytes) == (144, 80, 64, 256)

    rank = costs.option_cost(layer, LayerOption("rank", rank=2))
    assert (rank.params, rank.macs) == (2 * (8 + 16) + 16, 2 * (8 + 16))
    assert rank.bytes == (2 * 8 + 4 * 2) + (16 * 2 + 4 * 16) + 4 * 16
    # The reconstruction is the best rank-2 approximation: its error is the discarded energy.
    (approx,) = changed_kernels(layer, LayerOption("rank", rank=2))
    s = np.linalg.svd(kernel, compute_uv=False)
    np.testing.assert_allclose(np.sum((kernel - approx) ** 2), np.sum(s[2:] ** 2), rtol=1e-4)

    # Above SAMPLE_BYTES, level 6 scaled by a sample's level 9 / 6: close to level 9, which
    # level 6 alone is not on sparse 4-bit weights (the file size the reports measure).
    rng = np.random.default_rng(1)
    values = rng.integers(-7, 8, 3 * costs.SAMPLE_BYTES).astype(np.int8)
    sparse = np.where(rng.random(values.size) < 0.97, 0, values).tobytes()
    exact, level6 = _gz(sparse), _gz(sparse, level=6)
    assert abs(costs.gzip_bytes(sparse) - exact) < 0.01 * exact < 0.1 * (level6 - exact)

    conv = keras.layers.Conv2D(8, 3)
    conv.build((None, 10, 10, 4))
    assert costs.baseline_cost(conv).macs == 8 * 8 * 3 * 3 * 4 * 8


def test_latency_measured_once_per_cpu(tmp_path, monkeypatch):
    layer = _dense(inputs=64, units=32)
    block = LayerOption("prune", structure="16x4", sparsity=0.9)
    bits = LayerOption("bits", bits=8)
    kernels = {o.key: changed_kernels(layer, o) for o in (block, bits)}
    exports = []
    real_export = costs.export_tflite
    monkeypatch.setattr(
        costs, "export_tflite", lambda *a, **k: exports.append(1) or real_export(*a, **k)
    )

    def measure():
        cache = latency_cache.LatencyCache(tmp_path)
        found = costs.layer_latencies(layer, [None, block, bits], kernels, cache)
        cache.save()
        return cache, found

    cache, first = measure()
    assert len(exports) == 2  # the dense layer (baseline and bits:8) and the 16x4 blocks
    assert first["bits:8"] == first["baseline"] and first["baseline"][0] > 0
    assert first["prune:16x4:0.9"][0] == first["baseline"][0]  # the interpreter runs it dense
    for ms in (first["baseline"][1], first["prune:16x4:0.9"][1]):
        assert ms is None or ms > 0  # None where our kernels claim no node
    with open(cache.path) as f:
        stored = json.load(f)
    assert stored["cpu"] == latency_cache.cpu_id() and len(stored["entries"]) == 2
    assert os.path.basename(cache.path) == f"latency-{latency_cache.cpu_id()}.json"

    _, second = measure()
    assert len(exports) == 2 and second == first  # read back, not measured again

    monkeypatch.setattr(latency_cache, "cpu_id", lambda: "another-cpu")
    other, _ = measure()
    assert len(exports) == 4 and other.path != cache.path

    def missing(**kwargs):
        raise tc.kernels.KernelsNotBuiltError("not built")

    monkeypatch.setattr(latency_cache, "KernelDelegate", missing)
    content = tc.export_tflite(costs._single_layer_model(layer, None, None), mode="float32")
    timed = latency_cache.measure_latency(content, np.zeros((1, 64), "float32"))
    assert timed["latency_ms"] > 0 and timed["latency_ms_kernels"] is None


def test_four_bits_are_timed_as_exported(tmp_path):
    """`bits:4` gets its own latency entry, from a one-op file whose kernel is a packed INT4
    tensor holding the option's 4-bit values (as `compress` exports them); our kernels do not
    claim it."""
    layer = keras.layers.Conv2D(8, 3, name="conv")
    layer.build((None, 8, 8, 4))
    layer.kernel.assign(np.random.default_rng(2).normal(size=(3, 3, 4, 8)).astype("float32"))
    four, eight = LayerOption("bits", bits=4), LayerOption("bits", bits=8)
    kernels = {o.key: changed_kernels(layer, o) for o in (four, eight)}
    content, _ = costs.single_layer_tflite(layer, four, kernels["bits:4"])
    (stored,) = [t for t in tc.TFLiteFile(content).tensors if t.dtype == "int4"]
    expected = np.transpose(kernels["bits:4"][0], (3, 0, 1, 2))  # TFLite's [out, h, w, in]
    scale = np.asarray(stored.scale)[:, None, None, None]
    np.testing.assert_allclose(stored.data * scale, expected, rtol=1e-5, atol=1e-7)
    assert set(np.unique(np.abs(stored.data))) <= set(range(8))

    cache = latency_cache.LatencyCache(tmp_path)
    found = costs.layer_latencies(layer, [None, eight, four], kernels, cache)
    default_key, kernels_key = costs.latency_keys(layer, four, kernels["bits:4"])
    assert default_key == kernels_key and default_key.endswith("|bits4")
    assert default_key != costs.latency_keys(layer, eight, kernels["bits:8"])[0]
    assert found["bits:4"] == (cache.get(default_key)["latency_ms"], None)
    assert found["bits:4"][0] > 0 and found["bits:8"] == found["baseline"]
