"""The `tfcompress` command line (also `python -m tfcompress`), with absl flags.

Subcommands: `demo`, `compress`, `sensitivity`, `export`, `report`, `encrypt`, `decrypt`,
`keygen`.
`tfcompress SUBCOMMAND --help` lists each one's flags.

Every bad input ends the same way: one line on stderr naming the flag
(`tfcompress export: --calibration: ...`) and exit status 2. `--debug`, anywhere
after the subcommand, shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator

import keras
import numpy as np
from absl import flags

from tfcompress import datasets
from tfcompress.demo import run_demo
from tfcompress.distillation.demo import run_distill_demo
from tfcompress.encryption import DecryptionError, decrypt_model, encrypt_model, generate_key
from tfcompress.export.flatbuffer import TFLiteFile
from tfcompress.export.tflite import MODES, export_tflite
from tfcompress.factorization.demo import run_factorize_demo
from tfcompress.planning import InfeasibleTargetError, Recipe, Target, compress, sensitivity
from tfcompress.planning.compress import check_data
from tfcompress.planning.pipeline import check_recipe
from tfcompress.reporting import report
from tfcompress.utils.io import atomic_write_bytes

Subcommand = tuple[str, Callable[[flags.FlagValues], None], Callable[[flags.FlagValues], int]]


class FlagError(ValueError):
    """A bad command line: `flag` names the flag at fault, the message what is wrong."""

    def __init__(self, flag: str, message: str):
        super().__init__(message)
        self.flag = flag


def _one_line(error: BaseException, names: dict[str, str]) -> str:
    """The first line of `error`'s message, the library's argument names in it (`` `path` ``,
    `path=`, `path.shape`) given as the flags that set them."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    for argument, flag in names.items():
        text = re.sub(rf"`{argument}`", f"`{flag}`", text)
        text = re.sub(rf"\b{argument}(?==|\.\w)", flag, text)
    return text


@contextlib.contextmanager
def _blame(flag: str, names: dict[str, str] | None = None) -> Iterator[None]:
    """Any error of the step inside becomes a `FlagError` on `flag`; `names` maps the
    library's argument names to their flags (e.g. `{"representative_data": "--calibration"}`)."""
    try:
        yield
    except FlagError:
        raise
    except Exception as error:  # the library's and the converter's errors alike
        raise FlagError(flag, _one_line(error, names or {})) from error


def _input_file(flag: str, path: str | None) -> str | None:
    """`path` when it names a file (or is None)."""
    if path is not None and not os.path.isfile(path):
        what = "is a folder, not a file" if os.path.isdir(path) else "does not exist"
        raise FlagError(flag, f"{path!r} {what}.")
    return path


