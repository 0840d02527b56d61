"""`tfcompress demo --distill`: the comparison it prints, and its files (slow: it trains)."""

import json

import pytest

from tfcompress.distillation.comparison import DistillationComparison
from tfcompress.distillation.demo import run_distill_demo
from tfcompress.reporting import CompressionReport


def test_comparison_renders_the_three_models():
    def fake(name, params, accuracy, latency):
        summary = {
            "params": params,
            "tflite_bytes": 4 * params,
            "tflite_accuracy": accuracy,
            "latency_ms": latency,
        }
        return CompressionReport(name, summary=summary)

    teacher, scratch = fake("teacher", 1000, 0.98, 0.4), fake("scratch", 20, 0.90, 0.02)
    comparison = DistillationComparison(teacher, scratch, fake("kd", 20, 0.93, 0.02))
    assert comparison.gain == pytest.approx(0.03)
    text = comparison.to_text()
    assert "Distillation vs scratch: +3.0 pt" in text and "50.00x fewer parameters" in text
    assert text.splitlines()[2].split() == [
        "measure",
        "teacher",
        "student,",
        "scratch",
        "student,",
        "distilled",
    ]
    assert "| .tflite accuracy | 0.980 | 0.900 | 0.930 |" in comparison.to_markdown()
    assert json.loads(comparison.to_json())["gain"] == pytest.approx(0.03)


def test_demo_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="`epochs` must be an integer >= 1. Received: epochs=0"):
        run_distill_demo(str(tmp_path / "a"), epochs=0)
    with pytest.raises(ValueError, match=r"`alpha` must be in \[0, 1\)"):
        run_distill_demo(str(tmp_path / "b"), alpha=1.0)


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    comparison = run_distill_demo(str(out), teacher_epochs=1, epochs=1, latency_runs=20)
    printed = capsys.readouterr().out
    assert "Distillation: teacher -> student, distilled" in printed
    assert "Distillation vs scratch:" in printed
    teacher, student = comparison.teacher.summary, comparison.distilled.summary
    assert teacher["tflite_accuracy"] > 0.9 and student["tflite_accuracy"] > 0.5
    assert 45 < teacher["params"] / student["params"] < 55
    assert teacher["tflite_bytes"] / student["tflite_bytes"] > 30
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        "distiller.keras",
        "report.json",
        "report.md",
        "report.txt",
        "scratch.keras",
        "scratch.tflite",
        "student.keras",
        "student.tflite",
        "teacher.keras",
        "teacher.tflite",
    ]
