"""plan: meets the predicted target, beats uniform settings, matches brute force, and says why.

The sensitivities are made up but self-consistent: each layer's loss grows with sparsity at
its own rate, sizes follow the non-zeros, and the 16x4 structure runs faster with our kernels.
"""

import dataclasses
import itertools
import warnings

import numpy as np
import pytest

from tfcompress.planning import LayerOption, Sensitivity, SensitivityEntry
from tfcompress.planning.candidates import layer_table
from tfcompress.planning.errors import InfeasibleTargetError
from tfcompress.planning.knapsack import solve
from tfcompress.planning.plan import plan
from tfcompress.planning.recipe import Recipe
from tfcompress.planning.target import Target

SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95)
# name -> (weights, how fast its loss grows with sparsity)
LAYERS = {"conv1": (300, 6.0), "conv2": (4000, 1.5), "fc1": (20000, 0.3), "fc2": (1000, 4.0)}
REST_GZIP, REST_LATENCY = 800, 0.05


def _entry(layer, option, drop, weights, nonzeros, gzip, latency, kernels=None, labels=True):
    return SensitivityEntry(
        layer,
        option,
        drop if labels else None,
        kl=drop / 40,
        agreement=1 - drop / 100,
        params=weights,
        nonzeros=nonzeros,
        macs=weights * 10,
        bytes=(4 if option is None else 1) * weights + 40,
        gzip_bytes=gzip,
        latency_ms=latency,
        latency_ms_kernels=kernels,
    )


def synthetic(
    layers=LAYERS,
    labels=True,
    sparsities=SPARSITIES,
    ranks=True,
    structures=("unstructured", "16x4"),
):
    entries, int8_gzip, latency = [], REST_GZIP, REST_LATENCY
    for name, (n, rate) in layers.items():
        ms = n * 1e-5
        entries.append(_entry(name, None, 0.0, n, n, int(3.7 * n), ms, labels=labels))
        entries.append(
            _entry(
                name,
                LayerOption("bits", bits=8),
                0.05 * rate,
                n,
                n,
                int(0.95 * n),
                ms,
                labels=labels,
            )
        )
        entries.append(
            _entry(
                name,
                LayerOption("bits", bits=4),
                0.4 * rate,
                n,
                n,
                int(0.55 * n),
                ms,
                labels=labels,
            )
        )
        int8_gzip += int(0.95 * n)
        latency += ms
        for structure in structures:
            penalty = 1.6 if structure == "16x4" else 1.0
            for s in sparsities:
                option = LayerOption("prune", structure=structure, sparsity=s)
                kept = int(round(n * (1 - s)))
                drop = penalty * rate * s**4 * 3
                faster = ms * (1 - s) + 1e-4 if structure == "16x4" else None
                entries.append(
                    _entry(
                        name,
                        option,
                        drop,
                        n,
                        kept,
                        int(0.1 * n + 1.1 * kept),
                        ms,
                        faster,
                        labels=labels,
                    )
                )
        if ranks and name.startswith("fc"):
            option = LayerOption("rank", rank=4, energy=0.75)
            entries.append(
                _entry(
                    name, option, 2.0 * rate, n // 5, n // 5, int(0.19 * n), ms / 4, labels=labels
                )
            )
    model = {
        "name": "synthetic",
        "accuracy": 0.97 if labels else None,
        "float_gzip_bytes": int(3.7 * sum(n for n, _ in layers.values())) + REST_GZIP,
        "int8_gzip_bytes": int8_gzip,
        "latency_ms": latency,
    }
    return Sensitivity(entries, model)


def _uniform(sensitivity, structure, sparsity):
    """Every layer pruned alike at 8 bits: gzip and drop from the entries themselves."""
    gzip, drop = REST_GZIP, 0.0
    for name in sensitivity.layers:
        entry = sensitivity.entry(name, f"prune:{structure}:{sparsity:g}")
        gzip += entry.gzip_bytes
        drop += entry.accuracy_drop + 0.01 * entry.kl
    return gzip, drop


