"""`compress` with a recipe: parity with the pipelines written out by hand, every step on a
tiny model, outputs, and the errors for bad input."""

import json

import keras
import numpy as np
import pytest
from helpers import compile_classifier

import tfcompress as tc
from tfcompress.core.blocks import BLOCK_SHAPE

OLD_DEMO = {
    "layers": {
        "conv2": {"prune": {"structure": "16x4", "sparsity": 0.8}},
        "fc1": {"prune": {"structure": "16x4", "sparsity": 0.8}},
    },
    "fine_tune": {"epochs": 2},
    "qat": {"epochs": 1},
}


@pytest.fixture(scope="module")
def cnn(mnist):
    """The demo's small CNN, trained for one epoch on 640 MNIST-5k images (10 steps per
    epoch: the demo's schedule, updating every 10 steps, reaches 80% in two epochs)."""
    x, y = mnist.x_train[:640], mnist.y_train[:640]
    keras.utils.set_random_seed(5)
    model = compile_classifier(tc.models.small_cnn())
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    return model, (x, y), (mnist.x_test[:200], mnist.y_test[:200])


def old_demo_pipeline(model, x, y, prune_epochs=2, qat_epochs=1, sparsity=0.8):
    """The demo's pipeline before `compress` (tfcompress/demo.py, run_demo), as reference:
    conv2 and fc1 pruned in 16x4 blocks by a polynomial schedule over half the fine-tuning
    steps, then QAT keeping the zeros, int8 from the QAT ranges."""
    steps = prune_epochs * -(-len(x) // 64)
    schedule = tc.PolynomialDecay(0.0, sparsity, begin_step=0, end_step=steps // 2, frequency=10)
    wrapped = tc.prune_low_magnitude(
        model, schedule, block_size=BLOCK_SHAPE, skip=("conv1", "logits")
    )
    pruned = compile_classifier(wrapped)
    pruned.fit(
        x, y, epochs=prune_epochs, batch_size=64, verbose=0, callbacks=[tc.UpdatePruningStep()]
    )
    compressed = tc.strip_pruning(pruned)
    qat = compile_classifier(tc.quantize_model(compressed, scheme="prune_preserve_8bit"), 1e-4)
    qat.fit(x, y, epochs=qat_epochs, batch_size=64, verbose=0)
    return tc.export_tflite(qat, mode="int8"), tc.strip_quantization(qat)


@pytest.mark.slow
def test_recipe_reproduces_the_old_demo_pipeline(cnn, tmp_path):
    model, (x, y), validation = cnn
    original = [w.copy() for w in model.get_weights()]
    keras.utils.set_random_seed(7)
    expected, expected_model = old_demo_pipeline(model, x, y)
    keras.utils.set_random_seed(7)
    out = tmp_path / "out"
    result = tc.compress(
        model, (x, y), recipe=tc.Recipe.from_dict(OLD_DEMO), output_dir=out, verbose=0,
        latency_runs=5,
    )  # fmt: skip
    assert result.tflite == expected
    for got, want in zip(result.model.get_weights(), expected_model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), original))  # untouched
    sparsity = tc.get_sparsity(result.model)
    assert {k.split("/")[0] for k, v in sparsity.items() if abs(v - 0.8) < 0.01} == {"conv2", "fc1"}
    assert result.targets == {} and result.met and result.recipe == tc.Recipe.from_dict(OLD_DEMO)
    assert result.agreement >= 0.95
    # The outputs: each the object it names, the folder never reused.
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert names == sorted(result.files)
    assert ("kernels.json" in names) == (result.kernels is not None)
    assert {"original.keras", "compressed.keras", "float32.tflite", "model.tflite", "report.html",
            "plots/accuracy_vs_size.png", "plots/choices.png"} <= set(names)  # fmt: skip
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "16x4" in page
    assert (out / "model.tflite").read_bytes() == expected
    assert tc.Recipe.from_file(out / "recipe.yaml") == result.recipe
    saved = json.loads((out / "result.json").read_text())
    assert (
        saved["report"]["after"]["summary"]["gzip_bytes"]
        == result.report.after.summary["gzip_bytes"]
    )
    assert json.loads((out / "report.json").read_text()) == json.loads(result.report.to_json())
    reloaded = keras.models.load_model(out / "compressed.keras")
    np.testing.assert_array_equal(
        reloaded.predict(x[:8], verbose=0), result.model.predict(x[:8], verbose=0)
    )
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(FileExistsError, match="Nothing was overwritten"):
        tc.compress(model, (x, y), validation, recipe=tc.Recipe(), output_dir=out, verbose=0)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not [p for p in before if p.name.startswith(".tfcompress-")]  # no temp files left