def _output_file(flag: str, path: str, overwrite: bool | None) -> str:
    """`path` when a new file may be written there; `overwrite` None: a file never replaced."""
    if os.path.isdir(path):
        raise FlagError(flag, f"{path!r} is a folder; give the path of a file to write.")
    if os.path.exists(path) and not overwrite:
        advice = "pass --overwrite to replace it" if overwrite is not None else "choose a new path"
        raise FlagError(flag, f"{path!r} exists; {advice}.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FlagError(flag, f"the folder {folder!r} of {path!r} does not exist.")
    return path


def _load_model(flag: str, path: str) -> keras.Model:
    _input_file(flag, path)
    if not path.endswith((".keras", ".h5", ".hdf5")):
        raise FlagError(flag, f"{path!r} is not a Keras model file (.keras, or legacy .h5).")
    with _blame(flag):
        return keras.saving.load_model(path)


def _demo_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string(
        "output_dir",
        None,
        "New folder for the outputs (default: tfcompress-demo-<time> under the current folder).",
        flag_values=fv,
    )
    flags.DEFINE_integer("epochs", 3, "Training epochs.", lower_bound=1, flag_values=fv)
    flags.DEFINE_float(
        "gzip_ratio",
        40.0,
        "Plan for a .tflite this many times smaller (gzip) than the float one.",
        lower_bound=1.0,
        flag_values=fv,
    )
    flags.DEFINE_float(
        "max_accuracy_drop",
        1.0,
        "Most accuracy lost, in points (checked as measured).",
        lower_bound=0.0,
        flag_values=fv,
    )
    flags.DEFINE_boolean(
        "distill",
        False,
        "Instead: train a 1/50-size student from scratch and by distillation from the CNN, "
        "and compare.",
        flag_values=fv,
    )
    flags.DEFINE_boolean(
        "factorize",
        False,
        "Instead: factorize the CNN's big Dense layer (fc1) by SVD, fine-tune, and compare.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "seed", 0, "Seed of data split, initialisation and shuffling.", flag_values=fv
    )
    flags.DEFINE_integer(
        "latency_runs", 200, "Timed interpreter runs per model.", lower_bound=1, flag_values=fv
    )


def _demo(fv: flags.FlagValues) -> int:
    _new_folder("--output_dir", fv.output_dir)
    if fv.distill and fv.factorize:
        raise FlagError("--distill", "--distill and --factorize are two demos; pick one.")
    if fv.distill:
        print(run_distill_demo(fv.output_dir, seed=fv.seed, latency_runs=fv.latency_runs))
        return 0
    if fv.factorize:
        run_factorize_demo(
            fv.output_dir, epochs=fv.epochs, seed=fv.seed, latency_runs=fv.latency_runs
        )
        return 0
    try:
        run_demo(
            fv.output_dir,
            epochs=fv.epochs,
            gzip_ratio=fv.gzip_ratio,
            max_accuracy_drop=fv.max_accuracy_drop,
            seed=fv.seed,
            latency_runs=fv.latency_runs,
        )
    except InfeasibleTargetError as error:
        raise FlagError("--gzip_ratio", _one_line(error, {})) from error
    return 0


def _load_data(name: str | None):
    return {"mnist5k": datasets.load_mnist5k, "digits": datasets.load_digits}[name]()


# --target_* / --max_* flag -> Target field (the flag names).
TARGET_FLAGS = {
    "target_bytes": "max_bytes",
    "target_gzip_bytes": "max_gzip_bytes",
    "max_latency_ms": "max_latency_ms",
    "max_macs": "max_macs",
    "max_accuracy_drop": "max_accuracy_drop",
}


def _data_flag(fv: flags.FlagValues) -> None:
    flags.DEFINE_string(
        "data",
        None,
        "mnist5k, digits, or an .npz file with x_train, y_train (and optionally x_test, "
        "y_test: the validation data).",
        flag_values=fv,
    )


def _load_training_data(flag: str, name: str):
    """`((x_train, y_train), (x_test, y_test) or None)` from a bundled set or an .npz."""
    if name in ("mnist5k", "digits"):
        split = _load_data(name)
        return (split.x_train, split.y_train), (split.x_test, split.y_test)
    _input_file(flag, name)
    if not name.endswith(".npz"):
        raise FlagError(flag, f"{name!r} is neither mnist5k, digits nor an .npz file.")
    with _blame(flag), np.load(name, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    missing = [key for key in ("x_train", "y_train") if key not in arrays]
    if missing or ("x_test" in arrays) != ("y_test" in arrays):
        raise FlagError(
            flag,
            f"{name!r} must hold x_train and y_train (and x_test with y_test). It holds: "
            f"{', '.join(sorted(arrays)) or 'nothing'}.",
        )
    test = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
    return (arrays["x_train"], arrays["y_train"]), test


def _compress_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("model", None, "Path of a trained .keras classifier.", flag_values=fv)
    _data_flag(fv)
    flags.DEFINE_integer("target_bytes", None, "Most .tflite weight bytes.", flag_values=fv)
    flags.DEFINE_integer("target_gzip_bytes", None, "Most .tflite gzip bytes.", flag_values=fv)
    flags.DEFINE_float("max_latency_ms", None, "Most batch-1 latency (ms).", flag_values=fv)
    flags.DEFINE_integer("max_macs", None, "Most MACs per sample.", flag_values=fv)
    flags.DEFINE_float("max_accuracy_drop", None, "Most accuracy lost, in points.", flag_values=fv)
    flags.DEFINE_string(
        "recipe", None, "A recipe file (.yaml/.json) to run instead of a target.", flag_values=fv
    )
    flags.DEFINE_string(
        "output_dir",
        None,
        "New folder for the outputs (default: tfcompress-<time> under the current folder).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "latency_runs", 200, "Timed interpreter runs per model.", lower_bound=1, flag_values=fv
    )
    flags.DEFINE_integer(
        "replans",
        1,
        "With a target: how many times to plan again, on the measured sizes, when the "
        ".tflite misses it (0: never).",
        lower_bound=0,
        flag_values=fv,
    )
    flags.mark_flags_as_required(["model", "data"], flag_values=fv)


def _new_folder(flag: str, path: str | None) -> None:
    if path is not None and os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise FlagError(flag, f"{path!r} exists and is not an empty folder; name a new one.")


def _compress(fv: flags.FlagValues) -> int:
    limits = {field: fv[flag].value for flag, field in TARGET_FLAGS.items()}
    given = [f"--{flag}" for flag, field in TARGET_FLAGS.items() if limits[field] is not None]
    if (fv.recipe is None) == (not given):
        raise FlagError(
            "--recipe",
            "pass a target (--target_gzip_bytes, --target_bytes, --max_latency_ms, --max_macs, "
            "--max_accuracy_drop) or --recipe, not both"
            + (f" (received --recipe and {', '.join(given)})." if given else " (received none)."),
        )
    _new_folder("--output_dir", fv.output_dir)
    model = _load_model("--model", fv.model)
    train, test = _load_training_data("--data", fv.data)
    names = {field: f"--{flag}" for flag, field in TARGET_FLAGS.items()}
    with _blame("--data", {"data": "--data", "validation_data": "--data"}):
        check_data(model, train, "data")
        if test is not None:
            check_data(model, test, "validation_data")
    target = recipe = None
    if fv.recipe is not None:
        _input_file("--recipe", fv.recipe)
        with _blame("--recipe"):
            recipe = Recipe.from_file(fv.recipe)
            check_recipe(model, recipe.to_dict())
    else:
        with _blame(given[0], names):
            target = Target(**{k: v for k, v in limits.items() if v is not None})
    output_dir = fv.output_dir or time.strftime("tfcompress-%Y%m%d-%H%M%S")
    try:
        result = compress(
            model, train, test, target=target, recipe=recipe, output_dir=output_dir,
            latency_runs=fv.latency_runs, replans=fv.replans,
        )  # fmt: skip
    except InfeasibleTargetError as error:  # blamed on the limit that cannot be met
        flag = names.get(error.constraint, given[0])
        raise FlagError(flag, _one_line(error, names)) from error
    print()
    print(result)
    print(f"Outputs written to {os.path.abspath(output_dir)}")
    return 0


def _sensitivity_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("model", None, "Path of a trained .keras classifier.", flag_values=fv)
    _data_flag(fv)
    flags.DEFINE_string("output", None, "Path of the .json to write.", flag_values=fv)
    flags.DEFINE_list("layers", None, "Only these layers (comma-separated names).", flag_values=fv)
    flags.DEFINE_boolean(
        "latency", True, "Also time each layer option in the interpreter.", flag_values=fv
    )
    flags.DEFINE_integer(
        "processes", 1, "Measure in this many processes, merged.", lower_bound=1, flag_values=fv
    )
    flags.DEFINE_boolean("overwrite", False, "Replace an existing output file.", flag_values=fv)
    flags.mark_flags_as_required(["model", "data", "output"], flag_values=fv)


def _sensitivity(fv: flags.FlagValues) -> int:
    _output_file("--output", fv.output, fv.overwrite)
    if not fv.output.endswith(".json"):
        raise FlagError("--output", f"{fv.output!r}: the sensitivity is written as .json.")
    model = _load_model("--model", fv.model)
    train, test = _load_training_data("--data", fv.data)
    with _blame("--data", {"data": "--data", "validation_data": "--data"}):
        check_data(model, train, "data")
        if test is not None:
            check_data(model, test, "validation_data")
    with _blame("--layers", {"layers": "--layers"}):
        result = sensitivity(
            model, train, test, layers=fv.layers, latency=fv.latency, processes=fv.processes
        )
    result.save(fv.output)
    print(result.to_table())
    print(f"Wrote {fv.output}.")
    return 0


def _export_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("model", None, "Path of a .keras model.", flag_values=fv)
    flags.DEFINE_string("output", None, "Path of the .tflite to write.", flag_values=fv)
    flags.DEFINE_enum("mode", "float32", MODES, "Export mode.", flag_values=fv)
    flags.DEFINE_enum(
        "calibration",
        None,
        ["mnist5k", "digits"],
        "Bundled dataset whose training images calibrate int8/int16x8.",
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "io_type",
        "float32",
        ["float32", "int8", "int16"],
        "Input/output type of quantized models.",
        flag_values=fv,
    )
    flags.DEFINE_boolean("overwrite", False, "Replace an existing output file.", flag_values=fv)
    flags.mark_flags_as_required(["model", "output"], flag_values=fv)


EXPORT_FLAGS = {
    "model": "--model",
    "path": "--output",
    "mode": "--mode",
    "representative_data": "--calibration",
    "io_type": "--io_type",
}


def _export(fv: flags.FlagValues) -> int:
    _output_file("--output", fv.output, fv.overwrite)
    model = _load_model("--model", fv.model)
    calibration = _load_data(fv.calibration).x_train[:200] if fv.calibration else None
    if fv.mode in ("int8", "int16x8"):  # calibrated (unless the model is QAT)
        flag = "--calibration"
    elif fv.io_type != "float32":
        flag = "--io_type"
    else:
        flag = "--model"
    with _blame(flag, EXPORT_FLAGS):
        content = export_tflite(model, fv.output, fv.mode, calibration, io_type=fv.io_type)
    print(f"Wrote {fv.output} ({len(content):,} bytes, mode {fv.mode}).")
    return 0


def _report_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("model", None, "Path of a .keras model.", flag_values=fv)
    flags.DEFINE_string("tflite", None, "Path of a .tflite model.", flag_values=fv)
    flags.DEFINE_string(
        "baseline_tflite",
        None,
        "Optional .tflite to compare against (shown as 'before').",
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "data",
        None,
        ["mnist5k", "digits"],
        "Bundled dataset whose test split gives accuracy and latency.",
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "format", "text", ["text", "markdown", "json"], "Output format.", flag_values=fv
    )


def _report(fv: flags.FlagValues) -> int:
    if fv.model is None and fv.tflite is None:
        raise FlagError(
            "--model", "pass --model (a .keras file), --tflite (a .tflite file), or both."
        )
    _input_file("--tflite", fv.tflite)
    _input_file("--baseline_tflite", fv.baseline_tflite)
    model = None if fv.model is None else _load_model("--model", fv.model)
    data = None
    if fv.data:
        split = _load_data(fv.data)
        data = (split.x_test, split.y_test)
    for flag, path in (("--tflite", fv.tflite), ("--baseline_tflite", fv.baseline_tflite)):
        if path is not None:
            with _blame(flag), open(path, "rb") as f:
                TFLiteFile(f.read())  # a flatbuffer: what fails below is the data's fault
    names = {"model": "--model", "tflite": "--tflite", "data": "--data"}
    with _blame("--data" if data is not None else "--tflite", names):
        result = report(model, fv.tflite, data=data)
    if fv.baseline_tflite:
        with _blame("--data", {**names, "tflite": "--baseline_tflite"}):
            result = report(tflite=fv.baseline_tflite, data=data, name="baseline").compare(result)
    render = {"text": result.to_text, "markdown": result.to_markdown, "json": result.to_json}
    print(render[fv.format]())
    return 0


def _crypt_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("input", None, "Path of the model file to read.", flag_values=fv)
    flags.DEFINE_string("output", None, "Path of the file to write.", flag_values=fv)
    flags.DEFINE_string(
        "key",
        None,
        "The key: a key file (32 raw bytes, or hex/base64 text) or env:NAME for an environment "
        "variable holding it (hex or base64).",
        flag_values=fv,
    )
    flags.DEFINE_boolean("overwrite", False, "Replace an existing output file.", flag_values=fv)
    flags.mark_flags_as_required(["input", "output", "key"], flag_values=fv)


def _crypt(name: str, transform: Callable) -> Callable[[flags.FlagValues], int]:
    """`encrypt` / `decrypt`: one line naming the flag on any bad input, exit status 2."""

    def run_subcommand(fv: flags.FlagValues) -> int:
        _output_file("--output", fv.output, fv.overwrite)
        _input_file("--input", fv.input)
        try:
            content = transform(fv.input, fv.key, fv.output)
        except (ValueError, TypeError, FileNotFoundError) as err:
            flag = "--input" if isinstance(err, DecryptionError) else "--key"
            raise FlagError(flag, _one_line(err, {"key": "--key"})) from err
        print(f"Wrote {fv.output} ({len(content):,} bytes).")
        return 0

    return run_subcommand


def _decrypt_to(data: str, key: str, path: str) -> bytes:
    plain = decrypt_model(data, key)
    atomic_write_bytes(path, plain)
    return plain


def _keygen_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("output", None, "Path of the new key file (hex text).", flag_values=fv)
    flags.mark_flags_as_required(["output"], flag_values=fv)


def _keygen(fv: flags.FlagValues) -> int:
    _output_file("--output", fv.output, None)  # a key is never overwritten
    fd = os.open(fv.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(generate_key().hex() + "\n")
    print(f"Wrote a new AES-256 key to {fv.output} (mode 0600). Keep it apart from the model.")
    return 0


SUBCOMMANDS: dict[str, Subcommand] = {
    "demo": (
        "Train the small CNN on MNIST-5k, compress it to a target, print the plan and report.",
        _demo_flags,
        _demo,
    ),
    "compress": (
        "Compress a .keras model to a target (planned) or by a recipe; write the results.",
        _compress_flags,
        _compress,
    ),
    "sensitivity": (
        "Measure each layer's sensitivity and costs; write them as JSON.",
        _sensitivity_flags,
        _sensitivity,
    ),
    "export": ("Convert a .keras model to .tflite.", _export_flags, _export),
    "report": ("Measure a .keras and/or .tflite model.", _report_flags, _report),
    "encrypt": (
        "Encrypt a model file (AES-256-GCM) with a key.",
        _crypt_flags,
        _crypt("encrypt", encrypt_model),
    ),
    "decrypt": (
        "Decrypt a model file written by `encrypt`.",
        _crypt_flags,
        _crypt("decrypt", _decrypt_to),
    ),
    "keygen": ("Write a new random AES-256 key file.", _keygen_flags, _keygen),
}


def _usage() -> str:
    lines = ["usage: tfcompress SUBCOMMAND [--flags]   (tfcompress SUBCOMMAND --help)", ""]
    lines += [f"  {name:<11} {help_text}" for name, (help_text, _, _) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Runs `argv` (`[program, subcommand, *flags]`); returns the exit status.

    A bad input prints one line naming the flag and returns 2; with `--debug`
    among the flags, the error is raised with its traceback instead.
    """
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if len(argv) >= 2 else 2
    name = argv[1]
    if name not in SUBCOMMANDS:
        print(
            f"tfcompress: Unknown subcommand {name!r}; one of {', '.join(SUBCOMMANDS)} "
            "(see tfcompress --help).",
            file=sys.stderr,
        )
        return 2
    help_text, define, run_subcommand = SUBCOMMANDS[name]
    debug = "--debug" in argv[2:]
    args = [arg for arg in argv[2:] if arg != "--debug"]
    fv = flags.FlagValues()
    define(fv)
    if any(arg in ("-h", "--help", "-help", "--helpfull") for arg in args):
        print(f"tfcompress {name}: {help_text}\n\n{fv.get_help()}\n  --debug: show tracebacks")
        return 0
    try:
        extra = fv([f"tfcompress {name}", *args])[1:]
        if extra:
            raise FlagError(extra[0], f"unexpected arguments {extra}; flags take --name=value.")
        return run_subcommand(fv)
    except (FlagError, flags.Error) as error:
        if debug:
            traceback.print_exc()
        where = f"{error.flag}: " if isinstance(error, FlagError) else ""
        if isinstance(error, flags.Error):
            hint = f" (see tfcompress {name} --help)"
        else:
            hint = "" if debug or error.__cause__ is None else " (--debug shows the traceback)"
        message = " ".join(str(error).split())
        print(f"tfcompress {name}: {where}{message}{hint}", file=sys.stderr)
        return 2


def run() -> None:
    """Console-script entry point."""
    sys.exit(main(sys.argv))
