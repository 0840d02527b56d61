"""One worker of the multi-worker tests: trains each technique with `model.fit` and saves its state.

Run with `TF_CONFIG` set (one worker of a cluster) or without (the single-process reference, on
the same strategy class with one worker). Arguments: the output folder, the epochs, and
optionally `faults`.

* Default: trains a plain model, two pruned ones (unstructured, 16x4 blocks), QAT, clustering,
  a Distiller, then (`more_techniques`) global Taylor pruning and QAT folding a BN with learned
  ranges, and under `TFCOMPRESS_FULL_MATRIX=1` a factorized model and a Distiller on cached
  teacher outputs; writes `state_<task>.npz` (every weight and optimizer variable of every
  model, by name), `logs_<task>.json` (the histories) and, on the chief only, `qat.tflite`.
* `faults`: trains a pruned and a QAT model with `keras.callbacks.BackupAndRestore` (one
  backup folder per worker); where `TFCOMPRESS_TEST_FAULT` names one of them ("pruned",
  "qat"), worker 1 SIGKILLs itself in the middle of that model's second epoch. Run again, it
  resumes from the backups. Writes `faults_<task>.npz`, and appends each epoch's start to
  `epochs_<task>.txt`.
"""

import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfcompress as tc  # noqa: E402
from tfcompress.utils.io import atomic_write_bytes  # noqa: E402

GLOBAL_BATCH, SAMPLES = 96, 576  # 6 global steps per epoch; a batch splits evenly on 2 or 3