def test_int8_only_recipe_is_the_plain_export(cnn):
    """A recipe that changes no layer is int8 export alone (here post-training: QAT with
    the prune-preserving scheme is the old demo's parity above)."""
    model, (x, y), validation = cnn
    recipe = {"qat": {"epochs": 0}, "kernels": "none"}
    result = tc.compress(model, (x, y), validation, recipe=recipe, verbose=0, latency_runs=5)
    assert result.tflite == tc.export_tflite(model, mode="int8", representative_data=x[:200])
    assert result.kernels is None and "kernels: none" in result.notes[0]
    assert result.recipe == tc.Recipe.from_dict(recipe) and not result.files
    after, before = result.report.after.summary, result.report.before.summary
    assert after["tflite_accuracy"] == tc.TFLiteModel(result.tflite).evaluate(*validation)
    assert abs(after["tflite_accuracy"] - before["tflite_accuracy"]) < 0.03
    assert result.agreement > 0.95 and result.report.ratio("tflite_weight_bytes") > 3.9


@pytest.mark.slow
def test_every_step_on_a_tiny_model(digits, capsys):
    """Factorize, prune (two structures), distil, cluster, 4-bit QAT on one small MLP."""
    keras.utils.set_random_seed(9)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu", name="fc1"),
            keras.layers.Dense(32, activation="relu", name="fc2"),
            keras.layers.Dense(32, activation="relu", name="fc3"),
            keras.layers.Dense(10, name="logits"),
        ]
    )
    data = (digits.x_train[:512], digits.y_train[:512])
    compile_classifier(model).fit(*data, epochs=15, verbose=0)
    recipe = tc.Recipe.from_dict(
        {
            "layers": {
                "fc1": {"prune": {"structure": "2:4"}, "bits": 4},
                "fc2": {"rank": 8},
                "fc3": {"prune": {"structure": "unstructured", "sparsity": 0.5}, "cluster": 8},
            },
            "pruning": {"schedule": "constant", "frequency": 1},
            "fine_tune": {"epochs": 1, "batch_size": 32},
            "distillation": {"alpha": 0.5},
            "kernels": "none",
        }
    )
    result = tc.compress(model, data, recipe=recipe, verbose=2, latency_runs=5)
    printed = capsys.readouterr().out
    assert "Pruning fc1 2:4 50%, fc3 unstructured 50%" in printed
    assert "prune_cluster_preserve_8bit, 4-bit fc1" in printed
    assert printed.count("16/16 - ") == 3  # fine-tune, clustering, QAT: Keras' own lines
    plain = result.model
    assert plain.get_layer("fc2").count_params() == 64 * 8 + 8 * 32 + 32  # rank 8 (QAT split it)
    fc1 = plain.get_layer("fc1").kernel.numpy().T.reshape(64, -1, 4)
    assert ((fc1 != 0).sum(-1) <= 2).all()  # 2:4 along the inputs
    fc3 = plain.get_layer("fc3").kernel.numpy()
    assert len(np.unique(fc3)) <= 8 and 0 in fc3 and np.mean(fc3 == 0) >= 0.5
    ops = {op.name: op for op in result.report.after.ops}
    assert result.agreement >= 0.9 and ops
    before, after = result.report.before.summary, result.report.after.summary
    assert before["tflite_accuracy"] > 0.85 and after["tflite_accuracy"] > 0.7, (before, after)


