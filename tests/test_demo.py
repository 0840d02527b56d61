"""The main job, end to end on real data (slow: it trains)."""

import json

import pytest

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
    assert files == ["float32.tflite", "int8.tflite", "model.keras", "pruned.keras", "qat.keras",
                     "report.json", "report.md", "report.txt"]  # fmt: skip
    assert json.loads((out / "report.json").read_text())["ratios"]["tflite_bytes"] > 3.5


def test_demo_never_overwrites(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="Nothing was overwritten"):
        new_output_dir(str(tmp_path))
    assert (tmp_path / "keep.txt").read_text() == "mine"
    with pytest.raises(FileNotFoundError, match="parent folder"):
        new_output_dir(str(tmp_path / "a" / "b"))
    assert new_output_dir(str(tmp_path / "fresh")) == str(tmp_path / "fresh")
