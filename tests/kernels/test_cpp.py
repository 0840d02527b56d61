"""Builds and runs the C++ kernel test (kernels/tests/kernel_test.cc).

The binary checks every packed kernel the CPU runs against the reference kernel,
bit for bit, and prints ``isa=<best isa> cases=<n> failures=<n>``. It is built
with the host g++ (plain and under ASan/UBSan) and cross-built for aarch64 to run
under qemu, once with the dot-product extension and once without it.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "kernels"
TEST_SOURCE = KERNELS / "tests" / "kernel_test.cc"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1"]
# Debian package providing each tool, named in the skip message.
PACKAGES = {
    "g++": "g++",
    "aarch64-linux-gnu-g++": "g++-aarch64-linux-gnu",
    "qemu-aarch64": "qemu-user",
}


def require(tool: str) -> str:
    """Path of `tool`, or skips the test naming the Debian package to install."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not found; install the Debian package {PACKAGES[tool]}")
    return path


def sources() -> list[Path]:
    """The test plus the kernel library (the TFLite delegate is not part of it)."""
    library = sorted(p for p in (KERNELS / "src").glob("*.cc") if p.name != "delegate.cc")
    return [TEST_SOURCE, *library]


def build(compiler: str, flags: list[str], out: Path) -> Path:
    """Compiles the test binary to `out`, failing with the compiler's messages."""
    cmd = [compiler, "-std=c++17", *flags, *map(str, sources()), "-o", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


def run(cmd: list[str]) -> str:
    """Runs the test binary and returns its summary line; fails on any mismatch."""
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failures=0" in result.stdout, result.stdout
    return result.stdout


@pytest.fixture(scope="module")
def host_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("host") / "kernel_test"
    return build(require("g++"), ["-O2"], out)


@pytest.fixture(scope="module")
def aarch64_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = require("aarch64-linux-gnu-g++")
    out = tmp_path_factory.mktemp("aarch64") / "kernel_test"
    return build(compiler, ["-O2", "-static"], out)


def test_sanitizers(tmp_path: Path) -> None:
    binary = build(require("g++"), SANITIZE, tmp_path / "kernel_test_asan")
    run([str(binary)])


@pytest.mark.parametrize(("cases", "seed"), [(200, 1234), (2000, 1), (2000, 2), (10000, 3)])
def test_host_seeds(host_binary: Path, cases: int, seed: int) -> None:
    assert f"cases={cases + 2} " in run([str(host_binary), str(cases), str(seed)])


@pytest.mark.parametrize(("cpu", "isa"), [("max", "neondot"), ("cortex-a53", "portable")])
def test_aarch64_qemu(aarch64_binary: Path, cpu: str, isa: str) -> None:
    qemu = require("qemu-aarch64")
    assert f"isa={isa} " in run([qemu, "-cpu", cpu, str(aarch64_binary), "300", "5"])
