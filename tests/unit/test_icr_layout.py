"""ICR's prompt layout, document order, instruction choice and calibration formula, checked against the reference
(OSU-NLP-Group/In-Context-Reranking) without model weights. A character-level tokenizer with the transformers
interface stands in for Qwen's, so every token maps back to one character of the prompt."""

from __future__ import annotations

import copy

import pytest

from sleuth.errors import ConfigError
from sleuth.records import Hit
from sleuth.rerank.icr import INSTRUCTIONS, SEPARATOR, ICRReranker, calibrated_score, instruction_for
from sleuth.tracing.tracer import MemoryTracer


class CharTokenizer:
    """One token per character (id = code point); the chat template of a Qwen-like model."""

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}

    def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=False):
        (m,) = messages
        return f"<|im_start|>user\n{m['content']}<|im_end|>\n<|im_start|>assistant\n"


def text(ids: list[int]) -> str:
    return "".join(chr(i) for i in ids)


def reranker(**kw) -> ICRReranker:
    return ICRReranker(tokenizer=CharTokenizer(), **kw)


def test_rows_start_after_the_separator_that_follows_the_last_document() -> None:
    r = reranker()
    prefix, spans = r._layout(["alpha", "beta", "gamma"])
    tail = r._tail("who?")
    p = text(prefix)
    # the reference's query_start_idx = prompt_length + separator_length: the cached prefix holds the separator
    assert p.endswith("Here are some paragraphs:\n\n[1] alpha\n\n[2] beta\n\n[3] gamma" + SEPARATOR)
    assert [p[a:b] for a, b in spans] == ["[1] alpha", "[2] beta", "[3] gamma"]
    # the attending rows (len(prefix) ..) start with the instruction and end with the assistant header
    t = text(tail)
    assert t == INSTRUCTIONS["qa"] + "\n\nQuery: who?<|im_end|>\n<|im_start|>assistant\n"
    assert text(r._tail("N/A")).startswith(INSTRUCTIONS["qa"])  # the calibration pass has the same rows' layout


def test_separator_in_rows_is_the_named_adaptation() -> None:
    r = reranker(separator_in_rows=True)
    prefix, _ = r._layout(["alpha", "beta"])
    assert text(prefix).endswith("[2] beta")
    assert text(r._tail("q")).startswith(SEPARATOR + INSTRUCTIONS["qa"])
    assert r.options()["separator_in_rows"] is True


def test_ie_instruction_is_used_when_asked_and_unknown_ones_are_refused() -> None:
    r = reranker(instruction="ie")
    assert text(r._tail("q")).startswith(
        "Please find information that are relevant to the following query in the paragraphs above.\n\nQuery: q"
    )
    assert INSTRUCTIONS["qa"] not in text(r._layout(["a"])[0] + r._tail("q"))
    with pytest.raises(ConfigError):
        reranker(instruction="summarise")


def test_instruction_for_follows_the_reference_experiments() -> None:
    for qa in ("trec-covid", "fiqa", "webis-touche2020", "dbpedia-entity", "nq", "NQ"):
        assert instruction_for("beir", qa) == "qa"
    for ie in ("scifact", "nfcorpus", "scidocs", "arguana", "climate-fever", "cqadupstack/android"):
        assert instruction_for("beir", ie) == "ie"
    assert instruction_for("hotpotqa", "hotpotqa") == "qa"
    assert instruction_for("browsecomp-plus", "x") == "qa"


def test_eval_harness_passes_the_dataset_instruction() -> None:
    from sleuth.evals.build import Options, reranker_options, system_config

    assert reranker_options(Options(task="beir", data="/d/scifact", rerank="icr")) == {"instruction": "ie"}
    assert reranker_options(Options(task="beir", data="/d/nq", rerank="icr")) == {"instruction": "qa"}
    assert reranker_options(Options(task="hotpotqa", data="/d/h.json", rerank="icr")) == {"instruction": "qa"}
    assert reranker_options(Options(task="beir", data="/d/scifact", rerank="listwise")) == {"prompt": "rankgpt"}
    o = Options(task="beir", data="/d/scifact", rerank="icr", extra={"reranker": {"instruction": "qa"}})
    assert reranker_options(o, "scifact") == {"instruction": "qa"}  # an explicit choice wins
    assert system_config(Options(task="beir", data="/d/scifact", rerank="icr"), None)["rerank_options"] == {
        "instruction": "ie"
    }


class TextScored(ICRReranker):
    """ICR whose forward passes are replaced by a fixed score per passage text, to check what ``run`` does with
    the order it writes and the scores it gets back (the layout itself is tested above)."""

    def __init__(self, value: dict[str, float], **kw) -> None:
        super().__init__(tokenizer=CharTokenizer(), model=object(), **kw)
        self.value = value
        self.seen: list[list[str]] = []

    def score(self, query, docs, *, tracer=None):
        self.seen.append(list(docs))
        return [self.value[d] for d in docs]


def _hits() -> list[Hit]:
    return [Hit(doc_id=d, text=d, score=s) for d, s in (("best", 3.0), ("mid", 2.0), ("low", 1.0))]


