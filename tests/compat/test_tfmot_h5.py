"""Models saved by tfmot (tf_keras `.h5`) load into tfcompress's wrappers.

The fixtures (tests/compat/fixtures, made by make_tfmot_h5.py with tfmot 0.8.1,
tf_keras 2.21) are gzipped `.h5` files with, beside each, tfmot's outputs on a
fixed input and the state it saved; tfmot itself is not needed here.
"""

import gzip
import io
import json
import pathlib

import h5py
import keras
import numpy as np
import pytest

import tfcompress as tc
import tfcompress.compat.tfmot as tfmot

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def h5_bytes(name: str) -> bytes:
    return gzip.decompress((FIXTURES / f"{name}.h5.gz").read_bytes())


def load(name: str) -> tuple[keras.Model, dict]:
    expected = dict(np.load(FIXTURES / f"{name}.npz"))
    return tfmot.load_model(io.BytesIO(h5_bytes(name))), expected


def outputs(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(x, training=False))


def wrappers(model: keras.Model, kind: type) -> dict:
    return {layer.layer.name: layer for layer in model.layers if isinstance(layer, kind)}


@pytest.mark.parametrize("name", ["prune_mlp", "prune_cnn", "prune_m_by_n_mlp"])
def test_pruned_model_keeps_masks_step_and_outputs(name, tmp_path):
    path = tmp_path / f"{name}.h5"
    path.write_bytes(h5_bytes(name))
    model, expected = load(name)
    from_path = tfmot.load_model(str(path))
    pruned = wrappers(model, tc.pruning.PruneLowMagnitude)
    kernels = sorted(key.split(".")[0] for key in expected if key.endswith(".mask"))
    assert sorted(pruned) == kernels
    for inner, layer in pruned.items():
        mask = expected[f"{inner}.mask"]
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.masks[0]), mask)
        assert int(layer.pruning_step.numpy()) == int(expected[f"{inner}.pruning_step"])
        kernel = keras.ops.convert_to_numpy(layer.layer.kernel)
        assert np.all(kernel[mask == 0] == 0) and 0.3 < (mask == 0).mean() < 0.7
    # Pruning only masks weights: tfmot's outputs, to float32 rounding.
    np.testing.assert_allclose(outputs(model, expected["x"]), expected["y"], atol=1e-6)
    np.testing.assert_allclose(outputs(from_path, expected["x"]), expected["y"], atol=1e-6)
    plain = tc.strip_pruning(model)
    assert not any(isinstance(layer, tc.pruning.PruneLowMagnitude) for layer in plain.layers)
    np.testing.assert_allclose(outputs(plain, expected["x"]), expected["y"], atol=1e-6)


def test_schedule_and_2_by_4_structure_are_kept():
    model, _ = load("prune_mlp")
    layer = wrappers(model, tc.pruning.PruneLowMagnitude)["fc1"]
    schedule = layer.pruning_schedule
    assert isinstance(schedule, tc.PolynomialDecay)
    assert (schedule.initial_sparsity, schedule.final_sparsity, schedule.end_step) == (0.2, 0.6, 2)
    # tfmot 0.8 does not save `sparsity_m_by_n`, but its 2:4 masks come through whole.
    model, _ = load("prune_m_by_n_mlp")
    mask = keras.ops.convert_to_numpy(wrappers(model, tc.pruning.PruneLowMagnitude)["fc1"].masks[0])
    kept_per_group = mask.T.reshape(-1, 4).sum(axis=1)
    np.testing.assert_array_equal(kept_per_group, 2)


def test_pruned_model_trains_on_from_tfmots_step():
    model, expected = load("prune_cnn")
    layer = wrappers(model, tc.pruning.PruneLowMagnitude)["conv"]
    step = int(layer.pruning_step.numpy())
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.repeat(expected["x"], 4, axis=0)
    model.fit(
        x,
        np.arange(len(x)) % 4,
        batch_size=8,
        epochs=1,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    assert int(layer.pruning_step.numpy()) == step + 2
    sparsity = {path.split("/")[-2]: value for path, value in tc.get_sparsity(model).items()}
    assert sparsity == {"conv": 0.5, "fc": 0.5}


def test_clustered_model_keeps_centroids_and_outputs():
    model, expected = load("cluster_mlp")
    clustered = wrappers(model, tc.clustering.ClusterWeights)
    assert sorted(clustered) == ["fc1", "fc2"]
    for inner, layer in clustered.items():
        centroids = expected[f"{inner}.centroids"]
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.centroids[0]), centroids)
        values = np.unique(keras.ops.convert_to_numpy(layer.clustered_weights()[0]))
        assert set(values) <= set(centroids) and len(values) <= 4
    np.testing.assert_allclose(outputs(model, expected["x"]), expected["y"], atol=1e-5)
    plain = tc.strip_clustering(model)
    assert not any(isinstance(layer, tc.clustering.ClusterWeights) for layer in plain.layers)
    assert len(np.unique(plain.get_layer("fc1").kernel.numpy())) <= 4
    np.testing.assert_allclose(outputs(plain, expected["x"]), expected["y"], atol=1e-5)


