"""Schedules against tfmot's formula (and against tfmot itself where the extra is installed)."""

import importlib.util
import json
import subprocess
import sys

import keras
import pytest

from tfcompress.pruning import ConstantSparsity, PolynomialDecay


def test_constant_sparsity_turns():
    schedule = ConstantSparsity(0.8, begin_step=10, end_step=50, frequency=20)
    turns = [step for step in range(0, 80) if schedule(step)[0]]
    assert turns == [10, 30, 50]
    assert all(schedule(step)[1] == 0.8 for step in range(80))
    open_ended = ConstantSparsity(0.5, begin_step=0, frequency=100)
    assert open_ended(10**6)[0] and not open_ended(10**6 + 1)[0]


def test_polynomial_decay_formula():
    s_i, s_f, begin, end, power = 0.1, 0.9, 100, 1100, 3
    schedule = PolynomialDecay(s_i, s_f, begin, end, power=power, frequency=50)
    for step in range(0, 1500, 7):
        p = min(1.0, max(0.0, (step - begin) / (end - begin)))
        assert schedule.sparsity_at(step) == pytest.approx(s_f + (s_i - s_f) * (1 - p) ** power)
        expected_turn = begin <= step <= end and (step - begin) % 50 == 0
        assert schedule.should_prune(step) == expected_turn
    assert schedule(begin) == (True, pytest.approx(s_i))
    assert schedule(end) == (True, pytest.approx(s_f))


@pytest.mark.parametrize(
    "schedule",
    [ConstantSparsity(0.7, 3, 90, 4), PolynomialDecay(0.2, 0.95, 5, 500, power=2, frequency=9)],
)
def test_config_round_trip(schedule):
    assert type(schedule).from_config(schedule.get_config()) == schedule
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert restored == schedule


def test_with_target_keeps_timing():
    schedule = PolynomialDecay(0.5, 0.9, 0, 100, frequency=10).with_target(0.3)
    assert (schedule.initial_sparsity, schedule.final_sparsity) == (0.3, 0.3)
    assert (schedule.begin_step, schedule.end_step, schedule.frequency) == (0, 100, 10)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: ConstantSparsity(1.0, 0), "target_sparsity=1.0"),
        (lambda: ConstantSparsity(-0.1, 0), "target_sparsity=-0.1"),
        (lambda: PolynomialDecay(0.0, 0.5, 100, 100), "begin_step=100, end_step=100"),
        (lambda: PolynomialDecay(0.0, 0.5, 100, 50), "end_step=50"),
        (lambda: ConstantSparsity(0.5, 0, frequency=0), "frequency=0"),
        (lambda: ConstantSparsity(0.5, -1), "begin_step=-1"),
        (lambda: PolynomialDecay(0.0, 0.5, 0, 10, power=0), "power=0"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


TFMOT_SCRIPT = """
import json
import tensorflow_model_optimization as tfmot
s = tfmot.sparsity.keras
out = {}
for name, sched in {
    "poly": s.PolynomialDecay(0.1, 0.9, 100, 1100, power=3, frequency=50),
    "const": s.ConstantSparsity(0.8, 10, 50, 20),
}.items():
    rows = []
    for step in range(0, 1500, 7):
        prune, sparsity = sched(step)
        rows.append([bool(prune), float(sparsity)])
    out[name] = rows
print(json.dumps(out))
"""


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow_model_optimization") is None,
    reason="needs the `tfmot` extra",
)
def test_matches_tfmot_in_a_separate_process():
    # tfmot switches tf.keras to Keras 2 for the whole process: run it in its own.
    result = subprocess.run(
        [sys.executable, "-c", TFMOT_SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    theirs = json.loads(result.stdout.strip().splitlines()[-1])
    ours = {
        "poly": PolynomialDecay(0.1, 0.9, 100, 1100, power=3, frequency=50),
        "const": ConstantSparsity(0.8, 10, 50, 20),
    }
    for name, schedule in ours.items():
        for (prune, sparsity), step in zip(theirs[name], range(0, 1500, 7)):
            assert schedule(step)[0] == prune, (name, step)
            assert schedule(step)[1] == pytest.approx(sparsity, abs=1e-6), (name, step)
