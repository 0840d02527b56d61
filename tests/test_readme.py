"""The README stays true: its tour runs, and CI runs its test command."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_tour_runs(tmp_path, monkeypatch):
    tour = re.search(r"## A short tour\n\n```python\n(.*?)```", README, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(tour.replace("epochs=3)", "epochs=1, verbose=0)"), namespace)
    assert namespace["after"].summary["tflite_bytes"] < namespace["before"].summary["tflite_bytes"]
    assert (tmp_path / "model_int8.tflite").exists()


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n# \d\. [^\n]*\n([^\n]+)\n```", README)
    assert len(commands) == 2 and "tfcompress demo" in commands[0]
    assert commands[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
