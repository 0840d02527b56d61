"""Plain-text and Markdown tables, and the number formats the report uses."""

from __future__ import annotations

import json


def fmt_int(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def fmt_float(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def fmt_ratio(before: float | None, after: float | None) -> str:
    """`before / after` as `"4.00x"`: how many times smaller or faster `after` is."""
    if before is None or after is None or after == 0:
        return "-"
    return f"{before / after:.2f}x"


def render_table(headers: list[str], rows: list[list[str]], markdown: bool = False) -> str:
    """Renders rows of strings; the first column is left-aligned, the others right-aligned."""
    if markdown:
        lines = ["| " + " | ".join(headers) + " |"]
        lines.append("|" + "|".join([":---"] + ["---:"] * (len(headers) - 1)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]

    def line(cells):
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


class Renderable:
    """Text, Markdown and JSON renderings from `_render(markdown)` and `to_dict()`."""

    def _render(self, markdown: bool) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict:
        raise NotImplementedError

    def to_text(self) -> str:
        """A plain-text rendering for the terminal."""
        return self._render(markdown=False)

    def to_markdown(self) -> str:
        """A Markdown rendering."""
        return self._render(markdown=True)

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        return self.to_text()
