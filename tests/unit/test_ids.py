from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sleuth import ids


@pytest.mark.parametrize(
    "source",
    ["a", "../etc/passwd", "/abs/path", "a b/c d", ".hidden", "..", "trailing.", "x" * 600, "é" * 300,
     "%2F literal", "René Magritte (painter)", "C:\\windows", "tab\there", "😀 emoji", "." * 400, " lead space"],
)
def test_roundtrip_and_safety(source: str) -> None:
    enc = ids.encode(source)
    assert ids.decode(enc) == source
    for seg in enc.split("/"):
        assert seg and not seg.startswith(".") and not seg.startswith(" ")
        assert len(seg.encode("utf-8")) <= 255
        assert seg not in (".", "..")
    assert "\\" not in enc and ":" not in enc


@given(st.text(min_size=1, max_size=700))
@settings(max_examples=300, deadline=None)
def test_roundtrip_any_text(source: str) -> None:
    enc = ids.encode(source)
    assert ids.decode(enc) == source
    assert all(0 < len(s.encode("utf-8", "surrogatepass")) <= 255 for s in enc.split("/"))
    assert not any(s.startswith(".") for s in enc.split("/"))


def test_readable_ids_stay_readable() -> None:
    assert ids.encode("10009203") == "10009203.txt"
    assert ids.encode("Kestrel Bridge") == "Kestrel Bridge.txt"


def test_empty_id_is_an_error() -> None:
    with pytest.raises(ValueError):
        ids.encode("")
