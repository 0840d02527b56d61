"""kernels/install_test_packages.sh installs only missing packages, with sudo only when not root.

Run with stand-ins for dpkg, id, sudo and apt-get on PATH that record how they were called.
"""

import os
import pathlib
import subprocess

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "kernels" / "install_test_packages.sh"
PACKAGES = ["bazel-bootstrap", "g++-aarch64-linux-gnu", "qemu-user", "libsimde-dev"]


def _fake(bin_dir: pathlib.Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(0o755)


def _run(tmp_path, installed: set[str], uid: int) -> list[str]:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    known = " ".join(sorted(installed))
    _fake(bin_dir, "dpkg", f'for p in {known}; do [ "$2" = "$p" ] && exit 0; done; exit 1')
    _fake(bin_dir, "id", f"echo {uid}")
    _fake(bin_dir, "sudo", f'echo "sudo $*" >> {log}; "$@"')
    _fake(bin_dir, "apt-get", f'echo "apt-get $*" >> {log}')
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run(["bash", str(SCRIPT)], check=True, env=env, capture_output=True, timeout=60)
    return log.read_text().splitlines() if log.exists() else []


def test_nothing_to_do_when_everything_is_installed(tmp_path):
    assert _run(tmp_path, set(PACKAGES), uid=0) == []


@pytest.mark.parametrize(("uid", "sudo"), [(0, False), (1000, True)])
def test_installs_only_the_missing_packages(tmp_path, uid, sudo):
    calls = _run(tmp_path, {"qemu-user"}, uid)
    missing = " ".join(p for p in PACKAGES if p != "qemu-user")
    assert any(c.endswith(f"apt-get install -y -q {missing}") for c in calls), calls
    assert any(c.startswith("sudo ") for c in calls) == sudo
