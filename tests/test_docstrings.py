"""Every docstring example under tfcompress/ runs and prints what it shows; none is skipped.

Each example sees only a few shared names (`keras`, `np`, `tf`, `tfcompress`, `tc`) and defines
everything else itself, so it reads as a complete example a user can paste.
"""

import doctest
import importlib
import pathlib
import pkgutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcompress

ROOT = pathlib.Path(tfcompress.__file__).parent

GLOBALS = {"keras": keras, "np": np, "tf": tf, "tfcompress": tfcompress, "tc": tfcompress}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules():
    """Every Python module of the package (not `__main__`, which runs the CLI on import)."""
    for info in pkgutil.walk_packages(tfcompress.__path__, "tfcompress."):
        spec = info.module_finder.find_spec(info.name)
        if info.name.endswith(".__main__") or not (spec.origin or "").endswith(".py"):
            continue
        yield importlib.import_module(info.name)


def _examples():
    finder = doctest.DocTestFinder(exclude_empty=True)
    for module in _modules():
        for test in finder.find(module, globs={}):
            if test.examples:
                yield pytest.param(test, id=test.name)


EXAMPLES = list(_examples())


def test_examples_found():
    assert len(EXAMPLES) > 30, [p.id for p in EXAMPLES]


@pytest.mark.parametrize("test", EXAMPLES)
def test_docstring_example(test, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    keras.utils.set_random_seed(0)
    test.globs = dict(GLOBALS)
    report = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)


def test_no_skipped_examples():
    skipped = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted(ROOT.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "+SKIP" in line
    ]
    assert not skipped, f"Docstring examples marked +SKIP (make them run): {skipped}"
