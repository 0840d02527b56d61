"""html_report and to_html: one self-contained page, escaped text, embedded figures."""

import base64
import re

import matplotlib.image
import numpy as np
import pytest

from tfcompress.reporting import CompressionReport, LayerStats
from tfcompress.reporting.html import html_report
from tfcompress.reporting.table import Renderable


@pytest.fixture(scope="module")
def png(tmp_path_factory):
    """A small PNG (a gradient; any PNG will do, drawing fonts would only cost time)."""
    path = tmp_path_factory.mktemp("figures") / "size.png"
    matplotlib.image.imsave(path, np.arange(64.0).reshape(8, 8))
    return path


def embedded_images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def external_references(page: str) -> list[str]:
    """Every src/href that is not a data URI, and any URL at all."""
    links = re.findall(r'(?:src|href)="(?!data:)([^"]*)"', page)
    return links + re.findall(r"(?:https?:)?//[\w.-]+\.\w+", page)


def test_html_report_is_self_contained_and_escaped(png, tmp_path):
    sections = [
        {"heading": "Size <b>", "text": "one & two\n\nthree", "preformatted": "a  <b>  c"},
        {"table": {"headers": ["model", "gzip bytes", "ratio"], "rows": [["float", 980000, None]]}},
        {"table": {"rows": [{"layer": "<fc1>", "sparsity": 0.95}]}},  # headers from the dict
        {"image": png, "caption": 'accuracy vs "size"'},
        {"image": png.read_bytes()},
    ]
    path = html_report("Report <script>", sections, tmp_path / "report.html")
    assert path == str(tmp_path / "report.html")
    page = open(path, encoding="utf-8").read()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script>" not in page and "<b>" not in page
    assert "<h1>Report &lt;script&gt;</h1>" in page and "<h2>Size &lt;b&gt;</h2>" in page
    assert "<p>one &amp; two</p>" in page and "<p>three</p>" in page
    assert "<pre>a  &lt;b&gt;  c</pre>" in page
    assert "<td>980,000</td><td>-</td>" in page
    assert "<th>layer</th><th>sparsity</th>" in page and "<td>&lt;fc1&gt;</td><td>0.95</td>" in page
    assert 'alt="accuracy vs &quot;size&quot;"' in page
    assert '<figcaption>accuracy vs "size"</figcaption>' in page
    assert embedded_images(page) == [png.read_bytes()] * 2
    assert external_references(page) == []


def test_comparison_to_html(png, tmp_path):
    def report(name, nonzero, gzip_bytes):
        layer = LayerStats(
            "fc1", "Dense", params=1000, nonzero=nonzero, macs=1000, stored_bytes=nonzero
        )
        return CompressionReport(
            name,
            layers=[layer],
            summary={"params": 1000, "nonzero": nonzero, "gzip_bytes": gzip_bytes},
        )

    comparison = report("float", 1000, 4000).compare(report("pruned", 100, 500))
    path = comparison.to_html(tmp_path / "comparison.html", plots={"Accuracy vs size": png})
    page = open(path, encoding="utf-8").read()
    assert "<h1>Comparison: float -&gt; pruned</h1>" in page
    for label, before, after, change in comparison._summary_rows():  # the text table's numbers
        assert f"<td>{label}</td><td>{before}</td><td>{after}</td><td>{change}</td>" in page
    assert "<td>8.00x</td>" in page  # gzip bytes 4000 -> 500
    assert "<h2>Per layer (' = after)</h2>" in page and "<td>fc1</td>" in page
    assert embedded_images(page) == [png.read_bytes()]
    assert "<figcaption>Accuracy vs size</figcaption>" in page
    # a report, and a rendering that only has text, get pages too
    page = open(comparison.before.to_html(tmp_path / "before.html", plots=[png])).read()
    assert "<h2>Summary</h2>" in page and "<td>1,000</td>" in page
    assert "<figcaption>size.png</figcaption>" in page

    class TextOnly(Renderable):
        def _render(self, markdown):
            return "Title <x>\n\na <b>  table\n"

    page = open(TextOnly().to_html(tmp_path / "text.html")).read()
    assert "<h1>Title &lt;x&gt;</h1>" in page and "<pre>a &lt;b&gt;  table</pre>" in page


@pytest.mark.parametrize(
    "sections, error, match",
    [
        ({"heading": "x"}, TypeError, r"`sections` must be a list"),
        (["text"], TypeError, r"`sections\[0\]` must be a dict.*'text'"),
        ([{"title": "x"}], ValueError, r"sections\[0\]` has unknown keys \['title'\]; allowed"),
        ([{"text": 3}], TypeError, r"sections\[0\]\['text'\]` must be a string.*3"),
        (
            [{}, {"table": {"headers": ["a", "b"], "rows": [[1]]}}],
            ValueError,
            r"sections\[1\]\['table'\]\['rows'\]\[0\]` has 1 cells but there are 2",
        ),
        ([{"table": {"rows": [[1]]}}], ValueError, r"needs 'headers' unless its rows are dicts"),
        ([{"table": [[1]]}], ValueError, r"sections\[0\]\['table'\]` must be a dict with 'rows'"),
        ([{"image": b"GIF89a"}], ValueError, r"sections\[0\]\['image'\]` is not a PNG.*GIF89a"),
        (
            [{"image": "missing.png"}],
            FileNotFoundError,
            r"No PNG file at `sections\[0\]\['image'\]`='missing.png'",
        ),
        ([{"image": 3}], TypeError, r"PNG bytes or a path.*int"),
    ],
)
def test_html_report_bad_input(sections, error, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "report.html"
    target.write_text("kept")
    with pytest.raises(error, match=match):
        html_report("t", sections, target)
    assert target.read_text() == "kept"  # an error leaves the old file as it was


def test_html_report_bad_path(tmp_path):
    with pytest.raises(ValueError, match=r"must end in .html.*report.txt"):
        html_report("t", [], tmp_path / "report.txt")
    with pytest.raises(FileNotFoundError, match="missing folder"):
        html_report("t", [], tmp_path / "no" / "report.html")
    with pytest.raises(TypeError, match=r"`plots` must be a list of PNG paths.*'size.png'"):
        CompressionReport("r").to_html(tmp_path / "r.html", plots="size.png")
