"""`run_factorize_demo` (for `tfcompress demo --factorize`), end to end (slow: it trains)."""

import json

import pytest

from tfcompress.factorization.demo import run_factorize_demo


@pytest.mark.slow
def test_factorize_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    comparison = run_factorize_demo(str(out), epochs=1, finetune_epochs=1, latency_runs=20)
    printed = capsys.readouterr().out
    assert "Factorized layers" in printed and "fc1" in printed
    assert "Comparison: float32 -> fc1 factorized, rank 16" in printed
    before, after = comparison.before.summary, comparison.after.summary
    assert after["params"] == before["params"] - 9216 * 128 + 16 * (9216 + 128)
    assert comparison.ratio("params") > 6 and comparison.ratio("tflite_bytes") > 5
    assert comparison.ratio("macs") > 1.05
    assert before["tflite_accuracy"] > 0.85
    assert after["tflite_accuracy"] >= before["tflite_accuracy"] - 0.03
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        "factorized.keras",
        "factorized.tflite",
        "float32.tflite",
        "model.keras",
        "report.json",
        "report.md",
        "report.txt",
    ]
    report = json.loads((out / "report.json").read_text())
    assert report["factorization"]["layers"][0]["rank"] == "16"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"epochs": 0}, "`epochs` must be >= 1"), ({"finetune_epochs": -1}, "`finetune_epochs`")],
)
def test_bad_arguments_are_refused_before_training(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        run_factorize_demo(str(tmp_path / "demo"), **kwargs)
    assert not (tmp_path / "demo").exists()
