"""The lab's one page builder: every report (demo, compare, sweep, search) is a :func:`page`.

A page is self-contained (its figures embedded as base64 PNG), escapes every text it is
given (:func:`text`, :func:`items`), and carries the same style, so each command only
says what goes in it.
"""

import base64
import html

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1250px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
th { background: #f2f2f2; }
figure { margin: 1.5em 0; } img { max-width: 100%; }
figcaption { color: #555; font-size: 13px; }
"""


def text(value):
    """``value`` as HTML text: escaped, quotes included."""
    return html.escape(str(value))


def items(lines):
    """A bulleted list of plain-text lines (findings), escaped."""
    return "<ul>" + "".join(f"<li>{text(line)}</li>" for line in lines) + "</ul>"


def figures(images):
    """``images``: {caption: PNG path}, each embedded with its caption."""
    return "".join(
        f"<figure><img alt='{text(caption)}' src='data:image/png;base64,"
        f"{base64.b64encode(path.read_bytes()).decode()}'><figcaption>{text(caption)}</figcaption></figure>"
        for caption, path in images.items())


def page(title, body, heading=None):
    """The HTML document: ``title`` (plain text) in the tab and, unless ``heading`` (plain text)
    says otherwise, as the page's heading; ``body`` is HTML built with this module's helpers."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{text(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{text(heading or title)}</h1>
{body}
</body></html>
"""
