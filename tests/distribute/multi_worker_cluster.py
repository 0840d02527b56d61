"""Local multi-worker clusters for the tests: worker processes on 127.0.0.1, always reaped."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKER = pathlib.Path(__file__).with_name("worker.py")


def free_ports(count: int) -> list[int]:
    """`count` ports free on 127.0.0.1 now (skips the test where loopback sockets fail)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    except OSError as err:
        pytest.skip(f"cannot open TCP sockets on 127.0.0.1 for local workers: {err}")
    finally:
        for s in sockets:
            s.close()


def environment(tf_config: dict | None) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def start_workers(
    count: int, args: list[str], logs: pathlib.Path, env: dict | None = None
) -> list[subprocess.Popen]:
    """Starts `count` workers of `worker.py args` in one cluster; their output goes to `logs`."""
    if sys.platform == "win32":
        pytest.skip("local multi-worker clusters are tested on Linux and macOS only")
    addresses = [f"127.0.0.1:{port}" for port in free_ports(count)]
    processes = []
    for index in range(count):
        config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        with open(logs / f"worker_{index}.log", "w") as log:  # the child keeps its own copy
            processes.append(
                subprocess.Popen(
                    [sys.executable, str(WORKER), *args],
                    env={**environment(config), **(env or {})},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return processes


def kill(processes: list[subprocess.Popen]) -> None:
    """SIGKILLs every process still running and waits for it (no zombie, no stray worker)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()


def wait(
    processes: list[subprocess.Popen], timeout: float, logs: pathlib.Path, killed: int | None
) -> None:
    """Waits for all to exit 0 within `timeout` seconds, or for worker `killed` to die of
    SIGKILL; then (or at the first failure, or at the deadline) kills them all. Fails with
    the log of a worker that ended otherwise."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            codes = [process.poll() for process in processes]
            if all(code == 0 for code in codes) or any(code not in (None, 0) for code in codes):
                break
            time.sleep(0.2)
    finally:
        kill(processes)
    if killed is not None:
        code = processes[killed].returncode
        tail = (logs / f"worker_{killed}.log").read_text()[-3000:]
        assert code == -signal.SIGKILL, f"worker {killed} ended with {code}, not SIGKILL:\n{tail}"
        return
    for index, process in enumerate(processes):
        if process.returncode != 0:
            tail = (logs / f"worker_{index}.log").read_text()[-3000:]
            code = process.returncode
            pytest.fail(f"worker {index} exited with {code} (limit {timeout} s):\n{tail}")


def run_cluster(
    count: int,
    args: list[str],
    logs: pathlib.Path,
    timeout: float,
    env: dict | None = None,
    killed: int | None = None,
) -> None:
    """Runs a cluster to the end; with `killed`, until that worker SIGKILLs itself."""
    wait(start_workers(count, args, logs, env), timeout, logs, killed)


def run_single(args: list[str], timeout: float) -> None:
    """The same script in one process without `TF_CONFIG`: the single-process reference."""
    result = subprocess.run(
        [sys.executable, str(WORKER), *args],
        env=environment(None),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
