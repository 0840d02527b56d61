"""`html_report`: one self-contained HTML page of text, tables and PNG figures.

The page loads nothing: figures are embedded as base64 `data:` URIs and the style sheet is
inline, so the file can be mailed, archived or opened offline as it is.
"""

from __future__ import annotations

import base64
import html
import numbers
import os
from collections.abc import Mapping, Sequence

from tfcompress.utils.io import atomic_write_text, check_output_path, read_bytes_or_path

SECTION_KEYS = ("heading", "text", "preformatted", "table", "image", "caption")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222;
       padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 1em 0; } img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; }
"""


def _text(value: str) -> str:
    """`value` escaped for an element's content (quotes need no escaping there)."""
    return html.escape(value, quote=False)


def _cell(value) -> str:
    """A table cell's text: None is "-", integers get thousands separators."""
    if value is None:
        return "-"
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    if isinstance(value, numbers.Real):
        return f"{float(value):.4g}"
    return str(value)


def _table(table, where: str) -> str:
    if not isinstance(table, Mapping) or not isinstance(table.get("rows"), (list, tuple)):
        raise ValueError(
            f"`{where}` must be a dict with 'rows' (a list of lists or of dicts) and "
            f"optionally 'headers'. Received: {table!r:.120}"
        )
    rows = list(table["rows"])
    headers = table.get("headers")
    if headers is None:
        if not rows or not isinstance(rows[0], Mapping):
            raise ValueError(
                f"`{where}` needs 'headers' unless its rows are dicts. Received: {table!r:.120}"
            )
        headers = list(rows[0])
    headers = [str(h) for h in headers]
    lines = ["<table>", "<tr>" + "".join(f"<th>{_text(h)}</th>" for h in headers) + "</tr>"]
    for i, row in enumerate(rows):
        cells = [row.get(h) for h in headers] if isinstance(row, Mapping) else row
        if isinstance(cells, (str, bytes)) or not isinstance(cells, Sequence):
            raise ValueError(
                f"`{where}['rows'][{i}]` must be a list or a dict. Received: {row!r:.80}"
            )
        if len(cells) != len(headers):
            raise ValueError(
                f"`{where}['rows'][{i}]` has {len(cells)} cells but there are {len(headers)} "
                f"headers {headers}. Received: {row!r:.120}"
            )
        lines.append("<tr>" + "".join(f"<td>{_text(_cell(c))}</td>" for c in cells) + "</tr>")
    return "\n".join(lines + ["</table>"])


def _png_bytes(image, where: str) -> bytes:
    content = read_bytes_or_path(image, where, "PNG", ".png")
    if not content.startswith(PNG_SIGNATURE):
        raise ValueError(f"`{where}` is not a PNG (wrong signature). Received: {content[:8]!r}")
    return content


def _paragraphs(text: str) -> str:
    blocks = [b.strip() for b in text.split("\n\n") if b.strip()]
    return "\n".join("<p>" + _text(b).replace("\n", "<br>\n") + "</p>" for b in blocks)


def _section(section, i: int) -> str:
    where = f"sections[{i}]"
    if not isinstance(section, Mapping):
        raise TypeError(f"`{where}` must be a dict. Received: {section!r:.120}")
    unknown = sorted(set(section) - set(SECTION_KEYS))
    if unknown:
        raise ValueError(
            f"`{where}` has unknown keys {unknown}; allowed: {list(SECTION_KEYS)}. "
            f"Received keys: {sorted(section)}"
        )
    for key in ("heading", "text", "preformatted", "caption"):
        if section.get(key) is not None and not isinstance(section[key], str):
            raise TypeError(f"`{where}['{key}']` must be a string. Received: {section[key]!r:.80}")
    parts = []
    if section.get("heading"):
        parts.append(f"<h2>{_text(section['heading'])}</h2>")
    if section.get("text"):
        parts.append(_paragraphs(section["text"]))
    if section.get("preformatted"):
        parts.append(f"<pre>{_text(section['preformatted'])}</pre>")
    if section.get("table") is not None:
        parts.append(_table(section["table"], f"{where}['table']"))
    caption = section.get("caption") or ""
    if section.get("image") is not None:
        data = base64.b64encode(_png_bytes(section["image"], f"{where}['image']")).decode("ascii")
        alt = html.escape(caption or section.get("heading") or "figure", quote=True)
        figure = f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
        if caption:
            figure += f"<figcaption>{_text(caption)}</figcaption>"
        parts.append(figure + "</figure>")
    elif caption:
        parts.append(f"<p><em>{_text(caption)}</em></p>")
    return "<section>\n" + "\n".join(parts) + "\n</section>"


def image_sections(plots: Mapping | Sequence | None) -> list[dict]:
    """`html_report` sections for figures: `plots` maps captions to PNG paths (or bytes),
    or lists PNG paths (each captioned with its file name); None gives none."""
    if plots is None:
        return []
    if isinstance(plots, Mapping):
        return [{"image": image, "caption": str(caption)} for caption, image in plots.items()]
    if isinstance(plots, (str, bytes, os.PathLike)) or not isinstance(plots, Sequence):
        raise TypeError(
            "`plots` must be a list of PNG paths or a dict caption -> PNG path. "
            f"Received: {plots!r:.120}"
        )
    return [{"image": p, "caption": os.path.basename(os.fspath(p))} for p in plots]


def html_report(title: str, sections: list[dict], path: str | os.PathLike) -> str:
    """Writes one self-contained HTML page (atomically): a title, then the sections in order.

    Nothing is loaded from elsewhere: PNGs are embedded as base64 `data:`
    URIs, the style is inline. All text is HTML-escaped.

    Args:
        title: The page's title and top heading.
        sections: Dicts, each with any of (rendered in this order):
            `"heading"` (str), `"text"` (str; blank lines separate
            paragraphs), `"preformatted"` (str, e.g. a plain-text table),
            `"table"` (`{"headers": [str], "rows": [[cell]]}`, or rows as
            dicts keyed by header, the headers defaulting to the first row's
            keys; a cell None shows "-", integers get thousands separators,
            floats 4 significant digits), `"image"` (a PNG path or PNG bytes)
            and `"caption"` (str: the image's caption and alt text).
        path: The `.html` file to write; its folder must exist.

    Returns:
        The path written, as a string.

    Example:
        >>> from tfcompress.reporting.html import html_report
        >>> path = html_report("Results", [
        ...     {"heading": "Size", "text": "gzip bytes <before & after>",
        ...      "table": {"headers": ["model", "gzip bytes"],
        ...                "rows": [["float", 980000], ["planned", 24000]]}}], "report.html")
        >>> page = open(path).read()
        >>> "<td>980,000</td>" in page, "&lt;before &amp; after&gt;" in page
        (True, True)
    """
    path = check_output_path(path, "path")
    if not path.lower().endswith((".html", ".htm")):
        raise ValueError(f"`html_report` writes HTML: `path` must end in .html. Received: {path!r}")
    if not isinstance(title, str):
        raise TypeError(f"`title` must be a string. Received: {title!r:.80}")
    if isinstance(sections, (str, bytes, Mapping)) or not isinstance(sections, Sequence):
        raise TypeError(f"`sections` must be a list of dicts. Received: {sections!r:.120}")
    body = "\n".join(_section(s, i) for i, s in enumerate(sections))
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_text(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{_text(title)}</h1>\n{body}\n</body>\n</html>\n"
    )
    return atomic_write_text(path, page)
