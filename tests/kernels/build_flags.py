"""The kernel library's flags as the tests build with them, read from kernels/flags.bzl
(the one list of them: Bazel loads it, setup.py and these tests parse it)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLAGS_FILE = ROOT / "kernels" / "flags.bzl"


def read_flags(path: Path = FLAGS_FILE) -> dict:
    """The assignments of a flags.bzl (plain string and list literals)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body}


FLAGS = read_flags()
# Compiling any kernel source; a later -O flag (the tests' own) overrides the -O3 here.
KERNEL_COPTS: list[str] = FLAGS["KERNEL_COPTS"]
KERNEL_LINKOPTS: list[str] = FLAGS["KERNEL_LINKOPTS"]
VERSION_SCRIPT = str(ROOT / "kernels" / FLAGS["VERSION_SCRIPT"])
# setup.py's build at -O2 (quicker to build), without the static libstdc++/libgcc.
TEST_LIBRARY_FLAGS = [
    *KERNEL_COPTS,
    "-O2",
    "-fPIC",
    "-shared",
    f"-Wl,--version-script={VERSION_SCRIPT}",
]
