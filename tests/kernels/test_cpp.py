"""Builds and runs the C++ kernel test (kernels/tests/kernel_test.cc).

The binary checks every packed kernel the CPU runs against the reference kernel,
bit for bit, and prints ``isa=<best isa> cases=<n> failures=<n>``. It is built
with the host g++ (plain and under ASan/UBSan) and cross-built for aarch64 to run
under qemu, once with the dot-product extension and once without it. Where the
CPU lacks AVX-512 VNNI, that kernel is checked too, built against SIMDe's
portable implementation of the AVX-512 intrinsics.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from build_flags import KERNEL_COPTS

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "kernels"
TEST_SOURCE = KERNELS / "tests" / "kernel_test.cc"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1"]
# Debian package providing each tool, named in the skip message.
PACKAGES = {
    "g++": "g++",
    "aarch64-linux-gnu-g++": "g++-aarch64-linux-gnu",
    "qemu-aarch64": "qemu-user",
    "simde": "libsimde-dev",
}
SIMDE = Path("/usr/include/simde/x86/avx512.h")


def require(tool: str) -> str:
    """Path of `tool`, or skips the test naming the Debian package to install."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not found; install the Debian package {PACKAGES[tool]}")
    return path


def sources(folder: Path = KERNELS / "src") -> list[Path]:
    """The test plus the kernel library (the TFLite delegate is not part of it)."""
    library = sorted(p for p in folder.glob("*.cc") if p.name != "delegate.cc")
    return [TEST_SOURCE, *library]


def build(compiler: str, flags: list[str], out: Path, folder: Path = KERNELS / "src") -> Path:
    """Compiles the test binary to `out` with the library's flags then `flags` (a later -O
    wins), failing with the compiler's messages."""
    cmd = [compiler, *KERNEL_COPTS, *flags, *map(str, sources(folder)), "-o", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


def run(cmd: list[str], env: dict[str, str] | None = None) -> str:
    """Runs the test binary and returns its summary line; fails on any mismatch."""
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
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


AVX512_FILES = ("kernels_avx512.cc", "requant_avx512.h", "depthwise_avx512.cc")


def emulated_avx512_sources(folder: Path) -> Path:
    """A copy of kernels/src whose AVX-512 kernels call SIMDe instead of the CPU's
    instructions: the same code and data layout, runnable on any x86-64 with AVX2."""
    shutil.copytree(KERNELS / "src", folder)
    replacements = [
        ("#include <immintrin.h>", "#include <simde/x86/avx512.h>"),
        ('__attribute__((target("avx512f,avx512bw,avx512vnni")))', ""),
        ("_mm512_", "simde_mm512_"),
        ("__m512i", "simde__m512i"),
    ]
    found = set()
    for name in AVX512_FILES:
        path = folder / name
        text = path.read_text(encoding="utf-8")
        for native, emulated in replacements:
            if native in text:
                found.add(native)
                text = text.replace(native, emulated)
        path.write_text(text, encoding="utf-8")
    assert found == {native for native, _ in replacements}, found
    return folder


def test_avx512_vnni_kernel_emulated(host_binary: Path, tmp_path: Path) -> None:
    if "isa=avx512vnni " in run([str(host_binary), "1", "1"]):
        pytest.skip("this CPU runs the AVX-512 VNNI kernel natively (checked by the other tests)")
    if "isa=avx2 " not in run([str(host_binary), "1", "1"]):
        pytest.skip("the emulated AVX-512 build uses native AVX2 for the rest")
    if not SIMDE.exists():
        pytest.skip(f"SIMDe not found; install the Debian package {PACKAGES['simde']}")
    folder = emulated_avx512_sources(tmp_path / "src")
    binary = build(require("g++"), ["-O1", "-mavx2"], tmp_path / "kernel_test", folder)
    env = {**os.environ, "TFC_TEST_EMULATED_ISA": "avx512vnni"}
    run([str(binary), "1500", "11"], env=env)
