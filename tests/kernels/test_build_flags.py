"""Every build of the kernel library takes its flags from kernels/flags.bzl, the one list.

setup.py (pip), kernels/BUILD (Bazel) and the test builds (kernel_cases.py, test_cpp.py)
each add only how their tool makes a shared library or a test binary.
"""

from __future__ import annotations

import re
import runpy

import pytest
import setuptools
from build_flags import FLAGS, KERNEL_COPTS, KERNEL_LINKOPTS, ROOT

# A string literal spelling a flag of the kind flags.bzl holds (test builds may still pick
# their own -O level, which comes after the library's).
FLAG_LITERAL = re.compile(r"""["'](-std=|-W(?!l,)[a-z]|-fvisibility|-static-lib|-fuse-ld)""")
OPT_LITERAL = re.compile(r"""["']-O\d""")


def test_flags_file_holds_the_library_flags() -> None:
    assert set(FLAGS) == {"KERNEL_COPTS", "KERNEL_LINKOPTS", "VERSION_SCRIPT"}
    assert {"-O3", "-std=c++17", "-fvisibility=hidden"} <= set(KERNEL_COPTS)
    assert {"-static-libstdc++", "-static-libgcc"} <= set(KERNEL_LINKOPTS)
    assert (ROOT / "kernels" / FLAGS["VERSION_SCRIPT"]).is_file()


def test_setup_py_builds_with_the_flags_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: None)
    monkeypatch.chdir(ROOT)
    flags = runpy.run_path(str(ROOT / "setup.py"))["KERNEL_FLAGS"]
    version_script = f"-Wl,--version-script=kernels/{FLAGS['VERSION_SCRIPT']}"
    assert flags == [*KERNEL_COPTS, "-fPIC", "-shared", *KERNEL_LINKOPTS, version_script]
    text = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert not FLAG_LITERAL.findall(text) and not OPT_LITERAL.findall(text)


def test_bazel_build_loads_the_flags_file() -> None:
    build = (ROOT / "kernels" / "BUILD").read_text(encoding="utf-8")
    assert re.search(
        r'load\(":flags.bzl", "KERNEL_COPTS", "KERNEL_LINKOPTS", "VERSION_SCRIPT"\)', build
    )
    assert build.count("copts = KERNEL_COPTS") == 3  # the library, the delegate, the C++ test
    assert "linkopts = KERNEL_LINKOPTS" in build
    assert not FLAG_LITERAL.findall(build) and not OPT_LITERAL.findall(build)


def test_test_builds_read_the_flags_file() -> None:
    folder = ROOT / "tests" / "kernels"
    for path in sorted(folder.glob("*.py")):
        if path.name not in ("build_flags.py", "test_build_flags.py"):
            text = path.read_text(encoding="utf-8")
            assert not FLAG_LITERAL.findall(text), (path.name, FLAG_LITERAL.findall(text))
