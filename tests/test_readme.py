"""The README stays true: its tour runs, and CI runs its test command."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_python_examples_run(tmp_path, monkeypatch):
    """Every ```python block, in order, in one namespace (with shorter training)."""
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    code = "\n".join(blocks).replace("epochs=3)", "epochs=1, verbose=0)")
    code = code.replace("epochs=1, callbacks", "epochs=1, verbose=0, callbacks")
    # The full 4,000 images for the CNN and its two prunings are most of this test's time;
    # 2,048 are 64 steps, past the pruning schedule's end_step=60, so sparsity still reaches 0.8.
    full = ".fit(data.x_train, data.y_train,"
    assert code.count(full) == 3
    code = code.replace(full, ".fit(data.x_train[:2048], data.y_train[:2048],")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(code, namespace)
    assert namespace["after"].summary["tflite_bytes"] < namespace["before"].summary["tflite_bytes"]
    assert (tmp_path / "model_int8.tflite").exists()
    sparsity = namespace["tc"].get_sparsity(namespace["plain"])
    assert abs(sparsity["fc1/kernel"] - 0.8) < 0.002 and abs(sparsity["conv2/kernel"] - 0.8) < 0.002
    assert sparsity["conv1/kernel"] == sparsity["logits/kernel"] == 0.0
    small = namespace["small"]
    assert [small.get_layer(n).output.shape[-1] for n in ("conv1", "conv2", "fc1")] == [16, 32, 64]


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n# \d\. [^\n]*\n([^\n]+)\n```", README)
    assert len(commands) == 2 and "tfcompress demo" in commands[0]
    assert commands[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
