"""tfcompress.core is the bottom layer: every subpackage may import it, it imports none of them."""

import re
from pathlib import Path

import tfcompress


def test_core_is_the_bottom_layer():
    core = Path(tfcompress.__file__).parent / "core"
    imports = re.compile(r"^\s*(?:from|import)\s+(tfcompress[\w.]*)", re.MULTILINE)
    for source in core.glob("*.py"):
        for module in imports.findall(source.read_text()):
            assert module == "tfcompress.core" or module.startswith("tfcompress.core."), (
                f"{source.name} imports {module}"
            )