def test_target_at_the_original_changes_nothing(tmp_path):
    sensitivity = synthetic()
    baselines = [sensitivity.baseline(name) for name in sensitivity.layers]
    original = Target(
        max_bytes=sum(b.bytes for b in baselines),
        max_gzip_bytes=sensitivity.model["float_gzip_bytes"],
        max_latency_ms=sensitivity.model["latency_ms"],
        max_macs=sum(b.macs for b in baselines),
        max_accuracy_drop=0.0,
    )
    for target, binding, reason in (
        (original, None, "the target is met without changing it"),
        (Target(max_accuracy_drop=0.0), "max_accuracy_drop", "no option fits in the accuracy"),
    ):
        recipe = plan(None, sensitivity, target)
        assert recipe.layers == {} and recipe.plan_info["binding"] == binding
        assert recipe == Recipe(plan_info=recipe.plan_info)
        for row in recipe.plan_info["layers"].values():
            assert row["choice"] == "unchanged" and reason in row["reason"]
        predicted = recipe.plan_info["predicted"]
        assert predicted["gzip_bytes"] == sensitivity.model["int8_gzip_bytes"]
        assert predicted["accuracy_drop_beyond_export"] == 0.0
    # The export's own loss is reported: the sum of the bits:8 drops.
    assert predicted["accuracy_drop"] == pytest.approx(0.05 * sum(r for _, r in LAYERS.values()))
    assert Recipe.from_file(recipe.to_file(tmp_path / "r.yaml")) == recipe


def test_gzip_target_is_met_as_predicted_and_beats_every_uniform_setting(tmp_path):
    sensitivity = synthetic(ranks=False)
    wins = 0
    for structure, sparsity in itertools.product(("unstructured", "16x4"), SPARSITIES):
        gzip, drop = _uniform(sensitivity, structure, sparsity)
        recipe = plan(None, sensitivity, Target(max_gzip_bytes=gzip))
        info = recipe.plan_info
        assert info["predicted"]["gzip_bytes"] <= gzip
        assert info["binding"] == "max_gzip_bytes" and info["objective"] == "accuracy_drop"
        # The predicted total is the model's int8 size with each layer's entry swapped in.
        rows = info["layers"]
        expected = REST_GZIP + sum(row["gzip_bytes"] for row in rows.values())
        assert info["predicted"]["gzip_bytes"] == pytest.approx(expected, rel=1e-5)
        for name, row in rows.items():
            if row["choice"].startswith("prune") and row["bits"] == 8:
                entry = sensitivity.entry(name, row["choice"])
                assert row["gzip_bytes"] == entry.gzip_bytes
                assert row["accuracy_drop"] == pytest.approx(entry.accuracy_drop)
        planned = info["predicted"]["points_beyond_export"]
        assert planned <= drop + 1e-6
        wins += planned < 0.9 * drop
        # Sensitive layers get less pruning than robust ones.
        sparsity_of = {n: rows[n]["sparsity"] for n in rows}
        assert sparsity_of["fc1"] >= sparsity_of["conv1"]
    assert wins >= 8, wins
    assert Recipe.from_file(recipe.to_file(tmp_path / "r.json")) == recipe
    changed = [n for n, row in rows.items() if row["choice"] != "unchanged"]
    assert recipe.layer_names() == changed
    assert all("most loss-per-byte efficient" in rows[n]["reason"] for n in changed)
    summary = recipe.summary().splitlines()
    assert len(summary) == len(rows) + 2 and "binding limit: max_gzip_bytes" in summary[-1]
    for line, (name, row) in zip(summary, rows.items()):  # model order
        what = "prune" if name in changed else "unchanged"
        assert line.startswith(f"{name}: {what}") and row["reason"] in line


