"""LiteLLMEmbedder through the real litellm client against a local OpenAI-compatible server (no network)."""

from __future__ import annotations

import numpy as np
import pytest

from sleuth.errors import ConfigError, ModelError
from sleuth.retrieval.embeddings import LiteLLMEmbedder, get_embedder
from tests.unit.llm_fake_server import FakeOpenAIServer


def emb_response(vectors: list[tuple[int, list[float]]]) -> dict:
    return {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in vectors],
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
    }


def test_batches_order_normalisation_and_truncation() -> None:
    responses = [
        (200, emb_response([(1, [0.0, 2.0, 0.0]), (0, [3.0, 4.0, 0.0])])),  # out of order on purpose
        (200, emb_response([(0, [0.0, 0.0, 5.0])])),
    ]
    with FakeOpenAIServer(responses) as srv:
        e = LiteLLMEmbedder("openai/text-embedding-3-small", api_base=srv.url, api_key="sk-test", batch_size=2,
                            max_tokens=8)
        long_text = "one two three four five six seven eight nine ten eleven twelve"
        v = e.embed(["first text", "second text", long_text])
        sent = [r["body"]["input"] for r in srv.requests]
    assert [r for r in sent] == [["first text", "second text"], ["one two three four five six seven eight"]]
    assert v.shape == (3, 3) and v.dtype == np.float32
    assert v[0] == pytest.approx([0.6, 0.8, 0.0]) and v[1] == pytest.approx([0.0, 1.0, 0.0])
    assert v[2] == pytest.approx([0.0, 0.0, 1.0])
    assert e.dim == 3 and e.name == "litellm:openai/text-embedding-3-small"
    assert e.count_tokens(long_text) == 12 > e.max_tokens


def test_provider_error_is_a_model_error() -> None:
    with FakeOpenAIServer([(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})]) as srv:
        e = LiteLLMEmbedder("openai/text-embedding-3-small", api_base=srv.url, api_key="sk-bad", dim=3)
        with pytest.raises(ModelError, match="embedding call"):
            e.embed(["x"])


def test_get_embedder_specs() -> None:
    e = get_embedder("litellm:openai/text-embedding-3-small", reuse=False)
    assert isinstance(e, LiteLLMEmbedder) and e.max_tokens == 8191
    assert isinstance(get_embedder("openai/text-embedding-3-large", reuse=False), LiteLLMEmbedder)
    with pytest.raises(ConfigError, match="unknown embedder"):
        get_embedder("word2vec", reuse=False)
