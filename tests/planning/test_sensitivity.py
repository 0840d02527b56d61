"""`tc.sensitivity`: parity where an option changes nothing, the downstream-only path against
the full model, argument errors, a JSON round trip, and a keras.applications smoke run."""

import keras
import numpy as np
import pytest
from helpers import compile_classifier

import tfcompress as tc
from tfcompress.planning import LayerOption, Sensitivity
from tfcompress.planning.changes import fake_quant, prune_mask
from tfcompress.planning.evaluation import changed_outputs
from tfcompress.planning.sensitivity import _distribution, _is_probability

BLOCKS = LayerOption("prune", structure="16x4", sparsity=0.5)
NO_LATENCY = {"latency": False, "verbose": False}


@pytest.fixture(scope="module")
def mlp(digits):
    keras.utils.set_random_seed(4)
    model = compile_classifier(
        keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                keras.layers.Flatten(name="flatten"),
                keras.layers.Dense(32, activation="relu", name="fc1"),
                keras.layers.Dense(10, name="logits"),
            ],
            name="mlp",
        ),
        learning_rate=3e-3,
    )
    model.fit(digits.x_train, digits.y_train, epochs=4, batch_size=64, verbose=0)
    return model


def test_unchanging_options_have_no_effect_and_results_round_trip(mlp, digits, tmp_path):
    # fc1 already 16x4-sparse at 50%, logits already on the 8-bit grid: those options change
    # nothing, so they must measure as no change at all.
    fc1, logits = mlp.get_layer("fc1"), mlp.get_layer("logits")
    kernel = keras.ops.convert_to_numpy(fc1.kernel)
    fc1.kernel.assign(kernel * prune_mask(kernel, BLOCKS))
    logits.kernel.assign(fake_quant(keras.ops.convert_to_numpy(logits.kernel), 8))
    before = [w.copy() for w in mlp.get_weights()]
    heavy = LayerOption("prune", structure="unstructured", sparsity=0.95)
    options = {"fc1": [BLOCKS, heavy], "logits": [LayerOption("bits", bits=8)]}
    val = (digits.x_test, digits.y_test)
    result = tc.sensitivity(mlp, digits.x_train[:300], val, options=options, **NO_LATENCY)

    for layer, key in (("fc1", BLOCKS.key), ("logits", "bits:8")):
        entry = result.entry(layer, key)
        assert entry.accuracy_drop == 0 and entry.agreement == 1 and entry.kl < 1e-9, entry
    worst = result.entry("fc1", heavy.key)
    assert worst.kl > 0.01 and worst.agreement < 1 and worst.accuracy_drop != 0
    assert worst.nonzeros < result.entry("fc1", BLOCKS.key).nonzeros
    for now, then in zip(mlp.get_weights(), before):
        np.testing.assert_array_equal(now, then)  # the model's weights are put back
    accuracy = np.mean(mlp.predict(digits.x_test, verbose=0).argmax(-1) == digits.y_test)
    assert result.model["accuracy"] == pytest.approx(accuracy)
    assert result.model["latency_ms"] is None and result.model["seconds"] > 0
    assert result.model["float_gzip_bytes"] > result.model["int8_gzip_bytes"] > 0
    assert result.model["float_bytes"] > result.model["int8_bytes"] > 0
    # fc1 is half pruned: its MACs (and so the model's) count the non-zero weights only.
    assert result.model["macs"] == 64 * 32 // 2 + 32 * 10 == result.baseline("fc1").macs + 320

    loaded = Sensitivity.load(result.save(tmp_path / "sensitivity.json"))
    assert loaded.to_dict() == result.to_dict() and "prune:16x4:0.5" in str(loaded)
    drawn = loaded.plot(tmp_path / "sensitivity.png")  # the numbers drawn are the JSON's
    assert (tmp_path / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"
    points = {
        (series["layer"], key): y
        for panel in drawn["panels"]
        for series in panel["series"]
        for key, y in zip(series["keys"], series["y"])
    }
    assert points == {
        (e.layer, e.key): e.accuracy_drop for e in result.entries if e.option is not None
    }

    # Without labels: no accuracy drop, the same divergence measures.
    unlabelled = tc.sensitivity(mlp, digits.x_test, options=options, **NO_LATENCY)
    assert unlabelled.entry("fc1", heavy.key).accuracy_drop is None
    assert unlabelled.entry("fc1", heavy.key).kl == pytest.approx(worst.kl, rel=1e-5)
    assert unlabelled.model["accuracy"] is None


def test_downstream_path_matches_the_full_model(digits):
    keras.utils.set_random_seed(5)
    inputs = keras.Input((8, 8, 1))
    a = keras.layers.Dense(16, activation="relu", name="a")(keras.layers.Flatten()(inputs))
    b = keras.layers.Dense(16, activation="relu", name="b")(a)
    merged = keras.layers.Add()([a, b])  # a skip connection around b
    outputs = keras.layers.Dense(10, name="out")(keras.layers.Dense(16, name="c")(merged))
    model = keras.Model(inputs, outputs)
    x = digits.x_test[:100]
    for name in ("a", "b", "c"):
        layer = model.get_layer(name)
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        variants = [[fake_quant(kernel, 4)], [kernel * prune_mask(kernel, BLOCKS)]]
        found = {}
        for split in (True, False):
            runs = found.setdefault(split, {})
            used = changed_outputs(
                model,
                layer,
                variants,
                x,
                32,
                lambda start, i, out, runs=runs: runs.setdefault(i, []).append(out),
                split=split,
            )
            assert used is split
        for i in range(2):
            np.testing.assert_allclose(
                np.concatenate(found[True][i]), np.concatenate(found[False][i]), atol=1e-5
            )
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel), kernel)

    def fail(start, index, outputs):
        raise RuntimeError("stop")

    kernel = keras.ops.convert_to_numpy(model.get_layer("b").kernel)
    with pytest.raises(RuntimeError, match="stop"):
        changed_outputs(model, model.get_layer("b"), [[0 * kernel]], x, 32, fail)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.get_layer("b").kernel), kernel)


