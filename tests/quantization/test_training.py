"""QAT inside Keras' training loop: `.keras` save/load mid-training and resume, and
`tf.distribute.MirroredStrategy` on two logical CPU devices."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
from helpers import compile_classifier

import tfcompress as tc


def test_save_mid_training_load_and_resume(tmp_path, trained_lenet, mnist):
    x, y = mnist.x_train[:512], mnist.y_train[:512]
    keras.utils.set_random_seed(7)
    qat = compile_classifier(tc.quantize_model(trained_lenet), learning_rate=1e-4)
    qat.fit(x, y, epochs=1, batch_size=64, verbose=0, shuffle=False)
    path = str(tmp_path / "qat.keras")
    qat.save(path)
    loaded = keras.models.load_model(path)  # registered classes: no custom_objects needed
    probe = mnist.x_test[:200]
    np.testing.assert_array_equal(loaded.predict(probe, verbose=0), qat.predict(probe, verbose=0))
    ranges = {w.path: w.numpy() for w in qat.weights if "output_m" in w.path}
    assert ranges and all(
        np.array_equal(w.numpy(), ranges[w.path]) for w in loaded.weights if w.path in ranges
    )
    # Resuming from the file continues like training that never stopped (LeNet: no dropout).
    qat.fit(x, y, epochs=1, batch_size=64, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, batch_size=64, verbose=0, shuffle=False)
    np.testing.assert_allclose(
        loaded.predict(probe, verbose=0), qat.predict(probe, verbose=0), rtol=1e-4, atol=1e-4
    )
    content = tc.export_tflite(loaded, mode="int8")
    agree = np.mean(
        tc.TFLiteModel(content).predict(probe).argmax(-1)
        == loaded.predict(probe, verbose=0).argmax(-1)
    )
    assert agree >= 0.99


SCRIPT = """
import json
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
import keras
import numpy as np
import tfcompress as tc

keras.utils.set_random_seed(0)
data = tc.datasets.load_digits()
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = tc.quantize_model(tc.models.lenet_300_100((8, 8, 1)))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(data.x_train, data.y_train, epochs=6, batch_size=64, verbose=0)
ranges = model.get_layer("quant_fc1").output_ranges
pred = model.predict(data.x_test, verbose=0)
content = tc.export_tflite(model, mode="int8")
lite = tc.TFLiteModel(content).predict(data.x_test)
print(json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "range": [float(ranges["min"].numpy()), float(ranges["max"].numpy())],
    "mirrored": type(ranges["max"].value).__name__,
    "accuracy": float(np.mean(pred.argmax(-1) == data.y_test)),
    "agreement": float(np.mean(pred.argmax(-1) == lite.argmax(-1))),
}))
"""


def test_mirrored_strategy_two_cpus():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2, out
    assert "Mirrored" in out["mirrored"] or "Distributed" in out["mirrored"], out
    low, high = out["range"]
    assert low == 0.0 and 0.0 < high < 6.0, out  # set from data (ReLU), not the -6..6 start
    assert out["accuracy"] > 0.7, out
    assert out["agreement"] >= 0.98, out
