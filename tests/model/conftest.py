"""Fixtures for the tests that use the real embedded model."""

from __future__ import annotations

import pytest

from sleuth.errors import WeightsError


@pytest.fixture(scope="module")
def local_model():
    """The packaged local model (``get_model("local")``); the test skips, with the reason, when its weights are
    not installed."""
    from sleuth.llm import get_model

    try:
        return get_model("local")
    except WeightsError as e:
        pytest.skip(f"embedded model weights not installed: {e}")
