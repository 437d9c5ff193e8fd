"""Records users construct reject misspelled fields with a clear validation error."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sleuth.records import Hit


def test_hit_rejects_an_unknown_field() -> None:
    with pytest.raises(ValidationError) as e:
        Hit(doc_id="a", scor=3.0)  # type: ignore[call-arg]
    assert "scor" in str(e.value) and "Extra inputs are not permitted" in str(e.value)


def test_hit_extra_information_goes_in_metadata() -> None:
    h = Hit(doc_id="a", score=1.5, metadata={"title": "A"})
    assert h.metadata["title"] == "A" and Hit.model_validate(h.model_dump()) == h
