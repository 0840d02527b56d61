"""The onnx extra stays optional: nothing imports it with tfcompress, and export_onnx says how
to install it when it is missing. (These run without the extra; test_onnx.py needs it.)"""

import ast
import pathlib
import sys

import keras
import pytest

import tfcompress as tc

ONNX_EXTRA = ("onnx", "onnxruntime", "tf2onnx")


def _import_time_imports(node: ast.AST) -> list[str]:
    """The modules imported outside any function body under `node`."""
    names = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import):
            names += [alias.name for alias in child.names]
        elif isinstance(child, ast.ImportFrom):
            names.append(child.module or "")
        elif not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            names += _import_time_imports(child)
    return names


def test_no_module_imports_onnx_at_import_time():
    """`import tfcompress` needs none of the onnx extra: only functions import its packages."""
    root = pathlib.Path(tc.__file__).parent
    found = [
        f"{path.relative_to(root)}: {name}"
        for path in sorted(root.rglob("*.py"))
        for name in _import_time_imports(ast.parse(path.read_text()))
        if name.split(".")[0] in ONNX_EXTRA
    ]
    assert not found
    assert "tf2onnx" in _import_time_imports(ast.parse("try:\n    import tf2onnx\nexcept: pass"))


def test_missing_packages(monkeypatch):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # `import tf2onnx` now fails
    with pytest.raises(
        ImportError, match=r"missing: (onnx|tf2onnx).*pip install 'tfcompress\[onnx\]'"
    ):
        tc.export_onnx(model)