def test_bad_input_is_refused_before_training(cnn, tmp_path):
    model, (x, y), validation = cnn
    recipe = tc.Recipe()
    cases = [
        (dict(recipe={"layers": {"fc9": {"bits": 4}}}), r"No layer named 'fc9'.*'conv2'"),
        (dict(recipe={"layers": {"conv1": {"prune": {"structure": "16x4", "sparsity": 0.5}}}}),
         r"layers\.conv1\.prune: structure '16x4'"),
        (dict(recipe={"layers": {"fc1": {"bits": 4}}, "qat": {"epochs": 0}}), r"layers\.fc1\.bits"),
        (dict(recipe={"layers": {"fc1": {"prune": {"structure": "16x4", "sparsity": 0.5}}},
                      "fine_tune": {"epochs": 0}}), r"fine_tune\.epochs"),
        (dict(), "exactly one of `target`"),
        (dict(recipe=recipe, target=tc.Target(max_bytes=1e4)), "exactly one of `target`"),
        (dict(recipe=recipe, data=(x[:, :20], y)), r"`data\[0\]` has the wrong shape"),
        (dict(recipe=recipe, data=(np.where(x == 0, np.nan, x), y)), r"NaN"),
        (dict(recipe=recipe, data=(x, y + 10)), r"labels must be in \[0, 10\)"),
        (dict(recipe=recipe, data=(x, np.eye(10)[y])), "one integer class label per sample"),
        (dict(recipe=recipe, data=(x, y[:-1])), "640 samples but 639 labels"),
        (dict(recipe=recipe, validation_data=x), r"`validation_data` must be a pair"),
        (dict(recipe=recipe, verbose=3), r"`verbose` must be"),
        (dict(recipe=recipe, latency_runs=0), r"`latency_runs` must be a positive integer"),
        (dict(recipe=recipe, sensitivity=tc.Sensitivity([])), "`sensitivity` is for planning"),
        (dict(recipe=3), "`recipe` must be a Recipe"),
    ]  # fmt: skip
    for given, message in cases:
        arguments = {"data": (x, y), "output_dir": tmp_path / "never", **given}
        with pytest.raises((ValueError, TypeError), match=message):
            tc.compress(model, **arguments)
    assert not (tmp_path / "never").exists()


@pytest.mark.slow
def test_a_target_the_original_meets_changes_nothing(digits):
    """Limits at the float model's own size: the plan changes no layer, and `compress` gives
    what the int8-only recipe gives, byte for byte."""
    keras.utils.set_random_seed(10)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu", name="fc1"),
            keras.layers.Dense(10, name="logits"),
        ]
    )
    data, validation = (digits.x_train[:256], digits.y_train[:256]), (digits.x_test, digits.y_test)
    compile_classifier(model).fit(*data, epochs=5, verbose=0)
    options = {
        "sparsities": (0.5, 0.9),
        "structures": ("unstructured",),
        "bits": (4,),
        "energies": (),
    }
    measured = tc.sensitivity(
        model, data, validation, options=options, latency=False, verbose=False
    )
    target = tc.Target(max_gzip_bytes=measured.model["float_gzip_bytes"])
    keras.utils.set_random_seed(11)
    planned = tc.compress(model, data, validation, target=target, sensitivity=measured, verbose=0,
                          latency_runs=2)  # fmt: skip
    assert not any(layer.changes() for layer in planned.recipe.layers.values())
    keras.utils.set_random_seed(11)
    default = tc.compress(model, data, validation, recipe=tc.Recipe(kernels=planned.recipe.kernels),
                          verbose=0, latency_runs=2)  # fmt: skip
    assert default.tflite == planned.tflite
    met = planned.targets["max_gzip_bytes"]
    assert met["met"] and met["measured"] == planned.report.after.summary["gzip_bytes"]


def test_channels_before_a_factorized_layer_keep_their_zeros(digits):
    """A factorized consumer cannot be shrunk into: the pruned channels stay as zeros, with a
    warning naming the layer, instead of `shrink` failing at the end of fine-tuning."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu", name="fc1"),
            keras.layers.Dense(32, activation="relu", name="fc2"),
            keras.layers.Dense(10, name="logits"),
        ]
    )
    data = (digits.x_train[:256], digits.y_train[:256])
    compile_classifier(model).fit(*data, epochs=2, verbose=0)
    recipe = {
        "layers": {
            "fc1": {"prune": {"structure": "channels", "sparsity": 0.5}},
            "fc2": {"rank": 4},
        },
        "pruning": {"schedule": "constant", "frequency": 1},
        "fine_tune": {"epochs": 1, "batch_size": 32},
        "qat": {"epochs": 0},
        "kernels": "none",
    }
    with pytest.warns(UserWarning, match=r"\['fc1'\] keep their zero channels"):
        result = tc.compress(model, data, recipe=recipe, verbose=0, latency_runs=5)
    kernel = result.model.get_layer("fc1").kernel.numpy()
    assert kernel.shape == (64, 32) and (np.abs(kernel).sum(0) == 0).sum() == 16