def test_accuracy_only_target_minimises_size_within_the_drop():
    sensitivity = synthetic()
    sizes = []
    for limit in (0.5, 2.0, 8.0):
        info = plan(None, sensitivity, Target(max_accuracy_drop=limit)).plan_info
        assert info["objective"] == "gzip_bytes"
        assert info["limits"]["max_accuracy_drop"]["predicted"] <= limit
        sizes.append(info["predicted"]["gzip_bytes"])
    assert sizes[0] > sizes[1] > sizes[2]
    # Without labels the KL ranks, and the accuracy limit is read as top-1 disagreement.
    unlabelled = synthetic(labels=False)
    info = plan(None, unlabelled, Target(max_accuracy_drop=2.0)).plan_info
    assert info["predicted"]["accuracy_drop"] is None and info["predicted"]["disagreement"] > 0
    assert info["limits"]["max_accuracy_drop"]["predicted"] <= 2.0
    info = plan(None, unlabelled, Target(max_gzip_bytes=10_000)).plan_info
    assert info["objective"] == "kl" and info["predicted"]["gzip_bytes"] <= 10_000


def test_latency_target_uses_our_kernels_where_they_are_faster():
    sensitivity = synthetic(ranks=False)
    budget = 0.75 * sensitivity.model["latency_ms"]
    target = Target.from_ratio(sensitivity, latency=1 / 0.75)
    assert target.max_latency_ms == pytest.approx(budget)
    auto = plan(None, sensitivity, target).plan_info
    assert auto["predicted"]["latency_ms"] <= budget and auto["binding"] == "max_latency_ms"
    assert any(row["kernels"] for row in auto["layers"].values())
    expected = sensitivity.model["latency_ms"] + sum(
        row["latency_ms"] - sensitivity.entry(n, "bits:8").latency_ms
        for n, row in auto["layers"].items()
    )
    assert auto["predicted"]["latency_ms"] == pytest.approx(expected, rel=1e-5)
    # Without our kernels no option is faster (no factorized layers here).
    with pytest.raises(InfeasibleTargetError) as error:
        plan(None, sensitivity, Target(max_latency_ms=budget), kernels="none")
    assert error.value.constraint == "max_latency_ms"


def _four_bits_slower(sensitivity, factor=3.0):
    return Sensitivity(
        [
            dataclasses.replace(e, latency_ms=factor * e.latency_ms) if e.key == "bits:4" else e
            for e in sensitivity.entries
        ],
        sensitivity.model,
    )


def test_a_latency_target_avoids_4_bits_where_they_run_slower():
    """With `bits:4` timed 3x slower than int8 (as INT4 convolutions ran), a gzip target alone
    still takes 4 bits, and so does gzip plus the int8 latency as a limit where 4 bits cost no
    time; where they do, that limit keeps every layer at 8 bits (no option here is faster)."""
    equal = synthetic(ranks=False, structures=("unstructured",))
    slow = _four_bits_slower(equal)
    gzip = Target(max_gzip_bytes=0.6 * equal.model["int8_gzip_bytes"])
    both = gzip.replace(max_latency_ms=1.0001 * equal.model["latency_ms"])

    def bits(sensitivity, target):
        info = plan(None, sensitivity, target).plan_info
        assert info["predicted"]["latency_ms"] is not None
        return {row["bits"] for row in info["layers"].values()}, info

    assert 4 in bits(equal, gzip)[0] and 4 in bits(slow, gzip)[0] and 4 in bits(equal, both)[0]
    chosen, info = bits(slow, both)
    assert chosen == {8} and info["predicted"]["latency_ms"] <= both.max_latency_ms
    assert info["predicted"]["gzip_bytes"] <= gzip.max_gzip_bytes


def test_a_pruned_layer_at_4_bits_runs_as_the_dense_4_bit_one():
    """Our kernels take no INT4 weights: 16x4 blocks at 4 bits get the default interpreter's
    4-bit latency, not our kernels' 8-bit one."""
    sensitivity = _four_bits_slower(synthetic(ranks=False))
    table = {c.key: c for c in layer_table(sensitivity, "fc1", "int8", "auto", True).candidates}
    eight, four = table["prune:16x4:0.9"], table["prune:16x4:0.9+bits:4"]
    assert (
        eight.kernels and eight.costs["latency_ms"] < sensitivity.entry("fc1", "bits:8").latency_ms
    )
    assert not four.kernels
    assert four.costs["latency_ms"] == pytest.approx(sensitivity.entry("fc1", "bits:4").latency_ms)