def test_softmax_only_for_logits():
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 3.0]])
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert not _is_probability(logits) and _is_probability(probabilities)
    np.testing.assert_allclose(_distribution(logits, False), probabilities)
    np.testing.assert_allclose(_distribution(probabilities, True), probabilities)
    sigmoid = _distribution(np.array([[0.0], [np.log(3.0)]]), False)  # one logit: binary
    np.testing.assert_allclose(sigmoid, [[0.5, 0.5], [0.25, 0.75]])


def test_argument_errors(mlp, digits):
    x, y = digits.x_test[:50], digits.y_test[:50]
    with pytest.raises(ValueError, match=r"'nope' \(no such layer\).*'fc1', 'logits'"):
        tc.sensitivity(mlp, x, layers=["nope"], **NO_LATENCY)
    with pytest.raises(ValueError, match=r"'flatten' \(has no weights an option changes\)"):
        tc.sensitivity(mlp, x, options={"flatten": [BLOCKS]}, **NO_LATENCY)
    bad = x.copy()
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="`data` holds 1 NaN"):
        tc.sensitivity(mlp, bad, **NO_LATENCY)
    with pytest.raises(ValueError, match="`data` holds no samples"):
        tc.sensitivity(mlp, x[:0], **NO_LATENCY)
    with pytest.raises(ValueError, match="wrong shape"):
        tc.sensitivity(mlp, x[:, :4], **NO_LATENCY)
    with pytest.raises(ValueError, match="50 samples but 49 labels"):
        tc.sensitivity(mlp, (x, y[:49]), **NO_LATENCY)
    with pytest.raises(ValueError, match=r"labels of `validation_data`.*shape \(50,\)"):
        tc.sensitivity(mlp, x, validation_data=(x, np.zeros((50, 3))), **NO_LATENCY)
    with pytest.raises(ValueError, match="`validation_data` must be a tuple"):
        tc.sensitivity(mlp, x, validation_data=x, **NO_LATENCY)
    with pytest.raises(ValueError, match=r"'prune:16x4:0.5' does not fit layer 'logits'"):
        tc.sensitivity(mlp, x, options={"logits": [BLOCKS]}, **NO_LATENCY)
    with pytest.raises(ValueError, match=r"options\['structures'\].*\['4x4'\]"):
        tc.sensitivity(mlp, x, options={"structures": ("4x4",)}, **NO_LATENCY)
    with pytest.raises(ValueError, match="mixes"):
        tc.sensitivity(mlp, x, options={"bits": (8,), "fc1": [BLOCKS]}, **NO_LATENCY)
    with pytest.raises(ValueError, match="batch_size=0"):
        tc.sensitivity(mlp, x, batch_size=0, **NO_LATENCY)
    with pytest.raises(ValueError, match="never built"):
        tc.sensitivity(keras.Sequential([keras.layers.Dense(3)]), x, **NO_LATENCY)


