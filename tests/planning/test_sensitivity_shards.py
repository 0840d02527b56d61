"""`tc.sensitivity` in shards: merged shards equal the unsharded result, entry for entry, in
one process and with `processes=2`; `Sensitivity.merge` names what is missing or duplicated."""

import dataclasses

import keras
import pytest
from helpers import compile_classifier

import tfcompress as tc
from tfcompress.planning import Sensitivity, Target, plan

OPTIONS = {"sparsities": (0.5,), "structures": ("unstructured",), "bits": (4,)}
OPTIONS["energies"] = (0.9,)  # a rank option too: its SVD is computed per shard


@pytest.fixture(scope="module")
def model_and_data(digits):
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(24, activation="relu", name="fc1"),
            keras.layers.Dense(16, activation="relu", name="fc2"),
            keras.layers.Dense(10, name="logits"),
        ],
        name="mlp3",
    )
    compile_classifier(model, learning_rate=3e-3)
    model.fit(digits.x_train, digits.y_train, epochs=2, batch_size=64, verbose=0)
    return model, digits.x_train[:200], (digits.x_test[:200], digits.y_test[:200])


def _same(merged: Sensitivity, whole: Sensitivity, timed: bool = False) -> None:
    assert [dataclasses.astuple(e) for e in merged.entries] == [
        dataclasses.astuple(e) for e in whole.entries
    ]
    drop = {"seconds", "latency_ms"} if timed else {"seconds"}  # the model's: timed each run
    assert {k: v for k, v in merged.model.items() if k not in drop} == {
        k: v for k, v in whole.model.items() if k not in drop
    }
    assert merged.shard is None and merged.layers == whole.layers


def test_shards_merge_to_the_whole_and_bad_merges_are_named(model_and_data, tmp_path):
    model, x, val = model_and_data
    args = {"options": OPTIONS, "latency": False, "verbose": False, "batch_size": 64}
    whole = tc.sensitivity(model, x, val, **args)
    parts = [tc.sensitivity(model, x, val, shard=(i, 3), **args) for i in range(3)]
    assert sum(len(p.entries) for p in parts) == len(whole.entries)
    assert all(0 < len(p.entries) < len(whole.entries) for p in parts)
    assert parts[0].model.get("int8_bytes") is None and parts[2].model["int8_bytes"]
    for index, part in enumerate(parts):  # shards round-trip through JSON
        part.save(tmp_path / f"shard_{index}.json")
    loaded = [Sensitivity.load(tmp_path / f"shard_{i}.json") for i in (2, 0, 1)]
    _same(Sensitivity.merge(loaded), whole)

    with pytest.raises(ValueError, match=r"shard\(s\) \[1\] of 3 are missing"):
        Sensitivity.merge([parts[0], parts[2]])
    with pytest.raises(ValueError, match=r"shard\(s\) \[0\] of 3 are given twice"):
        Sensitivity.merge([parts[0], parts[0], parts[1], parts[2]])
    with pytest.raises(ValueError, match=r"`shards\[1\]` is not a shard"):
        Sensitivity.merge([parts[0], whole])
    other = tc.sensitivity(model, x, (val[0][:199], val[1][:199]), shard=(1, 3), **args)
    with pytest.raises(ValueError, match=r"`shards\[1\]` \(shard 1\) measured another model"):
        Sensitivity.merge([parts[0], other, parts[2]])
    halves = tc.sensitivity(model, x, val, shard=(0, 2), **args)
    with pytest.raises(ValueError, match="shard 0 of 2, `shards.0.` one of 3"):
        Sensitivity.merge([parts[0], halves])
    gutted = Sensitivity(parts[1].entries[1:], parts[1].model)
    lost = parts[1].entries[0]
    with pytest.raises(ValueError, match=f"pairs in no shard: {lost.layer}/{lost.key}"):
        Sensitivity.merge([parts[0], gutted, parts[2]])
    with pytest.raises(ValueError, match="shard 2 of 3: merge every shard"):
        plan(model, parts[2], Target(max_gzip_bytes=10_000))
    for bad, match in (
        ({"shard": (3, 3)}, r"0 <= index < count. Received: shard=\(3, 3\)"),
        ({"shard": (0, 2), "processes": 2}, "pass `shard` or `processes`, not both"),
        ({"processes": 0}, "processes=0"),
    ):
        with pytest.raises(ValueError, match=match):
            tc.sensitivity(model, x, val, **args, **bad)


@pytest.mark.slow  # the child process imports TensorFlow (10-20 s on the shared 2-core EPYC)
def test_two_processes_equal_one(model_and_data, tmp_path):
    model, x, val = model_and_data
    args = {"options": OPTIONS, "verbose": False, "cache_dir": tmp_path, "layers": ["fc1", "fc2"]}
    whole = tc.sensitivity(model, x, val, **args)  # measures latencies into the cache
    merged = tc.sensitivity(model, x, val, processes=2, **args)  # the child reads them
    _same(merged, whole, timed=True)
    assert merged.model["latency_ms"] > 0
    assert all(e.latency_ms is not None for e in merged.entries)
