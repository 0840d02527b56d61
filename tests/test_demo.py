"""The main job, end to end on real data (slow: it trains)."""

import json

import numpy as np
import pytest

import tfcompress as tc
from tfcompress.demo import new_output_dir, run_demo


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    comparison = run_demo(str(out), epochs=1, prune_epochs=1, qat_epochs=1, latency_runs=20)
    printed = capsys.readouterr().out
    assert "Comparison: float32 -> 16x4 block-pruned 80% + int8 (QAT)" in printed
    before, after = comparison.before.summary, comparison.after.summary
    assert before["tflite_accuracy"] > 0.85
    assert abs(after["tflite_accuracy"] - before["tflite_accuracy"]) <= 0.03
    assert comparison.ratio("tflite_bytes") > 3.5 and comparison.ratio("gzip_bytes") > 8
    structures = {r.name: r.structure for r in comparison.after.ops}
    assert structures["fc1"] == structures["conv2"] == "block 16x4"
    assert after["sparsity"] > 0.75
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        "float32.tflite",
        "int8.tflite",
        "kernels.json",
        "model.keras",
        "pruned.keras",
        "qat.keras",
        "report.json",
        "report.md",
        "report.txt",
    ]
    assert json.loads((out / "report.json").read_text())["ratios"]["tflite_bytes"] > 3.5
    # The int8 model again with our kernels: the four layers are candidates, both pruned
    # ones block-sparse; the cost model claims those it expects to win on this CPU.
    kernels = json.loads((out / "kernels.json").read_text())
    assert "with our kernels" in printed and "outputs bit-identical" in printed
    nodes = kernels["nodes"]
    assert [n["kernel"] for n in nodes] == ["dense", "sparse", "sparse", "dense"]
    claimed = [n for n in nodes if n["claimed"]]
    assert all(n["claimed"] == (n["expected_speedup"] >= 1.15) for n in nodes)
    assert kernels["counters"]["nodes_claimed"] == len(claimed)
    assert kernels["counters"]["nodes_left"] == 4 - len(claimed)
    if kernels["host"] in ("avx2", "avx512vnni+amx"):  # CPU kinds the cost model was measured on
        assert nodes[2]["claimed"] and nodes[2]["op"] == "FULLY_CONNECTED"  # fc1
    # XNNPACK (the default) may differ from the reference kernels by 1 LSB, rarely flipping a tie.
    assert kernels["identical_to_reference"] and kernels["top1_agreement"] >= 0.995
    assert kernels["default_ms"] > 0 and kernels["kernels_ms"] > 0


def test_demo_never_overwrites(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="Nothing was overwritten"):
        new_output_dir(str(tmp_path))
    assert (tmp_path / "keep.txt").read_text() == "mine"
    with pytest.raises(FileNotFoundError, match="parent folder"):
        new_output_dir(str(tmp_path / "a" / "b"))
    assert new_output_dir(str(tmp_path / "fresh")) == str(tmp_path / "fresh")


def test_demo_says_when_kernels_are_not_built(tmp_path, monkeypatch, capsys):
    from tfcompress.demo import _compare_with_kernels

    monkeypatch.setenv("TFCOMPRESS_KERNELS_LIBRARY", str(tmp_path / "missing.so"))
    model = tc.export_tflite(tc.models.lenet_300_100())
    _compare_with_kernels(model, np.zeros((4, 28, 28, 1), "float32"), 5, str(tmp_path))
    printed = capsys.readouterr().out
    assert "were not compared" in printed and "pip install" in printed
    assert not (tmp_path / "kernels.json").exists()
