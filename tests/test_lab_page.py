"""The lab's one page builder: every report is built by adamkit.lab.page and escapes its text."""

from pathlib import Path

from adamkit.lab import page

LAB = Path(page.__file__).parent


def test_one_page_builder():
    builders = sorted(str(p.relative_to(LAB)) for p in LAB.rglob("*.py") if "<!doctype" in p.read_text().lower())
    assert builders == ["page.py"]
    users = sorted(str(p.relative_to(LAB)) for p in LAB.rglob("*.py") if "from adamkit.lab.page import" in
                   p.read_text())
    assert users == ["report.py", "sweep/report.py"]


def test_page_escapes_what_it_shows(tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG")
    html = page.page("<script>t</script>", page.items(["a < b & 'c'"]) + page.figures({"<x>": png}))
    assert "<script>" not in html and "&lt;script&gt;t&lt;/script&gt;" in html
    assert "<li>a &lt; b &amp; &#x27;c&#x27;</li>" in html
    assert "alt='&lt;x&gt;'" in html and "data:image/png;base64,iVBORw==" in html


def test_one_findings_module():
    """Sentences about results are written in adamkit.lab.findings only."""
    from adamkit.lab import findings

    writers = sorted(str(p.relative_to(LAB)) for p in LAB.rglob("*.py") if "def findings(" in p.read_text()
                     or "def _adamw_claim(" in p.read_text() or "def _why(" in p.read_text())
    assert writers == ["findings.py"]
    assert all(callable(getattr(findings, name)) for name in ("demo", "comparison", "sweep", "search"))
