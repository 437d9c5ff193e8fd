"""Detecting a text file's encoding: chardet 7 (what sleuth uses) against charset-normalizer and a UTF-8-else-cp1252
rule, on real translated text encoded in the legacy encodings people's files are in.

    PYTHONPATH=src python benchmarks/text_encodings.py [--lib DIR ...]

Text: the translations (msgstr) of Debian's gettext catalogs (/usr/share/locale/LANG/LC_MESSAGES/*.mo, the
largest catalog per language), joined into documents of about 300 and 3000 bytes, each encoded in the legacy
encodings of its language (strings the encoding cannot hold are left out). A detection is right when the decoded
text equals the original exactly (so cp1252 for a latin-1 file counts as right when the text is the same).
``sleuth`` is :func:`sleuth.loaders.text.decode` (UTF-8 first, then chardet, with sleuth's own checks).
"""

from __future__ import annotations

import argparse
import gettext
import sys
import time
from collections import defaultdict
from pathlib import Path

LOCALES = Path("/usr/share/locale")
ENCODINGS = {
    "fr": ["latin-1", "cp1252"], "de": ["latin-1", "cp1252"], "es": ["latin-1"], "pt": ["cp1252"],
    "it": ["latin-1"], "pl": ["cp1250", "iso-8859-2"], "cs": ["cp1250"], "hu": ["iso-8859-2"],
    "ru": ["cp1251", "koi8-r"], "uk": ["cp1251"], "bg": ["cp1251"], "el": ["iso-8859-7", "cp1253"],
    "tr": ["cp1254"], "he": ["cp1255"], "ar": ["cp1256"], "ja": ["shift_jis", "euc-jp"],
    "zh_CN": ["gb18030"], "zh_TW": ["big5"], "ko": ["euc-kr"], "th": ["tis-620"], "vi": ["cp1258"],
}
UNICODE = ["utf-8", "utf-16", "utf-8-sig"]


def texts(lang: str, size: int, n: int) -> list[str]:
    folder = LOCALES / lang / "LC_MESSAGES"
    if not folder.is_dir():
        return []
    mo = max(folder.glob("*.mo"), key=lambda p: p.stat().st_size, default=None)
    if mo is None:
        return []
    with mo.open("rb") as fh:
        cat = gettext.GNUTranslations(fh)
    strings = [s for k, s in cat._catalog.items() if k and isinstance(s, str) and len(s) > 20]  # type: ignore[attr-defined]
    out, cur = [], ""
    for s in strings:
        cur += s.replace("\x00", " ") + "\n"
        if len(cur.encode("utf-8")) >= size:
            out.append(cur)
            cur = ""
            if len(out) >= n:
                break
    return out


def detectors() -> dict[str, object]:
    from charset_normalizer import from_bytes

    from sleuth.loaders.text import decode

    def cn(b: bytes) -> str | None:
        best = from_bytes(b).best()
        return str(best) if best is not None else None

    def naive(b: bytes) -> str:
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return b.decode("cp1252", errors="replace")

    def ours(b: bytes) -> str | None:
        try:
            return decode(b).text
        except Exception:
            return None

    out: dict[str, object] = {"sleuth": ours, "charset-normalizer": cn, "utf-8 else cp1252": naive}
    try:
        import chardet

        def cd(b: bytes) -> str | None:
            enc = chardet.detect(b)["encoding"]
            try:
                return b.decode(enc) if enc else None
            except (LookupError, UnicodeDecodeError):
                return None

        out["chardet"] = cd
    except ImportError:
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", action="append", default=[])
    ap.add_argument("--per-lang", type=int, default=5)
    a = ap.parse_args()
    sys.path[:0] = a.lib
    cases: list[tuple[str, int, bytes, str]] = []  # (encoding, size, bytes, original text)
    for size in (300, 3000):
        for lang, encs in ENCODINGS.items():
            for t in texts(lang, size, a.per_lang):
                for enc in [*encs, *UNICODE[:1]] if lang in ("fr", "ru", "ja") else encs:
                    kept = "".join(ch for ch in t if ch.encode(enc, errors="ignore") or ch == "")
                    cases.append((enc, size, kept.encode(enc), kept))
            if lang in ("de", "zh_CN"):
                for t in texts(lang, size, a.per_lang):
                    for enc in UNICODE[1:]:
                        cases.append((enc, size, t.encode(enc), t))
    print(f"{len(cases)} documents in {len({c[0] for c in cases})} encodings")
    rows = []
    for name, fn in detectors().items():
        ok: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
        t0 = time.perf_counter()
        for enc, size, data, orig in cases:
            got = fn(data)  # type: ignore[operator]
            right = got is not None and got.lstrip("\ufeff") == orig
            ok[(size, enc)][0] += right
            ok[(size, enc)][1] += 1
        ms = 1000 * (time.perf_counter() - t0) / len(cases)
        rows.append((name, ok, ms))
    encs = sorted({c[0] for c in cases})
    for size in (300, 3000):
        print(f"\n~{size} bytes per document: documents decoded exactly")
        print("| detector | all | " + " | ".join(encs) + " | ms/doc |")
        print("|---|---|" + "---|" * len(encs) + "---|")
        for name, ok, ms in rows:
            cells = [f"{ok[(size, e)][0]}/{ok[(size, e)][1]}" for e in encs]
            tot = sum(ok[(size, e)][0] for e in encs), sum(ok[(size, e)][1] for e in encs)
            print(f"| {name} | {tot[0]}/{tot[1]} | " + " | ".join(cells) + f" | {ms:.2f} |")


if __name__ == "__main__":
    main()
