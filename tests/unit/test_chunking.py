"""The chunker (sleuth.retrieval.chunking): offsets slice the exact text, ids are stable, boundaries are the
highest that fit, bad parameters are typed errors."""

from __future__ import annotations

import itertools
import random

import pytest

from sleuth.errors import ChunkingError, ConfigError
from sleuth.retrieval.chunking import Chunker, passage_id, split_passage_id

TEXT = (
    "Kestrel Bridge\n\n"
    "The Kestrel Bridge is a cable-stayed bridge over the river Vell. It was designed by Bram Okafor! "
    "Building began in 1998; it opened in 2003.\n\n"
    "Traffic on the bridge doubled within ten years. A second deck was proposed? The council refused it.\n"
    "A footbridge was added instead.\n\n"
    "See also: the Vell crossings."
)


def _check_cover(text: str, chunker: Chunker) -> None:
    """Every passage is the exact slice, within size, trimmed; together they hold every visible character."""
    ps = chunker.chunk("d.txt", text)
    for p in ps:
        piece = text[p.start:p.end]
        assert piece and piece == piece.strip()
        assert len(piece) <= chunker.size
        assert p.start_line == text.count("\n", 0, p.start) + 1
        assert p.end_line == text.count("\n", 0, p.end - 1) + 1
    if chunker.overlap == 0:
        covered = "".join(text[p.start:p.end] for p in ps)
        assert "".join(covered.split()) == "".join(text.split())
        assert all(a.end <= b.start for a, b in itertools.pairwise(ps))
    assert [p.n for p in ps] == list(range(1, len(ps) + 1))


def test_offsets_slice_the_exact_text_and_lines_match() -> None:
    for size in (20, 50, 90, 200, 1000):
        _check_cover(TEXT, Chunker(size=size))
        if size > 30:
            _check_cover(TEXT, Chunker(size=size, overlap=size // 3))


def test_ids_are_stable_across_chunkers_and_runs() -> None:
    a = Chunker(size=80).chunk("notes/a.pdf", TEXT)
    b = Chunker(size=80).chunk("notes/a.pdf", TEXT)
    assert a == b
    assert a[2].id == "notes/a.pdf#p3"
    assert split_passage_id("notes/a.pdf#p3") == ("notes/a.pdf", 3)
    assert split_passage_id("weird#p2.txt#p10") == ("weird#p2.txt", 10)
    assert split_passage_id("a.txt") is None and split_passage_id("a.txt#p0") is None
    assert passage_id("x", 1) == "x#p1"
    # a change after a passage does not move the passages before it
    longer = TEXT + "\n\nA new paragraph at the end of the document, long enough to need a passage of its own."
    c = Chunker(size=80).chunk("notes/a.pdf", longer)
    assert [(p.start, p.end) for p in c[: len(a) - 1]] == [(p.start, p.end) for p in a[:-1]]


def test_paragraphs_then_sentences_are_the_boundaries() -> None:
    ps = Chunker(size=160).chunk("d", TEXT)
    pieces = [TEXT[p.start:p.end] for p in ps]
    assert pieces[0].startswith("Kestrel Bridge")
    for piece in pieces:  # every passage ends at a sentence end or a paragraph end, never mid-word
        assert piece[-1] in ".!?;e" or piece.endswith("Bridge")
    small = Chunker(size=60).chunk("d", TEXT)
    # sentences longer than the size are cut between words, not inside one
    for p in small:
        assert p.start == 0 or TEXT[p.start - 1].isspace()
        assert p.end == len(TEXT) or TEXT[p.end].isspace() or TEXT[p.end - 1] in ".!?;"


def test_text_is_shared_evenly() -> None:
    text = " ".join(f"word{i}." for i in range(200))  # ~1,390 characters of short sentences
    sizes = [p.end - p.start for p in Chunker(size=1000).chunk("d", text)]
    assert len(sizes) == 2 and abs(sizes[0] - sizes[1]) < 20  # two halves, not 1,000 + 390


def test_short_and_empty_documents() -> None:
    assert Chunker().chunk("d", "") == []
    assert Chunker().chunk("d", " \n\n\t \n") == []
    one = Chunker().chunk("d", "\n\n  A short note.  \n")
    assert len(one) == 1 and (one[0].start, one[0].end) == (4, 17) and one[0].start_line == 3
    whole = Chunker().chunk("d", TEXT)
    assert len(whole) == 1 and (whole[0].start, whole[0].end) == (0, len(TEXT))  # fits: the document is the passage


def test_one_huge_paragraph_without_white_space() -> None:
    text = "x" * 2500 + " tail"
    ps = Chunker(size=1000).chunk("d", text)
    assert [(p.start, p.end) for p in ps] == [(0, 1000), (1000, 2000), (2000, 2505)]  # the tail joins the last cut
    _check_cover(text, Chunker(size=1000))
    one_para = " ".join(["lorem ipsum dolor sit amet"] * 400)  # one paragraph, no sentence end: cut between words
    _check_cover(one_para, Chunker(size=500, overlap=100))


def test_overlap_repeats_whole_units_and_always_advances() -> None:
    text = " ".join(f"Sentence number {i} ends here." for i in range(60))
    ps = Chunker(size=300, overlap=120).chunk("d", text)
    assert all(b.start < a.end for a, b in itertools.pairwise(ps))  # they overlap
    assert all(b.start > a.start and b.end > a.end for a, b in itertools.pairwise(ps))
    assert all(text[p.start - 2] == "." for p in ps[1:])  # an overlap starts at a sentence
    assert ps[-1].end == len(text)


def test_random_texts_cover_exactly() -> None:
    rng = random.Random(7)
    alphabet = ["word", "Word.", "x" * 30, "\n", "\n\n", " ", "  ", "end!", "é", "中文", "\t"]
    for _ in range(200):
        text = "".join(rng.choice(alphabet) + rng.choice(["", " "]) for _ in range(rng.randint(0, 300)))
        size = rng.randint(1, 400)
        _check_cover(text, Chunker(size=size))
        if size > 1:
            _check_cover(text, Chunker(size=size, overlap=rng.randint(0, size - 1)))


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"size": -5}, {"size": 100, "overlap": 100},
                                    {"size": 100, "overlap": 150}, {"size": 100, "overlap": -1},
                                    {"size": 10.5}, {"size": True}])
def test_bad_parameters_are_typed_errors(kwargs: dict) -> None:
    with pytest.raises(ChunkingError) as e:
        Chunker(**kwargs)
    assert isinstance(e.value, ConfigError) and e.value.hint