def test_infeasible_target_names_the_limit_and_the_closest_point():
    sensitivity = synthetic()
    with pytest.raises(InfeasibleTargetError, match="max_gzip_bytes=1,000 bytes") as error:
        plan(None, sensitivity, Target(max_gzip_bytes=1000, max_accuracy_drop=1.0))
    assert isinstance(error.value, ValueError)
    least = REST_GZIP
    for name in sensitivity.layers:  # the smallest is a pruned or factorized entry at 4 bits
        eight, four = sensitivity.entry(name, "bits:8"), sensitivity.entry(name, "bits:4")
        least += min(
            e.gzip_bytes - e.nonzeros / eight.nonzeros * (eight.gzip_bytes - four.gzip_bytes)
            for e in sensitivity.entries
            if e.layer == name and e.option is not None and e.option.kind != "bits"
        )
    assert error.value.minimum["max_gzip_bytes"] == pytest.approx(least, rel=1e-6)
    assert error.value.closest["gzip_bytes"] == pytest.approx(least, rel=1e-6)
    assert "Closest reachable point" in str(error.value) and f"{least:,.6g}" in str(error.value)


def _predicted_points(sensitivity, name, key):
    """A candidate's loss beyond int8, as `plan` documents it (4 bits adds its measured
    excess over 8 bits), and its gzip size (a pruned layer at 4 bits scaled as the dense one)."""
    eight, four = sensitivity.entry(name, "bits:8"), sensitivity.entry(name, "bits:4")
    extra = (four.accuracy_drop - eight.accuracy_drop) + 0.01 * (four.kl - eight.kl)
    if key == "unchanged":
        return 0.0, eight.gzip_bytes
    if key == "bits:4":
        return extra, four.gzip_bytes
    option, _, bits = key.partition("+")
    entry = sensitivity.entry(name, option)
    loss = entry.accuracy_drop + 0.01 * entry.kl
    if bits:
        kept = entry.nonzeros / eight.nonzeros
        return loss + extra, entry.gzip_bytes - kept * (eight.gzip_bytes - four.gzip_bytes)
    return loss, entry.gzip_bytes


def test_plan_matches_brute_force_on_three_layers_of_four_candidates():
    layers = {"a": (500, 5.0), "b": (2000, 1.0), "c": (8000, 0.2)}
    sensitivity = synthetic(layers, sparsities=(0.9,), ranks=False, structures=("16x4",))
    keys = ("unchanged", "bits:4", "prune:16x4:0.9", "prune:16x4:0.9+bits:4")
    for limit in np.linspace(2000, 9000, 15):
        best = None
        for choice in itertools.product(keys, repeat=3):
            parts = [_predicted_points(sensitivity, n, k) for n, k in zip(layers, choice)]
            gzip = REST_GZIP + sum(size for _, size in parts)
            loss = sum(points for points, _ in parts)
            if gzip <= limit and (best is None or loss < best[0]):
                best = (loss, choice)
        target = Target(max_gzip_bytes=float(limit))
        if best is None:
            with pytest.raises(InfeasibleTargetError):
                plan(None, sensitivity, target)
            continue
        info = plan(None, sensitivity, target).plan_info
        assert {row["options"] for row in info["layers"].values()} == {4}
        assert info["predicted"]["points_beyond_export"] == pytest.approx(best[0], abs=1e-4)
        assert info["predicted"]["gzip_bytes"] <= limit


def test_knapsack_against_brute_force_on_random_instances():
    rng = np.random.default_rng(0)
    found = optimal = 0
    for _ in range(100):
        k = int(rng.integers(1, 3))
        objective = [np.sort(rng.random(4)) for _ in range(3)]
        costs = [
            np.sort(rng.random((4, k)) * 10, axis=0)[::-1] + rng.random((4, k)) for _ in range(3)
        ]
        budgets = rng.uniform(0.3, 0.9, k) * sum(c.max(axis=0) for c in costs)
        best = None
        for choice in itertools.product(range(4), repeat=3):
            if np.all(sum(c[i] for c, i in zip(costs, choice)) <= budgets):
                value = sum(o[i] for o, i in zip(objective, choice))
                best = value if best is None else min(best, value)
        solution = solve(objective, costs, budgets)
        assert solution.feasible == (best is not None)
        if best is None:
            continue
        value = sum(o[i] for o, i in zip(objective, solution.choice))
        assert np.all(sum(c[i] for c, i in zip(costs, solution.choice)) <= budgets + 1e-9)
        assert value >= best - 1e-12
        assert value <= 1.3 * best
        found += 1
        optimal += value <= best + 1e-12
    assert optimal >= 0.95 * found, (optimal, found)


