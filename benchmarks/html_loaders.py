"""HTML to text: sleuth's stdlib extractor against trafilatura, selectolax and BeautifulSoup (lxml), on real pages.

    PYTHONPATH=src python benchmarks/html_loaders.py [FOLDER ...] [--limit N] [--lib DIR ...]

Pages: every ``*.html`` under the folders (default: the Rust book and Debian's /usr/share/doc, when present).
Reference text per page: the words of its ``<main>`` (else ``<body>``) element without script/style, read with
lxml. Per extractor: seconds per page, recall of the reference's words (multiset), the share of the output's words
that are reference words, pages whose output holds a line (>= 30 characters) of the page's script or style code,
and pages whose output holds more entity-looking strings (``&amp;``, ``&#..;``) than the decoded page does.
``--lib DIR`` adds a folder to sys.path (libraries installed with ``pip install --target``).
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import time
from pathlib import Path

DEFAULT = [
    Path.home() / ".rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html/book",
    Path("/usr/share/doc"),
]
WORD = re.compile(r"\w+")
ENTITY = re.compile(r"&(?:[a-zA-Z]{2,8}|#\d{2,6}|#x[0-9a-fA-F]{2,6});")


def reference(markup: str) -> tuple[collections.Counter[str], list[str], int]:
    """(the reference's words, lines of script/style code of >= 30 characters, entities in the visible text)."""
    import lxml.html

    root = lxml.html.fromstring(markup.encode("utf-8"))
    code = []
    for bad in root.xpath("//script|//style|//noscript|//template"):
        code += [ln.strip() for ln in (bad.text or "").splitlines() if len(ln.strip()) >= 30]
        bad.drop_tree()
    main = root.find(".//main")
    node = main if main is not None else (root.find(".//body") if root.find(".//body") is not None else root)
    text = node.text_content()
    return collections.Counter(WORD.findall(text.lower())), code, len(ENTITY.findall(root.text_content()))


def extractors() -> dict[str, object]:
    from sleuth.loaders.html import html_to_text

    out: dict[str, object] = {"sleuth (html.parser)": html_to_text}
    try:
        import trafilatura

        out["trafilatura"] = lambda m: trafilatura.extract(m, include_comments=False, include_tables=True) or ""
    except ImportError:
        pass
    try:
        from selectolax.lexbor import LexborHTMLParser

        def sx(m: str) -> str:
            tree = LexborHTMLParser(m)
            tree.strip_tags(["script", "style", "noscript", "template"])
            return tree.body.text(separator="\n") if tree.body else ""

        out["selectolax"] = sx
    except ImportError:
        pass
    try:
        from bs4 import BeautifulSoup

        def bs(m: str) -> str:
            soup = BeautifulSoup(m, "lxml")
            for t in soup(["script", "style", "noscript", "template"]):
                t.decompose()
            return soup.get_text("\n")

        out["beautifulsoup4 (lxml)"] = bs
    except ImportError:
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", nargs="*", type=Path)
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--lib", action="append", default=[])
    a = ap.parse_args()
    sys.path[:0] = a.lib
    pages: list[str] = []
    for folder in a.folders or DEFAULT:
        if folder.is_dir():
            files = sorted(f for f in folder.rglob("*.html") if f.is_file())[: a.limit]
            pages += [f.read_text(encoding="utf-8", errors="replace") for f in files]
    refs = [reference(p) for p in pages]
    print(f"{len(pages)} pages, {sum(len(p) for p in pages) / 1e6:.1f} MB of HTML")
    print("| extractor | ms/page | reference words found | output words in reference | pages with script | "
          "pages with entities |")
    print("|---|---|---|---|---|---|")
    for name, fn in extractors().items():
        t0 = time.perf_counter()
        outs = [fn(p) for p in pages]  # type: ignore[operator]
        ms = 1000 * (time.perf_counter() - t0) / max(1, len(pages))
        found = total_ref = total_out = 0
        scripts = ents = 0
        for (ref, code, n_ent), text in zip(refs, outs, strict=True):
            scripts += any(c in text for c in code)
            ents += len(ENTITY.findall(text)) > n_ent  # more entity-looking strings than the decoded page has
            got = collections.Counter(WORD.findall(text.lower()))
            both = sum((ref & got).values())
            found += both
            total_ref += sum(ref.values())
            total_out += sum(got.values())
        print(f"| {name} | {ms:.1f} | {100 * found / max(1, total_ref):.1f}% | {100 * found / max(1, total_out):.1f}% "
              f"| {scripts} | {ents} |")


if __name__ == "__main__":
    main()
