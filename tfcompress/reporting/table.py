"""Plain-text and Markdown tables, and the number formats the report uses."""

from __future__ import annotations

import json
import os

from tfcompress.reporting.html import html_report, image_sections


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


def render_sections(title: str, sections: list[dict], markdown: bool = False) -> str:
    """Text or Markdown of `html_report`-style sections (heading, text, table), each part
    a paragraph; headings are `###` in Markdown."""
    parts = [title]
    for section in sections:
        if section.get("heading"):
            parts.append(("### " if markdown else "") + section["heading"])
        if section.get("text"):
            parts.append(section["text"])
        if section.get("table") is not None:
            table = section["table"]
            parts.append(render_table(table["headers"], table["rows"], markdown))
    return "\n\n".join(parts) + "\n"


class Renderable:
    """Text, Markdown, JSON and HTML renderings from `_render(markdown)` and `to_dict()`.

    A subclass that also defines `_sections()` (`html_report` sections) and
    `_title(markdown)` gets real HTML tables; else the page's title is the
    first line of the text rendering and the rest is shown preformatted.
    """

    def _render(self, markdown: bool) -> str:
        raise NotImplementedError

    def _title(self, markdown: bool) -> str:
        return self._render(markdown).split("\n", 1)[0]

    def _sections(self) -> list[dict]:
        rest = self._render(markdown=False).split("\n", 1)[1:]
        return [{"preformatted": rest[0].strip("\n")}] if rest and rest[0].strip() else []

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

    def to_html(self, path: str | os.PathLike, plots: dict | list | None = None) -> str:
        """Writes a self-contained HTML page of this rendering (atomically).

        Args:
            path: The `.html` file; its folder must exist.
            plots: PNG figures to embed after the tables: a dict caption ->
                PNG path (or bytes), or a list of PNG paths.

        Returns:
            The path written, as a string.

        Example:
            >>> before = tfcompress.reporting.CompressionReport("float", summary={"params": 4810})
            >>> after = tfcompress.reporting.CompressionReport("int8", summary={"params": 4810})
            >>> path = before.compare(after).to_html("comparison.html")
            >>> "<td>4,810</td>" in open(path).read()
            True
        """
        sections = self._sections() + image_sections(plots)
        return html_report(self._title(markdown=False), sections, path)

    def __str__(self) -> str:
        return self.to_text()
