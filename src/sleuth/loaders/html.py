"""HTML to text with the standard library's parser: what a reader sees, not the markup.

Dropped whole: ``script``, ``style``, ``noscript``, ``template``, ``svg``, ``math``, ``head`` (except its
``title``), ``iframe``, ``object``, ``canvas``, ``select`` and elements marked ``hidden`` / ``aria-hidden``.
Entities and character references are decoded (``&nbsp;`` becomes a space, ``&amp;`` ``&``). Block elements
(paragraphs, headings, list items, table rows, ``br``) end a line; table cells are separated by tabs; runs of
spaces collapse as a browser collapses them, except inside ``pre``. The title, when there is one, is the first
line. No boilerplate removal: navigation text stays (it is text a reader sees); measured against trafilatura,
selectolax and BeautifulSoup in ``docs/results/loaders.md``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

SKIP = frozenset({"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas",
                  "select", "head"})
BLOCK = frozenset({
    "address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "details", "dialog", "div", "dl",
    "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "html", "legend", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot",
    "thead", "tr", "ul",
})
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                  "track", "wbr"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANKS = re.compile(r"\n{3,}")
_LEAD = re.compile(r"^(?: (?=\S)|\t+)")  # a collapsed space or cell tabs at a line's start (pre indents stay)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.title: list[str] = []
        self.skip: list[str] = []  # the stack of open skipped elements (nested skips close in order)
        self.pre = 0
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and not self.skip[1:]:
            self.in_title = True
            return
        hidden = any(k == "hidden" or (k == "aria-hidden" and (v or "").lower() == "true") for k, v in attrs)
        if self.skip or tag in SKIP or (hidden and tag not in VOID):
            if tag not in VOID:
                self.skip.append(tag)
            return
        if tag == "pre":
            self.pre += 1
        if tag in ("td", "th"):
            self.out.append("\t")
        elif tag in BLOCK:
            self.out.append("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.out.append(f" {alt} ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:  # <div/> in HTML is an open tag; treat it as open and closed
            self.handle_starttag(tag, attrs)
            self.handle_endtag(tag)
        else:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.in_title:
            self.in_title = False
            return
        if self.skip:
            if tag in self.skip:  # close up to the matching open element (unclosed children included)
                while self.skip and self.skip.pop() != tag:
                    pass
            return
        if tag == "pre" and self.pre:
            self.pre -= 1
        if tag in BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.skip:
            self.out.append(data if self.pre else _SPACES.sub(" ", data.replace("\n", " ")))


def html_to_text(markup: str) -> str:
    """The visible text of an HTML document (title first), lines trimmed, at most one blank line in a row."""
    return html_document(markup)[0]


def html_document(markup: str) -> tuple[str, str]:
    """(:func:`html_to_text`'s text, the page's ``<title>`` or "")."""
    p = _Text()
    p.feed(markup)
    p.close()
    body = "".join(p.out)
    lines = [_LEAD.sub("", ln.rstrip(" \t")) for ln in body.split("\n")]
    text = _BLANKS.sub("\n\n", "\n".join(lines)).strip("\n")
    title = " ".join(" ".join(p.title).split())
    if title and not text.startswith(title):
        text = f"{title}\n\n{text}" if text else title
    return (text + "\n" if text else ""), title[:500]
