"""Rich text for the cockpit, rendered on the server: markdown (markdown-it-py, raw HTML off),
code blocks highlighted by Pygments (CSS classes only: the CSP allows no inline style), and
unified diffs (difflib) for edit and write tools. Every fragment then goes through nh3 with a
small allowlist, so what reaches the browser is inert whatever the agent wrote.

``POST /api/render`` takes ``{"items": [{"markdown": text} | {"diff": {path, old, new}}, …]}``
and answers ``{"html": [fragment, …]}`` in the same order. It changes nothing, so it needs a
signed-in caller but no CSRF token.
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound
from quart import Response, request
from quart_trio import QuartTrio

MAX_ITEMS = 200
MAX_TEXT = 200_000  # characters of one item; longer text is cut (and says so)
DIFF_CONTEXT = 3
_LANG = re.compile(r"[\w+#.-]{1,32}")
_TOKEN_CLASSES = {name for name in STANDARD_TYPES.values() if name}

TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "span", "div",
}
ATTRIBUTES = {
    "a": {"href", "title"}, "ol": {"start"},
    "pre": {"data-lang"}, "div": {"data-path"},
}
CLASSES = {
    "span": _TOKEN_CLASSES | {"diff-add", "diff-del", "diff-hunk", "diff-ctx", "diff-stat"},
    "pre": {"md-code", "diff-body"}, "div": {"diff", "diff-head"}, "code": {"hl"},
}


def _highlight(code: str, lang: str, _attrs: Any) -> str:
    name = lang.strip().split()[0] if lang.strip() else ""
    if not name or not _LANG.fullmatch(name):
        return f'<pre class="md-code"><code>{html.escape(code)}</code></pre>'
    try:
        lexer = get_lexer_by_name(name)
    except ClassNotFound:
        return f'<pre class="md-code" data-lang="{html.escape(name)}"><code>{html.escape(code)}</code></pre>'
    spans = highlight(code, lexer, HtmlFormatter(nowrap=True))
    return f'<pre class="md-code" data-lang="{html.escape(name)}"><code class="hl">{spans}</code></pre>'


_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False,
                                "highlight": _highlight}).enable(["table", "strikethrough"]).disable("image")


def clean(fragment: str) -> str:
    """The one sanitizer every fragment passes: tags, attributes, classes and URL schemes allowed."""
    return nh3.clean(fragment, tags=TAGS, attributes=ATTRIBUTES, allowed_classes=CLASSES,
                     url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer",
                     set_tag_attribute_values={"a": {"target": "_blank"}},
                     strip_comments=True)


@lru_cache(maxsize=4096)
def render_markdown(text: str) -> str:
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "\n\n*(cut: the rest is too long to show)*"
    return clean(_MD.render(text))


def render_diff(path: str, old: str, new: str) -> str:
    """A unified diff of two texts (a new file when ``old`` is empty) with +/- counts; one block
    span per line (the spans are the lines: no newlines between them)."""
    old_lines = old[:MAX_TEXT].splitlines()
    new_lines = new[:MAX_TEXT].splitlines()
    rows: list[str] = []
    added = removed = 0
    for line in list(difflib.unified_diff(old_lines, new_lines, lineterm="", n=DIFF_CONTEXT))[2:]:
        if line.startswith("@@"):
            kind = "diff-hunk"
        elif line.startswith("+"):
            kind, added = "diff-add", added + 1
        elif line.startswith("-"):
            kind, removed = "diff-del", removed + 1
        else:
            kind = "diff-ctx"
        rows.append(f'<span class="{kind}">{html.escape(line) or " "}</span>')
    head = (f'<div class="diff-head"><code>{html.escape(path or "file")}</code> '
            f'<span class="diff-stat">+{added} −{removed}</span></div>')
    body = "".join(rows) if rows else '<span class="diff-ctx">(no change)</span>'
    return clean(f'<div class="diff" data-path="{html.escape(path)}">{head}<pre class="diff-body">{body}</pre></div>')


def render_item(item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("markdown"), str):
        return render_markdown(item["markdown"])
    diff = item.get("diff") if isinstance(item, dict) else None
    if isinstance(diff, dict):
        def text(name: str) -> str:
            value = diff.get(name)
            return value if isinstance(value, str) else ""
        return render_diff(text("path"), text("old"), text("new"))
    return ""


Handler = Callable[..., Awaitable[Response]]


def register(app: QuartTrio, guarded: Callable[[bool], Callable[[Handler], Handler]],
             error: Callable[..., Response], ok: Callable[..., Response]) -> None:
    """Add ``POST /api/render`` to the app (read-only: signed in, no CSRF)."""

    @app.post("/api/render")
    @guarded(False)
    async def render(_caller: Any) -> Response:
        data = await request.get_json(force=True, silent=True)
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            return error(400, "the body must be {\"items\": [...]}")
        if len(items) > MAX_ITEMS:
            return error(400, f"at most {MAX_ITEMS} items per request")
        return ok({"html": [render_item(item) for item in items]})