@pytest.mark.slow  # MobileNetV2's float and int8 exports take most of the time
def test_mobilenet_v2_smoke():
    keras.utils.set_random_seed(6)
    model = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10
    )
    x = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype("float32")
    names = ["Conv1", "block_1_depthwise", "block_16_project", "predictions"]
    options = {"sparsities": (0.5,), "structures": ("unstructured",), "bits": (8,)}
    result = tc.sensitivity(model, x, layers=names, options=options, **NO_LATENCY)
    assert result.layers == names
    assert [o.key for o in result.options("block_1_depthwise")] == ["bits:8"]
    assert "prune:unstructured:0.5" in [o.key for o in result.options("Conv1")]
    for entry in result.entries:
        assert 0 <= entry.agreement <= 1 and np.isfinite(entry.kl) and entry.kl >= 0
    assert result.model["accuracy"] is None  # no labels


def test_channel_options_only_where_shrink_can_remove_the_channels():
    """Channels reaching an Add, a depthwise convolution, several layers or the model output
    stay: no default channel option there, and an explicit one is an error naming the layer."""
    from tfcompress.planning.arguments import layer_options

    L = keras.layers
    inputs = keras.Input((8, 8, 3))
    stem = L.Conv2D(8, 3, padding="same", name="stem")(inputs)  # read by two layers
    y = L.Conv2D(16, 1, name="expand")(stem)  # into a depthwise convolution
    y = L.DepthwiseConv2D(3, padding="same", name="dw")(y)
    y = L.Conv2D(8, 1, name="project")(y)  # into an Add
    x = L.Add()([stem, y])
    x = L.ReLU()(L.Conv2D(8, 1, name="mid")(x))  # through a ReLU into one conv: removable
    x = L.Conv2D(8, 1, name="next")(x)  # through the pooling into the Dense: removable
    outputs = L.Dense(4, name="logits")(L.GlobalAveragePooling2D()(x))  # the model output
    model = keras.Model(inputs, outputs)
    channels = {
        layer.name: [o for o in found if o.structure == "channels"]
        for layer, found in layer_options(model, None, None)
    }
    assert {name for name, found in channels.items() if found} == {"mid", "next"}
    assert set(channels) >= {"stem", "expand", "project", "mid", "next", "logits"}
    x = np.random.default_rng(0).random((8, 8, 8, 3), dtype=np.float32)
    option = LayerOption("prune", structure="channels", sparsity=0.5)
    with pytest.raises(ValueError, match=r"'project'.*reach an Add"):
        tc.sensitivity(model, x, options={"project": [option]})
    ((layer, found),) = layer_options(model, {"mid": [option]}, None)
    assert (layer.name, found) == ("mid", [option])
