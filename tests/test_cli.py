"""The command line: help for every subcommand, export and report end to end."""

import json
import re
import runpy
import sys

import keras
import numpy as np
import pytest

import tfcompress as tc
from tfcompress.cli import SUBCOMMANDS, main, run
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


def test_python_dash_m_entry_point(monkeypatch, capsys):
    """What `python -m tfcompress report --help` runs, in this process: a child process would
    spend 10 s importing TensorFlow again (the package itself is imported the same way)."""
    monkeypatch.setattr(sys, "argv", ["tfcompress", "report", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("tfcompress", run_name="__main__", alter_sys=True)
    assert exit_info.value.code == 0 and "--tflite" in capsys.readouterr().out


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
    capsys.readouterr()
    assert main(argv) == 2  # an existing file: one line, no traceback
    err = capsys.readouterr().err
    assert "--output" in err and "pass --overwrite" in err
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


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A folder with a tiny .keras model, its .tflite, a junk file and a non-empty folder."""
    folder = tmp_path_factory.mktemp("cli")
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3, name="fc")]
    )
    model.save(folder / "m.keras")
    (folder / "m.tflite").write_bytes(tc.export_tflite(model))
    (folder / "junk.tflite").write_bytes(b"not a model at all")
    (folder / "full").mkdir()
    (folder / "full" / "x").write_text("x")
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 4, 4, 1), "float32"), rng.integers(0, 3, 64)
    np.savez(folder / "data.npz", x_train=x, y_train=y, x_test=x[:16], y_test=y[:16])
    np.savez(folder / "nolabels.npz", x_train=x)
    np.savez(folder / "nan.npz", x_train=np.where(x > 0.5, np.nan, x), y_train=y)
    tc.Recipe.from_dict({"qat": {"epochs": 0}, "kernels": "none"}).to_file(folder / "ptq.yaml")
    (folder / "typo.yaml").write_text("fine_tune: {epoch: 2}\n")
    (folder / "unknown.yaml").write_text("layers: {fc9: {bits: 4}}\n")
    return folder


# (argv after `tfcompress`, the flag the one-line error must name); {d}: the files' folder.
WRONG_INVOCATIONS = [
    (["export", "--model={d}/missing.keras", "--output={d}/o.tflite"], "--model"),
    (["export", "--model={d}/m.tflite", "--output={d}/o.tflite"], "--model"),
    (["export", "--model={d}/m.keras", "--output={d}/o.tflite", "--mode=int3"], "--mode"),
    (["export", "--model={d}/m.keras", "--output={d}/o.tflite", "--mode=int8"], "--calibration"),
    (
        ["export", "--model={d}/m.keras", "--output={d}/o.tflite", "--mode=int8"]
        + ["--calibration=digits"],  # 8x8 images for a 4x4 model
        "--calibration",
    ),
    (["export", "--model={d}/m.keras", "--output={d}/o.tflite", "--io_type=int8"], "--io_type"),
    (["export", "--model={d}/m.keras", "--output={d}/m.tflite"], "--output"),
    (["export", "--model={d}/m.keras", "--output={d}/full", "--overwrite"], "--output"),
    (["export", "--model={d}/m.keras", "--output={d}/nowhere/o.tflite"], "--output"),
    (["export", "--model={d}/m.keras"], "--output"),
    (["report", "--tflite={d}/missing.tflite"], "--tflite"),
    (["report", "--tflite={d}/junk.tflite"], "--tflite"),
    (["report", "--tflite={d}/m.tflite", "--data=digits"], "--data"),
    (["report", "--tflite={d}/m.tflite", "--format=yaml"], "--format"),
    (["report"], "--model"),
    (["demo", "--epochs=0"], "--epochs"),
    (["demo", "--epochs=two"], "--epochs"),
    (["demo", "--gzip_ratio=0.5"], "--gzip_ratio"),
    (["demo", "--output_dir={d}/full"], "--output_dir"),
    (["keygen", "--output={d}/full"], "--output"),
    (
        ["compress", "--model={d}/missing.keras", "--data={d}/data.npz", "--recipe={d}/ptq.yaml"],
        "--model",
    ),
    (["compress", "--model={d}/m.keras", "--data={d}/data.npz"], "--recipe"),
    (
        [
            "compress",
            "--model={d}/m.keras",
            "--data={d}/data.npz",
            "--recipe={d}/ptq.yaml",
            "--max_accuracy_drop=1",
        ],
        "--recipe",
    ),
    (
        ["compress", "--model={d}/m.keras", "--data={d}/nolabels.npz", "--recipe={d}/ptq.yaml"],
        "--data",
    ),
    (["compress", "--model={d}/m.keras", "--data={d}/nan.npz", "--recipe={d}/ptq.yaml"], "--data"),
    (["compress", "--model={d}/m.keras", "--data=digits", "--recipe={d}/ptq.yaml"], "--data"),
    (["compress", "--model={d}/m.keras", "--data={d}/none.npz", "--recipe={d}/ptq.yaml"], "--data"),
    (
        ["compress", "--model={d}/m.keras", "--data={d}/data.npz", "--recipe={d}/typo.yaml"],
        "--recipe",
    ),
    (
        ["compress", "--model={d}/m.keras", "--data={d}/data.npz", "--recipe={d}/unknown.yaml"],
        "--recipe",
    ),
    (
        ["compress", "--model={d}/m.keras", "--data={d}/data.npz", "--target_gzip_bytes=-5"],
        "--target_gzip_bytes",
    ),
    (
        ["compress", "--model={d}/m.keras", "--data={d}/data.npz", "--target_gzip_bytes=9"]
        + ["--replans=-1"],
        "--replans",
    ),
    (
        [
            "compress",
            "--model={d}/m.keras",
            "--data={d}/data.npz",
            "--recipe={d}/ptq.yaml",
            "--output_dir={d}/full",
        ],
        "--output_dir",
    ),
    (
        ["sensitivity", "--model={d}/m.keras", "--data={d}/data.npz", "--output={d}/m.tflite"],
        "--output",
    ),
    (
        [
            "sensitivity",
            "--model={d}/m.keras",
            "--data={d}/data.npz",
            "--output={d}/s.json",
            "--layers=fc9",
        ],
        "--layers",
    ),
    (
        [
            "sensitivity",
            "--model={d}/m.keras",
            "--data={d}/data.npz",
            "--output={d}/s.json",
            "--processes=0",
        ],
        "--processes",
    ),
    (["encrypt", "--input={d}/m.tflite", "--output={d}/e.bin", "--key=env:TFC_UNSET"], "--key"),
]


@pytest.mark.parametrize(("args", "flag"), WRONG_INVOCATIONS)
def test_every_error_is_one_line_naming_the_flag(args, flag, files, capsys):
    argv = ["tfcompress", *(a.format(d=files) for a in args)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(rf"(^|\W){flag}\b", err), err
    for argument in ("representative_data", "path", "model"):  # Python names stay out
        assert not re.search(rf"`{argument}`|\b{argument}=", err), err


def test_a_folder_is_never_told_to_overwrite(files, capsys):
    argv = ["tfcompress", "export", f"--model={files}/m.keras", f"--output={files}/full"]
    for extra in ([], ["--overwrite"]):
        assert main([*argv, *extra]) == 2
        err = capsys.readouterr().err
        assert "is a folder" in err and "--overwrite" not in err


def test_debug_shows_the_traceback(files, capsys):
    argv = ["tfcompress", "export", f"--model={files}/m.keras", f"--output={files}/o.tflite"]
    assert main([*argv, "--mode=int8", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith(
        "tfcompress export: --calibration:"
    )


def test_errors_through_the_console_script_entry_point(files, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tfcompress", "report", f"--tflite={files}/no.tflite"])
    with pytest.raises(SystemExit) as exit_info:
        run()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("tfcompress report: --tflite: ")


def test_compress_and_sensitivity_end_to_end(files, tmp_path, capsys):
    """A recipe run from the command line writes its folder and never reuses it; the
    sensitivity subcommand writes the JSON `Sensitivity.load` reads."""
    out = tmp_path / "out"
    argv = ["tfcompress", "compress", f"--model={files}/m.keras", f"--data={files}/data.npz"]
    argv += [f"--recipe={files}/ptq.yaml", f"--output_dir={out}", "--latency_runs=2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"Outputs written to {out}" in printed and "Comparison: float32 -> int8" in printed
    assert tc.TFLiteFile((out / "model.tflite").read_bytes()).ops
    assert tc.Recipe.from_file(out / "recipe.yaml") == tc.Recipe.from_file(files / "ptq.yaml")
    assert main(argv) == 2 and "--output_dir" in capsys.readouterr().err
    path = tmp_path / "s.json"
    argv = ["tfcompress", "sensitivity", f"--model={files}/m.keras", f"--data={files}/data.npz"]
    assert main([*argv, f"--output={path}", "--nolatency"]) == 0
    assert tc.Sensitivity.load(path).layers == ["fc"] and "fc" in capsys.readouterr().out


def test_an_infeasible_target_is_one_line_on_its_flag(files, tmp_path, capsys, monkeypatch):
    passed = []

    def infeasible(*args, **kwargs):
        passed.append(kwargs["replans"])
        raise tc.InfeasibleTargetError(
            "The target cannot be met: max_latency_ms=0.01 ms, but no plan gets latency_ms "
            "below 0.05.\nClosest reachable point: latency_ms 0.05.",
            "max_latency_ms",
            0.01,
            {"latency_ms": 0.05},
            {"latency_ms": 0.05},
        )

    monkeypatch.setattr("tfcompress.cli.compress", infeasible)
    argv = ["tfcompress", "compress", f"--model={files}/m.keras", f"--data={files}/data.npz"]
    argv += ["--target_gzip_bytes=1000", "--max_latency_ms=0.01", f"--output_dir={tmp_path}/o"]
    assert main(argv) == 2  # the flag of the limit that cannot be met, not the first given
    err = capsys.readouterr().err.strip()
    assert err.startswith("tfcompress compress: --max_latency_ms: ") and len(err.splitlines()) == 1
    assert "--max_latency_ms=0.01 ms" in err and "below 0.05" in err
    assert main([*argv[:-1], f"--output_dir={tmp_path}/p", "--replans=0"]) == 2
    assert passed == [1, 0]  # --replans reaches compress, 1 by default