def test_documents_are_reversed_by_default_and_scores_map_back() -> None:
    r = TextScored({"best": 0.1, "mid": 0.7, "low": 0.4})
    tracer = MemoryTracer()
    res = r.run("q", _hits(), tracer=tracer)
    assert r.seen == [["low", "mid", "best"]]  # least relevant first, the first stage's best next to the query
    assert [h.doc_id for h in res.hits] == ["mid", "low", "best"]
    assert {h.doc_id: h.score for h in res.hits} == {"best": 0.1, "mid": 0.7, "low": 0.4}
    assert res.stats["reverse_order"] is True and res.stats["instruction"] == "qa"
    assert res.stats["separator_in_rows"] is False
    data = tracer.of_kind("rerank")[0].data
    assert data["reverse_order"] is True and data["word_budget"] == r.word_budget


def test_forward_order_is_the_named_adaptation() -> None:
    r = TextScored({"best": 0.1, "mid": 0.7, "low": 0.4}, reverse_order=False)
    res = r.run("q", _hits())
    assert r.seen == [["best", "mid", "low"]]
    assert {h.doc_id: h.score for h in res.hits} == {"best": 0.1, "mid": 0.7, "low": 0.4}
    assert res.stats["reverse_order"] is False


def test_window_zero_puts_every_document_in_one_prompt() -> None:
    value = {f"d{i}": float(i) for i in range(25)}
    hits = [Hit(doc_id=d, text=d) for d in value]
    r = TextScored(value, window=0)
    res = r.run("q", hits)
    assert len(r.seen) == 1 and len(r.seen[0]) == 25 and res.stats["windows"] == 1
    assert [h.doc_id for h in res.hits][:2] == ["d24", "d23"]
    r20 = TextScored(value)  # default window 20, stride 10: two windows
    assert r20.run("q", hits).stats["windows"] == 2


def _reference_masked_na(q, na):
    """The reference's formula, written out: calibrated = q - na; mask = calibrated > mean - 2 std; sum(q*m - na*m)."""
    calibrated = q - na
    threshold = calibrated.mean() - 2 * calibrated.std()
    mask = calibrated > threshold
    return float((q * mask).sum() - (na * mask).sum())


def test_calibrated_score_is_the_reference_masked_na_calibration() -> None:
    torch = pytest.importorskip("torch")
    # by hand: d = [0.1, 0.2, 0.1, 0.2, 0.1, 0.2, -5.0]; mean = -0.5857, std(unbiased) = 1.983 -> threshold -4.55:
    # the last token (d = -5.0) is dropped, the rest sum to 0.9
    q = torch.tensor([0.3, 0.4, 0.3, 0.4, 0.3, 0.4, 0.0])
    na = torch.tensor([0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 5.0])
    assert calibrated_score(q, na) == pytest.approx(0.9, abs=1e-6)
    assert calibrated_score(q, na) == pytest.approx(_reference_masked_na(q, na), abs=1e-6)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        q, na = torch.rand(40, generator=g), torch.rand(40, generator=g)
        q[3] = 0.0  # an outlier below the threshold
        na[3] = 4.0
        assert calibrated_score(q, na) == pytest.approx(_reference_masked_na(q, na), abs=1e-5)
    # equal differences: std 0 and the reference's strict ">" drops every token, as the reference does
    q, na = torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.25])
    assert calibrated_score(q, na) == _reference_masked_na(q, na) == 0.0
    assert calibrated_score(torch.tensor([0.5]), torch.tensor([0.2])) == pytest.approx(0.3)  # one token


def test_score_on_a_tiny_random_model_equals_eager_attention_of_the_reference_rows() -> None:
    """End to end through the registered attention and the cropped cache, on a 2-layer random Qwen2 (no weights
    file): the scores equal the reference's computation from full eager attention matrices, with the query rows
    starting after the separator, and the N/A pass run from scratch on the same prefix."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from sleuth.rerank.icr import ATTN_IMPL, _register_attention

    torch.manual_seed(0)
    cfg = transformers.Qwen2Config(
        vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096,
    )
    eager = transformers.Qwen2ForCausalLM._from_config(cfg, attn_implementation="eager").eval()
    _register_attention(torch)
    icr_model = transformers.Qwen2ForCausalLM(copy.deepcopy(cfg)).eval()  # its own config: the impl is per config
    icr_model.load_state_dict(eager.state_dict())
    icr_model.set_attn_implementation(ATTN_IMPL)
    r = ICRReranker(tokenizer=CharTokenizer(), model=icr_model)
    docs = ["insulin comes from the pancreas", "rain on tuesday", "castling in chess"]
    got = r.score("which organ makes insulin?", docs)

    prefix, spans = r._layout(docs)
    assert text(prefix).endswith("chess\n\n")

    def rows_attention(ids: list[int], start: int) -> object:
        with torch.no_grad():
            out = eager(input_ids=torch.tensor([ids]), output_attentions=True)
        return sum(a[0, :, start:, :].sum(0).mean(0) for a in out.attentions)

    att_q = rows_attention(prefix + r._tail("which organ makes insulin?"), len(prefix))
    att_na = rows_attention(prefix + r._tail("N/A"), len(prefix))
    want = [_reference_masked_na(att_q[a:b], att_na[a:b]) for a, b in spans]
    assert got == pytest.approx(want, rel=1e-4, abs=1e-6)
    # the earlier adaptation (separator among the rows) measures something else
    adapted = ICRReranker(tokenizer=CharTokenizer(), model=icr_model, separator_in_rows=True).score(
        "which organ makes insulin?", docs
    )
    assert adapted != pytest.approx(want, rel=1e-4, abs=1e-6)