def test_bad_arguments():
    sensitivity = synthetic()
    target = Target(max_gzip_bytes=10_000)
    with pytest.raises(ValueError, match="`export` must be one of"):
        plan(None, sensitivity, target, export="int4")
    with pytest.raises(ValueError, match="`kernels` must be one of"):
        plan(None, sensitivity, target, kernels="some")
    with pytest.raises(TypeError, match="`target` must be a `Target`"):
        plan(None, sensitivity, 10_000)
    with pytest.raises(TypeError, match="`sensitivity` must be a `Sensitivity`"):
        plan(None, sensitivity.to_dict(), target)
    with pytest.raises(ValueError, match="latency target needs export='int8'"):
        plan(None, sensitivity, Target(max_latency_ms=1.0), export="float32")
    assert plan(None, sensitivity, {"max_gzip_bytes": 10_000}).plan_info["target"] == {
        "max_gzip_bytes": 10_000
    }
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="fc1")])
    with pytest.raises(ValueError, match=r"does not have: \['conv1', 'conv2', 'fc2'\]"):
        plan(model, sensitivity, target)


def test_model_figures_are_the_starting_point_when_given():
    sensitivity = synthetic()
    target = Target(max_gzip_bytes=20_000)
    alone = plan(None, sensitivity, target).plan_info
    assert any(note.startswith("bytes: the planned layers only") for note in alone["notes"])
    model = dict(sensitivity.model, int8_bytes=40_000, macs=300_000)
    info = plan(None, Sensitivity(sensitivity.entries, model), target).plan_info
    assert info["unchanged"]["bytes"] == 40_000 and info["unchanged"]["macs"] == 300_000
    layers_only = alone["predicted"]
    assert info["predicted"]["bytes"] == pytest.approx(
        layers_only["bytes"] + 40_000 - alone["unchanged"]["bytes"]
    )
    assert info["predicted"]["macs"] == pytest.approx(
        layers_only["macs"] + 300_000 - alone["unchanged"]["macs"]
    )


def test_float_export_has_no_bits_choice_and_starts_from_the_float_model():
    sensitivity = synthetic()
    limit = 0.5 * sensitivity.model["float_gzip_bytes"]
    recipe = plan(None, sensitivity, Target(max_gzip_bytes=limit), export="float32")
    info = recipe.plan_info
    assert info["unchanged"]["gzip_bytes"] == sensitivity.model["float_gzip_bytes"]
    assert info["predicted"]["gzip_bytes"] <= limit and recipe.export.mode == "float32"
    assert all(row["bits"] is None for row in info["layers"].values())
    assert all(layer.bits is None for layer in recipe.layers.values()) and recipe.layers
    # Nothing to plan: the budget holds or it does not.
    empty = Sensitivity([], {"int8_gzip_bytes": 5000})
    assert plan(None, empty, Target(max_gzip_bytes=6000)).layers == {}
    with pytest.raises(InfeasibleTargetError, match="below 5,000"):
        plan(None, empty, Target(max_gzip_bytes=4000))


def test_a_hopeless_plan_is_warned_about():
    """A size limit that forces a predicted loss far beyond max_accuracy_drop gets a warning
    naming both (compress still checks the drop as measured); a reachable one gets none."""
    sensitivity = synthetic(layers={"fc1": (20000, 40.0), "fc2": (1000, 40.0)})
    with pytest.warns(
        UserWarning, match=r"max_gzip_bytes the plan predicts .* max_accuracy_drop=1"
    ):
        plan(None, sensitivity, Target(max_gzip_bytes=5000, max_accuracy_drop=1.0))
    mild = synthetic(layers={"fc1": (20000, 0.3), "fc2": (1000, 0.3)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan(None, mild, Target(max_gzip_bytes=5000, max_accuracy_drop=1.0))
