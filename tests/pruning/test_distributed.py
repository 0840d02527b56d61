"""Pruning under tf.distribute.MirroredStrategy on two logical CPU devices."""

import json
import os
import subprocess
import sys

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
from tfcompress.pruning import ConstantSparsity, UpdatePruningStep, get_sparsity

keras.utils.set_random_seed(0)
data = tc.datasets.load_digits()
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = tc.prune_low_magnitude(
        tc.models.lenet_300_100((8, 8, 1)), ConstantSparsity(0.75, 0, frequency=5),
        block_size=(4, 4),
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
history = model.fit(data.x_train, data.y_train, epochs=4, batch_size=64, verbose=0,
                    callbacks=[UpdatePruningStep()])
mask = model.layers[2].masks[0]
print(json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "sparsity": get_sparsity(model),
    "mirrored": type(mask.value).__name__,
    "accuracy": float(np.mean(model.predict(data.x_test, verbose=0).argmax(-1) == data.y_test)),
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
    assert "Mirrored" in out["mirrored"], out
    # 4x4 tiles (8 elements in the partial ones) on kernels of 1,000 elements and more:
    # exact to within one tile, 16 / 1,000
    assert all(abs(v - 0.75) <= 0.016 for v in out["sparsity"].values()), out["sparsity"]
    assert out["accuracy"] > 0.5, out
