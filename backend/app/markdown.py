"""Notes → safe HTML: everything is HTML-escaped first, then a small Markdown subset is applied.

Supported: # headings (1–3), paragraphs, blank-line separation, - / * bullet lists, ``` code
blocks, `inline code`, **bold**, *italic*, and [text](url) links whose url is http(s) or mailto.
No raw HTML survives: the output contains only the tags this module writes.
"""
from __future__ import annotations

import html
import re

_LINK = re.compile(r"\[([^\]\n]{1,200})\]\(((?:https?://|mailto:)[^\s()<>\"']{1,500})\)")
_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"\*\*([^*\n]+)\*\*")
_ITALIC = re.compile(r"(?<![*\w])\*([^*\n]+)\*(?!\*)")


def _inline(text: str) -> str:
    """`text` is already escaped; code spans are protected from the other rules."""
    spans: list[str] = []

    def keep(m: re.Match) -> str:
        spans.append(f"<code>{m.group(1)}</code>")
        return f"\x00{len(spans) - 1}\x00"

    text = _CODE.sub(keep, text)
    # the URL was escaped with quote=True, so it cannot close the attribute
    text = _LINK.sub(lambda m: f'<a href="{m.group(2)}" rel="noopener noreferrer nofollow">{m.group(1)}</a>', text)
    text = _BOLD.sub(r"<strong>\1</strong>", text)
    text = _ITALIC.sub(r"<em>\1</em>", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], text)


def render_markdown(source: str) -> str:
    lines = html.escape(source.replace("\r\n", "\n").replace("\x00", ""), quote=True).split("\n")
    out: list[str] = []
    para: list[str] = []
    items: list[str] = []
    code: list[str] | None = None

    def flush() -> None:
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in lines:
        if code is not None:
            if line.strip().startswith("```"):
                out.append("<pre><code>" + "\n".join(code) + "</code></pre>")
                code = None
            else:
                code.append(line)
            continue
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            code = []
        elif not stripped:
            flush()
        elif m := re.match(r"(#{1,3})\s+(.*)", stripped):
            flush()
            level = len(m.group(1)) + 2  # h3–h5: notes sit under the page's own headings
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif m := re.match(r"[-*]\s+(.*)", stripped):
            if para:
                flush()
            items.append(m.group(1))
        else:
            if items:
                flush()
            para.append(stripped)
    if code is not None:
        out.append("<pre><code>" + "\n".join(code) + "</code></pre>")
    flush()
    return "\n".join(out)
