"""The main job, end to end on real data (slow: it trains), and its output folder."""

import json

import keras
import numpy as np
import pytest

import tfcompress as tc
from tfcompress.demo import new_output_dir, run_demo


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    result = run_demo(str(out), epochs=1, gzip_ratio=20, latency_runs=20)
    printed = capsys.readouterr().out
    comparison = result.report
    # The plan, printed: every layer the recipe changes, with the reason the planner gave.
    plan = result.recipe.plan_info
    assert result.recipe.layers and "binding limit" in printed
    for name, layer in result.recipe.layers.items():
        assert f"{name}: {layer.describe()}" in printed
        assert plan["layers"][name]["reason"] in printed
    # What the recipe says is what the model got.
    sparsity = {k.split("/")[0]: v for k, v in tc.get_sparsity(result.model).items()}
    for name, layer in result.recipe.layers.items():
        if layer.prune is not None:
            assert abs(sparsity[name] - layer.prune.sparsity) < 0.01, (name, sparsity)
    # Targets measured on the .tflite, as the report measured it.
    before, after = comparison.before.summary, comparison.after.summary
    gzip = result.targets["max_gzip_bytes"]
    assert gzip["measured"] == after["gzip_bytes"] and gzip["predicted"] is not None
    drop = result.targets["max_accuracy_drop"]["measured"]
    assert drop == pytest.approx(100 * (before["tflite_accuracy"] - after["tflite_accuracy"]))
    assert before["tflite_accuracy"] > 0.85 and comparison.ratio("gzip_bytes") > 15
    assert f"Comparison: float32 -> {comparison.after.name}" in printed
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == sorted(result.files)
    for name in ("sensitivity.json", "recipe.yaml", "report.html", "plots/sensitivity.png",
                 "plots/choices.png", "plots/accuracy_vs_size.png", "kernels.json"):  # fmt: skip
        assert name in files, files
    assert json.loads((out / "result.json").read_text())["targets"] == json.loads(
        json.dumps(result.targets)
    )
    # The int8 model again with our kernels: the cost model claims those it expects to win.
    kernels = json.loads((out / "kernels.json").read_text())
    assert "with our kernels" in printed and "outputs bit-identical" in printed
    nodes = kernels["nodes"]
    assert all(n["claimed"] == (n["expected_speedup"] >= 1.2) for n in nodes)
    assert kernels["counters"]["nodes_claimed"] == sum(n["claimed"] for n in nodes)
    # XNNPACK (the default) may differ from the reference kernels by 1 LSB, rarely flipping a tie.
    assert kernels["identical_to_reference"] and kernels["top1_agreement"] >= 0.995
    assert f"Outputs written to {out}" in printed


def test_demo_never_overwrites(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="Nothing was overwritten"):
        new_output_dir(str(tmp_path))
    assert (tmp_path / "keep.txt").read_text() == "mine"
    with pytest.raises(FileNotFoundError, match="parent folder"):
        new_output_dir(str(tmp_path / "a" / "b"))
    assert new_output_dir(str(tmp_path / "fresh")) == str(tmp_path / "fresh")


def test_compress_says_when_kernels_are_not_built(tmp_path, monkeypatch, digits):
    monkeypatch.setenv("TFCOMPRESS_KERNELS_LIBRARY", str(tmp_path / "missing.so"))
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10, name="fc")]
    )
    data = (digits.x_train[:64], digits.y_train[:64])
    recipe = {"qat": {"epochs": 0}}
    result = tc.compress(model, data, recipe=recipe, output_dir=tmp_path / "o", verbose=0,
                         latency_runs=2)  # fmt: skip
    assert result.kernels is None and len(result.notes) == 1
    assert "were not compared" in result.notes[0] and "pip install" in result.notes[0]
    assert not (tmp_path / "o" / "kernels.json").exists()
    assert np.isfinite(result.agreement)
