"""`compress` re-plans on the measured file: a sensitivity whose gzip sizes are halved makes
the first plan miss a gzip target; the re-plan, its budget scaled by predicted / measured,
meets it. `replans=0` keeps the miss and its warning; the budget correction's rules."""

import dataclasses
import json
import warnings

import keras
import pytest
from helpers import compile_classifier

import tfcompress as tc
from tfcompress.planning.replan import corrected_budget
from tfcompress.reporting.report import gzip_size

OPTIONS = {"sparsities": (0.5, 0.9), "structures": ("unstructured",), "bits": (4,), "energies": ()}


@pytest.fixture(scope="module")
def halved(digits):
    """A 64-128-10 MLP and its sensitivity with every gzip size halved (the whole int8 model's
    too): plans predict half the gzip bytes their files have."""
    keras.utils.set_random_seed(10)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu", name="fc1"),
            keras.layers.Dense(10, name="logits"),
        ]
    )
    # All of digits' training set: 46 fine-tuning steps, so the pruning schedule (masks every
    # 10 steps) reaches its sparsity.
    data, validation = (digits.x_train, digits.y_train), (digits.x_test, digits.y_test)
    compile_classifier(model).fit(*data, epochs=3, verbose=0)
    measured = tc.sensitivity(model, data, validation, options=OPTIONS, latency=False, verbose=0)
    entries = [dataclasses.replace(e, gzip_bytes=e.gzip_bytes // 2) for e in measured.entries]
    figures = {**measured.model, "int8_gzip_bytes": measured.model["int8_gzip_bytes"] // 2}
    # Between the int8 file's gzip size and what pruning fc1 to 90% leaves.
    target = tc.Target(max_gzip_bytes=round(0.72 * measured.model["int8_gzip_bytes"]))
    return model, data, validation, tc.Sensitivity(entries, figures), target


def test_a_missed_gzip_target_is_met_by_the_re_plan(halved, tmp_path, capsys):
    model, data, validation, sensitivity, target = halved
    keras.utils.set_random_seed(11)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the result kept meets: no warning
        result = tc.compress(model, data, validation, target=target, sensitivity=sensitivity,
                             output_dir=out, verbose=2, latency_runs=2)  # fmt: skip
    first, second = result.attempts
    limit = target.max_gzip_bytes
    missed = first["targets"]["max_gzip_bytes"]
    assert missed["predicted"] <= limit < missed["measured"] and not first["met"]
    factor = missed["predicted"] / missed["measured"]
    assert second["correction"] == {"max_gzip_bytes": factor} and 0.3 < factor < 0.7
    assert second["planned_for"] == {"max_gzip_bytes": round(limit * factor)}
    assert second["layers"] and second["met"] and second["kept"] and not first["kept"]
    assert result.met and result.recipe.plan_info["target"] == second["planned_for"]
    measured = result.targets["max_gzip_bytes"]["measured"]
    assert measured == gzip_size(result.tflite) <= limit
    assert {n: layer.to_dict() for n, layer in result.recipe.layers.items()} == second["layers"]
    assert any("re-planned" in note for note in result.notes)
    assert tc.get_sparsity(result.model)["fc1/kernel"] > 0.85
    assert "Kept plan 2 of 2: it meets the target." in result.notes
    printed = capsys.readouterr().out
    assert printed.count("Plan:\n") == 2 and "Plan 1 missed the target as measured" in printed
    assert "plan 2 for max_gzip_bytes <= " in str(result) and "met (kept)" in str(result)
    saved = json.loads((out / "result.json").read_text())
    assert [a["kept"] for a in saved["attempts"]] == [False, True]
    assert (out / "model.tflite").read_bytes() == result.tflite
    assert "Plans run" in (out / "report.html").read_text()


def test_no_re_plan_keeps_the_miss_and_warns(halved):
    model, data, validation, sensitivity, target = halved
    with pytest.warns(UserWarning, match=r"misses its target, as measured: max_gzip_bytes"):
        result = tc.compress(model, data, validation, target=target, sensitivity=sensitivity,
                             replans=0, verbose=0, latency_runs=2)  # fmt: skip
    assert not result.met and len(result.attempts) == 1 and result.attempts[0]["kept"]
    assert not any("re-plan" in note for note in result.notes)
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ValueError, match=rf"`replans` must be .* replans={bad!r}"):
            tc.compress(model, data, target=target, sensitivity=sensitivity, replans=bad)


def _measured(limit, predicted, measured):
    return {"limit": limit, "predicted": predicted, "measured": measured, "met": measured <= limit}


def test_the_budget_correction():
    """Sizes scaled both ways, a latency only when missed, the accuracy drop never."""
    target = tc.Target(max_gzip_bytes=1000, max_latency_ms=1.0, max_accuracy_drop=1.0)
    met_latency = {
        "max_gzip_bytes": _measured(1000, 900, 600),  # met with room: loosened
        "max_latency_ms": _measured(1.0, 1.0, 0.5),  # met: never loosened
        "max_accuracy_drop": _measured(1.0, 0.2, 2.0),
    }
    budget, factors = corrected_budget(target, target, met_latency)
    assert factors == {"max_gzip_bytes": 1.5}
    assert budget == target.replace(max_gzip_bytes=1500)
    missed_latency = {**met_latency, "max_latency_ms": _measured(1.0, 0.9, 1.2)}
    budget, factors = corrected_budget(target, budget, missed_latency)
    assert factors == {"max_gzip_bytes": 1.5, "max_latency_ms": 0.75}
    assert budget.max_latency_ms == 0.75 and budget.max_gzip_bytes == 1500
    # A later correction scales the limit given, not the budget before.
    tighter = {**missed_latency, "max_gzip_bytes": _measured(1000, 1400, 1750)}
    budget, _ = corrected_budget(target, budget, tighter)
    assert budget.max_gzip_bytes == 800 and budget.max_latency_ms == 0.75
