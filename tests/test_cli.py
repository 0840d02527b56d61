"""The command line: help for every subcommand, export and report end to end."""

import json
import subprocess
import sys

import numpy as np
import pytest

import tfcompress as tc
from tfcompress.cli import SUBCOMMANDS, main
from tfcompress.export import TFLiteFile


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_help_for_every_subcommand(name, capsys):
    assert main(["tfcompress", name, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"tfcompress {name}" in out and "--" in out


def test_usage_and_unknown_subcommand(capsys):
    assert main(["tfcompress", "--help"]) == 0
    usage = capsys.readouterr().out
    assert all(name in usage for name in SUBCOMMANDS)
    assert main(["tfcompress", "shrink"]) == 2
    assert "Unknown subcommand 'shrink'" in capsys.readouterr().err


def test_bad_flag_value(capsys):
    assert main(["tfcompress", "export", "--model=m.keras", "--output=o", "--mode=int3"]) == 2
    assert "int3" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "tfcompress", "report", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "--tflite" in result.stdout


def test_export_then_report(trained_lenet, tmp_path, capsys):
    model_path, out = tmp_path / "m.keras", tmp_path / "m.tflite"
    trained_lenet.save(model_path)
    argv = [
        "tfcompress",
        "export",
        f"--model={model_path}",
        f"--output={out}",
        "--mode=int8",
        "--calibration=mnist5k",
    ]
    assert main(argv) == 0
    assert out.read_bytes()[4:8] == b"TFL3"
    with pytest.raises(FileExistsError, match="--overwrite"):
        main(argv)
    assert main([*argv, "--overwrite"]) == 0
    capsys.readouterr()
    assert main(["tfcompress", "report", f"--tflite={out}", "--format=json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["tflite_params"] == trained_lenet.count_params()


def test_export_qat_model_without_calibration(trained_lenet, tmp_path, capsys):
    model_path, out = tmp_path / "qat.keras", tmp_path / "qat.tflite"
    qat = tc.quantize_model(trained_lenet)
    qat(np.zeros((8, 28, 28, 1), "float32") + 0.5, training=True)  # ranges from one batch
    qat.save(model_path)
    assert (
        main(["tfcompress", "export", f"--model={model_path}", f"--output={out}", "--mode=int8"])
        == 0
    )
    ops = TFLiteFile(out.read_bytes()).ops
    assert {op.name for op in ops if op.name == "FULLY_CONNECTED"} and "QUANTIZE" == ops[0].name