def saved_maxima(name: str) -> dict[str, float]:
    """tfmot's saved output range maximum of each QAT wrapper that has one, by wrapper name."""
    maxima = {}
    with h5py.File(io.BytesIO(h5_bytes(name))) as f:
        for layer, group in f["model_weights"].items():
            for n in map(str, group.attrs["weight_names"]):
                if n.endswith(("/post_activation_max:0", "/output_max:0")):
                    maxima[layer] = float(group[n][()])
    return maxima


@pytest.mark.parametrize(
    "name, expected_wrappers",
    [
        ("qat_mlp", ["fc1", "fc2"]),
        ("qat_cnn", ["conv", "fc"]),
        ("qat_conv_bn_relu", ["conv", "fc", "relu"]),
    ],
)
def test_qat_model_keeps_ranges_and_outputs(name, expected_wrappers):
    model, expected = load(name)
    quantized = wrappers(model, tc.quantization.QuantizeWrapper)
    assert sorted(quantized) == expected_wrappers
    maxima = saved_maxima(name)
    ranged = {n: w for n, w in quantized.items() if w.output_ranges is not None}
    loaded = {f"quant_{n}": float(w.output_ranges["max"].numpy()) for n, w in ranged.items()}
    assert maxima and loaded == pytest.approx(maxima)
    # tfcompress takes each weight's range from the weight; tfmot kept the range of the
    # weights before the last step's update. So an output may land one step of the
    # output's int8 grid away from tfmot's, never more; most land on the same value.
    y = outputs(model, expected["x"])
    steps = [
        (float(w.output_ranges["max"].numpy()) - float(w.output_ranges["min"].numpy())) / 255
        for w in ranged.values()
    ]
    assert np.abs(y - expected["y"]).max() <= max(steps) * 1.01
    assert np.mean(np.isclose(y, expected["y"], atol=1e-5)) >= 0.5
    plain = tc.strip_quantization(model)
    assert not any(
        isinstance(layer, (tc.quantization.QuantizeWrapper, tc.quantization.QuantizeLayer))
        for layer in plain.layers
    )
    if name == "qat_conv_bn_relu":  # the int8 file computes on the same grids
        tflite = tc.TFLiteModel(tc.export_tflite(model, mode="int8"))
        assert np.abs(tflite.predict(expected["x"]) - expected["y"]).max() <= max(steps) * 1.01


def test_annotated_model_loads_annotated_and_applies():
    model, expected = load("annotated_mlp")
    annotated = wrappers(model, tc.quantization.QuantizeAnnotate)
    assert sorted(annotated) == ["fc1", "fc2", "flatten"]
    np.testing.assert_allclose(outputs(model, expected["x"]), expected["y"], atol=1e-6)
    quantized = tc.quantize_apply(model)
    assert sorted(wrappers(quantized, tc.quantization.QuantizeWrapper)) == ["fc1", "fc2"]


def test_custom_quantize_config_says_the_way_out():
    with pytest.raises(ValueError, match="'quant_fc'.*FirstKernelConfig.*quantize_model"):
        load("qat_custom_config_mlp")


def test_plain_tf_keras_model_loads():
    # Stripped in tfmot and saved plain: the way out the loader's errors give.
    model, expected = load("plain_mlp")
    assert [type(layer).__name__ for layer in model.layers] == ["Flatten", "Dense", "Dense"]
    np.testing.assert_allclose(outputs(model, expected["x"]), expected["y"], atol=1e-6)
    assert tc.get_sparsity(tc.prune_low_magnitude(model)) is not None


def test_nested_model_is_a_clear_error(tmp_path):
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), keras.layers.Dense(4)])
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2)])
    outer.save(tmp_path / "nested.h5")
    with pytest.raises(ValueError, match="not models themselves"):
        tfmot.load_model(tmp_path / "nested.h5")


def test_not_a_model_file_is_a_clear_error(tmp_path):
    path = tmp_path / "weights.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("kernel", data=np.zeros(3))
    with pytest.raises(ValueError, match="weights only.*model.save"):
        tfmot.load_model(path)
    path.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="filepath.*tf_keras `.h5`"):
        tfmot.load_model(path)


def edited(name: str, edit) -> io.BytesIO:
    """The fixture with its model config changed by `edit(config)`."""
    buffer = io.BytesIO(h5_bytes(name))
    with h5py.File(buffer, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        edit(config)
        f.attrs["model_config"] = json.dumps(config)
    buffer.seek(0)
    return buffer


def test_unsupported_wrappers_say_the_way_out():
    def sparse_clusters(config):
        config["config"]["layers"][2]["config"]["preserve_sparsity"] = True

    with pytest.raises(ValueError, match="'cluster_fc1'.*preserve_sparsity.*strip_clustering"):
        tfmot.load_model(edited("cluster_mlp", sparse_clusters))

    def nested(config):
        layers = config["config"]["layers"]
        layers[2]["config"]["layer"] = {"class_name": "PruneLowMagnitude", "config": {}}

    with pytest.raises(ValueError, match="'prune_low_magnitude_fc1'.*nested.*strip_pruning"):
        tfmot.load_model(edited("prune_mlp", nested))

    def policy(config):
        config["config"]["layers"][2]["config"]["pruning_policy"] = {"class_name": "X"}

    with pytest.raises(ValueError, match="pruning_policy.*strip_pruning"):
        tfmot.load_model(edited("prune_mlp", policy))
