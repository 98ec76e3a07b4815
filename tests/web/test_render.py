"""The cockpit's server-side rich text: markdown-it-py, Pygments and difflib, then nh3. Every
XSS vector comes out inert (no element, attribute or URL that can run script), code keeps its
text, and diffs count what they add and remove."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from patchbay.web._render import render_diff, render_item, render_markdown

VECTORS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "<svg onload=alert(1)><circle r=5 /></svg>",
    '<a href="javascript:alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![img](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![img](javascript:alert(1))",
    '<iframe src="https://example.com"></iframe>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<math><mi xlink:href=\"javascript:alert(1)\">x</mi></math>",
    "[x](vbscript:msgbox(1))",
    '<a href="https://ok.example" onclick="alert(1)">x</a>',
    "<<script>script>alert(1)<</script>/script>",
    "```html\n<script>alert(1)</script>\n```",
    "`<img src=x onerror=alert(1)>`",
    "<style>body{display:none}</style>",
    "<form action=https://evil><input name=x></form>",
]

INERT_TAGS = {"p", "br", "strong", "em", "code", "pre", "a", "span", "s"}


class Elements(HTMLParser):
    """Every element and attribute the browser would build from a fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def elements(fragment: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(fragment)
    return parser.found


@pytest.mark.parametrize("vector", VECTORS)
def test_xss_vectors_render_inert(vector: str) -> None:
    out = render_markdown(vector)
    for tag, attrs in elements(out):
        assert tag in INERT_TAGS, out
        assert not any(name.startswith("on") or name in ("style", "src") for name in attrs), out
        href = attrs.get("href")
        assert href is None or re.match(r"(https?|mailto):", href), out


def test_html_in_code_is_text_and_highlighted_with_classes_only() -> None:
    out = render_markdown("```python\ndef f():\n    return '<script>'\n```")
    assert '<pre class="md-code" data-lang="python">' in out
    assert '<span class="k">def</span>' in out and "&lt;script&gt;" in out
    assert "style=" not in out  # the CSP allows no inline style: colours come from app.css


def test_unknown_language_and_raw_html_are_shown_as_text() -> None:
    out = render_markdown("```nosuchlang\n<b>x</b>\n```\n\n<b>bold?</b> **bold**")
    assert "&lt;b&gt;x&lt;/b&gt;" in out and "&lt;b&gt;bold?&lt;/b&gt;" in out and "<strong>bold</strong>" in out


def test_links_keep_safe_schemes_and_open_apart() -> None:
    out = render_markdown("[a](https://example.com/x) [m](mailto:a@example.com)")
    assert 'href="https://example.com/x"' in out and 'href="mailto:a@example.com"' in out
    assert out.count('rel="noopener noreferrer"') == 2 and 'target="_blank"' in out


def test_tables_and_lists() -> None:
    out = render_markdown("| a | b |\n|--:|---|\n| 1 | 2 |\n\n- one\n- two\n\n3. three")
    assert "<table>" in out and "<td>1</td>" in out and "<li>one</li>" in out and '<ol start="3">' in out


def test_diff_marks_added_and_removed_lines_and_escapes() -> None:
    out = render_diff("src/a.py", "a\n<b>\nc\n", "a\nB\nc\nd\n")
    assert '<span class="diff-del">-&lt;b&gt;</span>' in out and '<span class="diff-add">+B</span>' in out
    assert '<span class="diff-stat">+2 −1</span>' in out and "src/a.py" in out


def test_render_item_shapes() -> None:
    assert render_item({"markdown": "**x**"}) == "<p><strong>x</strong></p>\n"
    assert "diff-add" in render_item({"diff": {"path": "n.txt", "old": "", "new": "hello"}})
    assert render_item({"nothing": 1}) == "" and render_item("text") == ""
