"""A small harness: records the command, machine and versions with each result table."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from importlib import metadata

from tfcompress.reporting.table import render_table
from tfcompress.utils.io import atomic_write_text

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def kernel_table_name(host: str, cpu_tag: str = "") -> str:
    """`kernels-<CPU kind>[-<tag>]`: one kernel table per kind of CPU (`host_kind()`), and per
    tagged CPU where two of one kind were measured (the Zen 4 and Zen 5 are both `avx512vnni`)."""
    if cpu_tag and not cpu_tag.replace("-", "").isalnum():
        raise ValueError(f"`cpu_tag` must be letters, digits and '-'. Received: {cpu_tag!r}")
    return "kernels-" + host.replace("+", "-") + (f"-{cpu_tag}" if cpu_tag else "")


def environment() -> dict:
    """Command, machine and package versions, recorded with every result."""
    versions = {}
    for package in ("tensorflow", "keras", "numpy", "ai-edge-litert", "tfcompress"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    spec = sys.modules["__main__"].__spec__
    program = ["-m", spec.name] if spec is not None else [os.path.relpath(sys.argv[0])]
    return {
        "command": " ".join(["python", *program, *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
    }


def write_results(
    name: str,
    title: str,
    headers: list[str],
    rows: list[list[str]],
    records: list[dict],
    notes: str = "",
    output_dir: str = RESULTS_DIR,
) -> tuple[str, str]:
    """Writes `<output_dir>/<name>.json` and `.md` (default: `results/`); returns both paths."""
    env = environment()
    os.makedirs(output_dir, exist_ok=True)
    json_path = os.path.join(output_dir, f"{name}.json")
    md_path = os.path.join(output_dir, f"{name}.md")
    atomic_write_text(json_path, json.dumps({"environment": env, "results": records}, indent=2))
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    markdown = (
        "\n\n".join(
            part
            for part in [
                f"# {title}",
                render_table(headers, rows, markdown=True),
                notes,
                f"Command: `{env['command']}`  \nMachine: {env['cpu']}, {env['cores']} cores, "
                f"Python {env['python']}  \nVersions: {versions}  \nDate: {env['date']}",
            ]
            if part
        )
        + "\n"
    )
    atomic_write_text(md_path, markdown)
    return json_path, md_path
