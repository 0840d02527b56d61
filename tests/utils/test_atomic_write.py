"""Atomic writes: file modes follow the umask or the replaced file; no temporary file stays."""

import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from tfcompress.utils import io as atomic_io
from tfcompress.utils.io import STALE_SECONDS, atomic_write_bytes, remove_stale_temp_files


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_file_gets_the_umask_mode(tmp_path, umask_022):
    path = atomic_write_bytes(tmp_path / "new.bin", b"data")
    assert _mode(path) == 0o644
    os.umask(0o027)
    assert _mode(atomic_write_bytes(tmp_path / "other.bin", b"data")) == 0o640


def test_a_replaced_file_keeps_its_mode(tmp_path, umask_022):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"old")
    os.chmod(path, 0o664)
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and _mode(path) == 0o664


def test_an_error_while_writing_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")
    assert sorted(os.listdir(tmp_path)) == ["model.tflite"] and path.read_bytes() == b"old"


# Loads io.py alone (stdlib only, so the child starts fast) and stalls before the rename.
_SLOW_WRITER = """
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location("io_alone", sys.argv[1])
io = importlib.util.module_from_spec(spec)
spec.loader.exec_module(io)
def stall(fd):
    print("writing", flush=True)
    time.sleep(60)
io.os.fsync = stall
io.atomic_write_bytes(sys.argv[2], b"x" * 1000)
"""


def test_temporary_files_of_a_killed_writer_are_removed_once_stale(tmp_path):
    target = tmp_path / "model.tflite"
    writer = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, atomic_io.__file__, str(target)],
        stdout=subprocess.PIPE,
    )
    assert writer.stdout.readline().strip() == b"writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    left = [name for name in os.listdir(tmp_path) if name.startswith(".tfcompress-")]
    assert len(left) == 1 and not target.exists()
    stale = tmp_path / left[0]
    fresh = tmp_path / ".tfcompress-abcd1234.tmp"  # another writer's, still running
    fresh.write_bytes(b"")
    foreign = tmp_path / ".tfcompress-user-notes.tmp"  # not a name we make
    foreign.write_bytes(b"")
    old = time.time() - STALE_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(foreign, (old, old))
    atomic_write_bytes(target, b"model")
    assert sorted(os.listdir(tmp_path)) == sorted([target.name, fresh.name, foreign.name])


def test_remove_stale_temp_files_returns_what_it_removed(tmp_path):
    stale = tmp_path / ".tfcompress-zz_99abc.tmp"
    stale.write_bytes(b"")
    assert remove_stale_temp_files(str(tmp_path)) == []
    old = time.time() - 2 * STALE_SECONDS
    os.utime(stale, (old, old))
    assert remove_stale_temp_files(str(tmp_path)) == [str(stale)]
