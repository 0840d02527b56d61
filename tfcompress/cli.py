"""The `tfcompress` command line (also `python -m tfcompress`), with absl flags.

Subcommands: `demo`, `export`, `report`, `encrypt`, `decrypt`, `keygen`.
`tfcompress SUBCOMMAND --help` lists each one's flags.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import keras
from absl import flags

from tfcompress import datasets
from tfcompress.demo import run_demo
from tfcompress.distillation.demo import run_distill_demo
from tfcompress.encryption import DecryptionError, decrypt_model, encrypt_model, generate_key
from tfcompress.export.tflite import MODES, export_tflite
from tfcompress.factorization.demo import run_factorize_demo
from tfcompress.reporting import report
from tfcompress.utils.io import atomic_write_bytes

Subcommand = tuple[str, Callable[[flags.FlagValues], None], Callable[[flags.FlagValues], int]]


def _demo_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string(
        "output_dir",
        None,
        "New folder for the outputs (default: tfcompress-demo-<time> under the current folder).",
        flag_values=fv,
    )
    flags.DEFINE_integer("epochs", 3, "Training epochs.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer(
        "prune_epochs",
        2,
        "Fine-tuning epochs while block-pruning (0: no pruning).",
        lower_bound=0,
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
        "qat_epochs",
        1,
        "Quantization-aware training epochs after pruning (0: post-training int8).",
        lower_bound=0,
        flag_values=fv,
    )
    flags.DEFINE_float(
        "sparsity",
        0.8,
        "Target sparsity of the 16x4 block-pruned layers.",
        lower_bound=0.0,
        upper_bound=0.99,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "seed", 0, "Seed of data split, initialisation and shuffling.", flag_values=fv
    )
    flags.DEFINE_integer(
        "latency_runs", 200, "Timed interpreter runs per model.", lower_bound=1, flag_values=fv
    )
    flags.DEFINE_boolean(
        "kernels",
        True,
        "Also run the int8 model with tfcompress's own "
        "kernels and compare latency and predictions.",
        flag_values=fv,
    )


def _demo(fv: flags.FlagValues) -> int:
    if fv.distill:
        print(run_distill_demo(fv.output_dir, seed=fv.seed, latency_runs=fv.latency_runs))
        return 0
    if fv.factorize:
        run_factorize_demo(
            fv.output_dir, epochs=fv.epochs, seed=fv.seed, latency_runs=fv.latency_runs
        )
        return 0
    run_demo(
        fv.output_dir,
        epochs=fv.epochs,
        prune_epochs=fv.prune_epochs,
        qat_epochs=fv.qat_epochs,
        sparsity=fv.sparsity,
        seed=fv.seed,
        latency_runs=fv.latency_runs,
        with_kernels=fv.kernels,
    )
    return 0


def _load_data(name: str | None):
    return {"mnist5k": datasets.load_mnist5k, "digits": datasets.load_digits}[name]()


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


def _export(fv: flags.FlagValues) -> int:
    if os.path.exists(fv.output) and not fv.overwrite:
        raise FileExistsError(f"--output={fv.output!r} exists; pass --overwrite to replace it.")
    model = keras.saving.load_model(fv.model)
    calibration = _load_data(fv.calibration).x_train[:200] if fv.calibration else None
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
    model = None
    if fv.model:
        model = keras.saving.load_model(fv.model)
    data = None
    if fv.data:
        split = _load_data(fv.data)
        data = (split.x_test, split.y_test)
    result = report(model, fv.tflite, data=data)
    if fv.baseline_tflite:
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
        if os.path.exists(fv.output) and not fv.overwrite:
            print(
                f"tfcompress {name}: --output={fv.output!r} exists; pass --overwrite.",
                file=sys.stderr,
            )
            return 2
        if not os.path.isfile(fv.input):
            print(f"tfcompress {name}: --input={fv.input!r} is not a file.", file=sys.stderr)
            return 2
        try:
            content = transform(fv.input, fv.key, fv.output)
        except (ValueError, TypeError, FileNotFoundError) as err:
            flag = "--input" if isinstance(err, DecryptionError) else "--key"
            print(f"tfcompress {name}: {flag}: {err}", file=sys.stderr)
            return 2
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
    if os.path.exists(fv.output):
        print(
            f"tfcompress keygen: --output={fv.output!r} exists; keys are never overwritten.",
            file=sys.stderr,
        )
        return 2
    fd = os.open(fv.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(generate_key().hex() + "\n")
    print(f"Wrote a new AES-256 key to {fv.output} (mode 0600). Keep it apart from the model.")
    return 0


SUBCOMMANDS: dict[str, Subcommand] = {
    "demo": (
        "Train the small CNN on MNIST-5k, block-prune and quantize it, print the report.",
        _demo_flags,
        _demo,
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
    lines += [f"  {name:<8} {help_text}" for name, (help_text, _, _) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Runs `argv` (`[program, subcommand, *flags]`); returns the exit status."""
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if len(argv) >= 2 else 2
    name = argv[1]
    if name not in SUBCOMMANDS:
        print(f"Unknown subcommand {name!r}.\n\n{_usage()}", file=sys.stderr)
        return 2
    help_text, define, run_subcommand = SUBCOMMANDS[name]
    fv = flags.FlagValues()
    define(fv)
    if any(arg in ("-h", "--help", "-help", "--helpfull") for arg in argv[2:]):
        print(f"tfcompress {name}: {help_text}\n\n{fv.get_help()}")
        return 0
    try:
        extra = fv([f"tfcompress {name}", *argv[2:]])[1:]
    except flags.Error as err:
        print(f"tfcompress {name}: {err}\n\nSee: tfcompress {name} --help", file=sys.stderr)
        return 2
    if extra:
        print(f"tfcompress {name}: unexpected arguments {extra}", file=sys.stderr)
        return 2
    return run_subcommand(fv)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main(sys.argv))