def dataset(x, y):
    """The same global batches in the same order on every worker and in the reference."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH, drop_remainder=True)
    return data.with_options(options)


def mlp(hidden: int = 32, name: str = "mlp") -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(hidden, activation="relu", name="fc1"),
            keras.layers.Dense(10, name="fc2"),
        ],
        name=name,
    )


def compile_(model: keras.Model) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def state(technique: str, model: keras.Model, trainer: keras.Model | None = None) -> dict:
    """Every weight of `model` by path, and the step count of the optimizer that trained it."""
    values = {f"{technique}:{w.path}": keras.ops.convert_to_numpy(w) for w in model.weights}
    optimizer = (trainer or model).optimizer
    for variable in optimizer.variables:
        values[f"{technique}:optimizer/{variable.path}"] = keras.ops.convert_to_numpy(variable)
    values[f"{technique}:optimizer_iterations"] = keras.ops.convert_to_numpy(optimizer.iterations)
    return values


class KillMidEpoch(keras.callbacks.Callback):
    """SIGKILLs this process at `batch` of `epoch`: a worker lost without any warning."""

    def __init__(self, epoch: int, batch: int):
        super().__init__()
        self.kill_epoch, self.kill_batch, self.epoch = epoch, batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == (self.kill_epoch, self.kill_batch):
            os.kill(os.getpid(), signal.SIGKILL)


class EpochLog(keras.callbacks.Callback):
    """Appends `name epoch optimizer-steps` to `path` as each epoch begins: shows where a
    restarted run resumed, and with which optimizer state."""

    def __init__(self, path: str, name: str):
        super().__init__()
        self.path, self.name = path, name

    def on_epoch_begin(self, epoch, logs=None):
        steps = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        with open(self.path, "a") as f:
            f.write(f"{self.name} {epoch} {steps}\n")


def task_index():
    return json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {}).get("index", "single")


def digits_dataset():
    digits = tc.datasets.load_digits()
    return dataset(digits.x_train[:SAMPLES], digits.y_train[:SAMPLES])


SCHEDULE = tc.PolynomialDecay(0.0, 0.75, begin_step=0, end_step=9, frequency=3)


def faults(out: str, epochs: int) -> None:
    strategy = tc.distribute.MultiWorkerMirroredStrategy()
    task, data, fault = task_index(), digits_dataset(), os.environ.get("TFCOMPRESS_TEST_FAULT")
    keras.utils.set_random_seed(0)
    with strategy.scope():
        pruned = compile_(tc.prune_low_magnitude(mlp(name="pruned"), SCHEDULE))
        qat = compile_(tc.quantize_model(mlp(name="qat")))
    saved = {}
    for name, model, callbacks in (("pruned", pruned, [tc.UpdatePruningStep()]), ("qat", qat, [])):
        folder = tc.distribute.worker_dir(os.path.join(out, f"backup_{name}"), strategy)
        # Before UpdatePruningStep, which reads the restored step; kept after training, so
        # that a run restarted after this model finished skips it (zero epochs left).
        backup = keras.callbacks.BackupAndRestore(folder, delete_checkpoint=False)
        log = EpochLog(os.path.join(out, f"epochs_{task}.txt"), name)
        callbacks = [backup, *callbacks, log]
        if fault == name and task == 1:
            callbacks.append(KillMidEpoch(epoch=1, batch=3))
        model.fit(data, epochs=epochs, verbose=0, callbacks=callbacks)
        saved.update(state(name, model))
    np.savez(os.path.join(out, f"faults_{task}.npz"), **saved)


def conv_bn(name: str) -> keras.Model:
    """A conv whose BatchNormalization QAT folds (trained on batch statistics), then a head."""
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, use_bias=False, name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.ReLU(),
            keras.layers.Flatten(),
            keras.layers.Dense(10, name="logits"),
        ],
        name=name,
    )


def more_techniques(plain: keras.Model, epochs: int) -> tuple[dict, dict]:
    """Inside the strategy's scope: global Taylor pruning and QAT folding a BN with learned
    ranges; with `TFCOMPRESS_FULL_MATRIX=1`, also factorization then fine-tuning, and a
    Distiller on cached teacher outputs (both need nothing of their own under a strategy)."""
    fit = {"epochs": epochs, "verbose": 0}
    saved, logs = {}, {}
    pruned = tc.prune_low_magnitude(
        mlp(name="global_taylor"), SCHEDULE, scope="global", importance="taylor"
    )
    logs["global_taylor"] = (
        compile_(pruned).fit(digits_dataset(), **fit, callbacks=[tc.UpdatePruningStep()]).history
    )
    saved.update(state("global_taylor", pruned))
    scheme = tc.quantization.QuantizeScheme(learned_ranges=True)
    folded = compile_(tc.quantize_model(conv_bn("folded"), scheme))
    logs["folded"] = folded.fit(digits_dataset(), **fit).history
    saved.update(state("folded", folded))
    if os.environ.get("TFCOMPRESS_FULL_MATRIX") != "1":
        return saved, logs
    factorized = tc.factorize(plain, rank=4)
    factorized.trainable = True  # `plain` is the Distiller's teacher, which froze it
    factorized = compile_(factorized)
    logs["factorized"] = factorized.fit(digits_dataset(), **fit).history
    saved.update(state("factorized", factorized))
    digits = tc.datasets.load_digits()
    x, y = digits.x_train[:SAMPLES], digits.y_train[:SAMPLES]
    student = mlp(8, name="cached_student")
    cached = tc.Distiller(plain, student, alpha=0.5, cache_teacher_outputs=True)
    cached.compile(
        keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    logs["cached"] = cached.fit(x, y, batch_size=GLOBAL_BATCH, shuffle=False, **fit).history
    saved.update(state("cached", cached.student, cached))
    saved["cached:teacher_outputs"] = cached.teacher_outputs(x)["0"]
    return saved, logs


def main(out: str, epochs: int) -> None:
    strategy = tc.distribute.MultiWorkerMirroredStrategy()
    task, data = task_index(), digits_dataset()
    fit = {"epochs": epochs, "verbose": 0}
    prune_fit = {**fit, "callbacks": [tc.UpdatePruningStep()]}
    saved, logs = {}, {}
    keras.utils.set_random_seed(0)
    with strategy.scope():
        plain = compile_(mlp())
        logs["plain"] = plain.fit(data, **fit).history
        saved.update(state("plain", plain))
        for name, blocks in (("unstructured", (1, 1)), ("blocks", (16, 4))):
            pruned = tc.prune_low_magnitude(mlp(name=name), SCHEDULE, block_size=blocks)
            logs[name] = compile_(pruned).fit(data, **prune_fit).history
            saved.update(state(name, pruned))
        qat = compile_(tc.quantize_model(plain))
        logs["qat"] = qat.fit(data, **fit).history
        saved.update(state("qat", qat))
        clustered = tc.cluster_weights(mlp(name="clustered"), number_of_clusters=8)
        logs["clustered"] = compile_(clustered).fit(data, **fit).history
        saved.update(state("clustered", clustered))
        distiller = tc.Distiller(plain, mlp(8, name="student"), alpha=0.5)
        distiller.compile(
            keras.optimizers.Adam(3e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        logs["distiller"] = distiller.fit(data, **fit).history
        saved.update(state("distiller", distiller.student, distiller))
        more_saved, more_logs = more_techniques(plain, epochs)
        saved.update(more_saved)
        logs.update(more_logs)
    content = tc.export_tflite(qat, mode="int8")  # every worker converts; only the chief writes
    if tc.distribute.is_chief(strategy):
        atomic_write_bytes(os.path.join(out, "qat.tflite"), content)
    saved["replicas"] = np.array(strategy.num_replicas_in_sync)
    np.savez(os.path.join(out, f"state_{task}.npz"), **saved)
    with open(os.path.join(out, f"logs_{task}.json"), "w") as f:
        json.dump(logs, f)


if __name__ == "__main__":
    (faults if sys.argv[3:] == ["faults"] else main)(sys.argv[1], int(sys.argv[2]))
