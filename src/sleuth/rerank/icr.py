"""ICR: in-context reranking by attention (Chen et al., "Attention in Large Language Models Yields Efficient
Zero-Shot Re-Rankers", 2024), on an open-weight causal LM in transformers, on the CPU.

The documents come first and the query last, in one chat-formatted prompt (``prompts/rerank_icr.md``), laid out
as the reference (OSU-NLP-Group/In-Context-Reranking, ``_prepare_input_for_document_retrieval``) does:
``Here are some paragraphs:`` then, per document, ``\n\n[i] passage``, then ``\n\n``, the instruction, ``\n\n``,
``Query: {query}`` and the assistant header. A document's score is the attention that the *query span* pays to
the document's tokens: per layer, the attention probabilities of the query-span rows, summed over heads and
averaged over the rows; summed over all layers. The query span starts *after* the separator that follows the last
document (the reference's ``query_start_idx = prompt_length + separator_length``) and ends at the last token.

Calibration (the reference's default ``masked_NA_calibration``, :func:`calibrated_score`): a second pass with
the content-free query ``"N/A"`` reuses the KV cache cropped to the start of the query span (so it holds the
separator after the last document) and measures each token's intrinsic bias; per document token
``d = q - na``, the tokens with ``d > mean(d) - 2·std(d)`` (within the document) are kept, and the score is
``sum(q·mask - na·mask)``. Two forward passes per window, the second only a few tokens long.

Published form and adaptations (each a constructor option, recorded in ``RerankResult.stats`` and the ``rerank``
trace event's data):

* ``reverse_order=True`` (reference: both run scripts pass ``--reverse_doc_order``): within a window the
  documents are given least relevant first, so the first stage's best sits next to the query. ``False`` keeps the
  first-stage order (best first), sleuth's earlier adaptation.
* ``separator_in_rows=False`` (reference): the ``\n\n`` after the last passage is in the cached prefix, not among
  the attending rows. ``True`` makes it the first attending row, sleuth's earlier adaptation; measured, that row
  lowers the score of the passage nearest the query (+0.59 to +1.32 for it when removed, +0.05 to +0.31 for the
  others).
* ``instruction="qa"`` (``"Please answer the following question ..."``) or ``"ie"`` (``"Please find information
  that are relevant to the following query ..."``). The reference uses QA for trec-covid, fiqa, webis-touche2020,
  dbpedia-entity, nq and the multi-hop sets, IE for every other BEIR set (SciFact among them);
  :func:`instruction_for` encodes that choice and ``sleuth eval beir --rerank icr`` applies it.
* ``word_budget`` (passage length, default 100 words; the reference cuts BEIR passages to 300 space-separated
  words, ``--truncate_by_space 300``, and does not cut the multi-hop sets) and ``window``/``stride`` (depth per
  prompt, default 20/10; the reference uses no window, all ``top_k`` documents in one prompt: 100 for BEIR, 20 for
  multi-hop; ``window=0`` does the same here).

Only the query rows' attention is computed: the model runs with SDPA (no full attention matrices), and a
registered attention function recomputes softmax(q·kᵀ) for the query-span rows only, from the rotated queries and
the cached keys (what the reference does for FlashAttention-2). Peak memory stays near the bf16 weights.

Weights: the same Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF the embedded llama.cpp model uses
(:func:`sleuth.llm.weights.ensure_weights`), dequantized by transformers' GGUF loader once (~1–3 min) and cached as
a bf16 ``save_pretrained`` copy under ``$SLEUTH_HOME/models/hf/`` (reloads in seconds).

Long lists: windows of ``window`` documents moved ``stride`` from the back to the front, RankGPT's merge rule
(:func:`sleuth.rerank.common.sliding_rerank`); a hit's ``score`` is its calibrated attention in the last window
that judged it (scores of different windows are not comparable; the order is).
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from sleuth.errors import ConfigError, MissingExtraError, WeightsError
from sleuth.prompts import load as load_prompt
from sleuth.records import Hit, RerankResult, TraceEvent, Usage
from sleuth.rerank import common
from sleuth.rerank.base import RerankerBase
from sleuth.usagetap import UsageTap

CALIBRATION_QUERY = "N/A"
SEPARATOR = "\n\n"
INSTRUCTIONS = {  # the reference's ``retrieval_instruction_late`` texts, verbatim
    "qa": "Please answer the following question based on the information in the paragraphs above.",
    "ie": "Please find information that are relevant to the following query in the paragraphs above.",
}
QA_BEIR_SETS = frozenset({"trec-covid", "fiqa", "webis-touche2020", "dbpedia-entity", "nq"})
ATTN_IMPL = "sleuth_icr"
_FEATURE = "ICR attention reranking"
_LOADED: dict[str, tuple[Any, Any]] = {}  # model dir -> (model, tokenizer): weights are loaded once per process
_LOAD_LOCK = threading.Lock()
_SCORE_LOCK = threading.Lock()  # the capture hooks live on the shared model's modules: one scoring pass at a time


def _require() -> tuple[Any, Any]:
    """Import torch and transformers, or raise MissingExtraError with the install hint."""
    try:
        import torch
    except ImportError:
        raise MissingExtraError("attention", "torch", _FEATURE) from None
    try:
        import transformers
    except ImportError:
        raise MissingExtraError("attention", "transformers", _FEATURE) from None
    return torch, transformers


# --- weights -------------------------------------------------------------------------------------------------


def attention_model_dir(weights: str = "qwen2.5-coder-0.5b", home: Path | None = None) -> Path:
    """The bf16 transformers copy of packaged GGUF ``weights``, converted on first use and cached."""
    from sleuth.config import sleuth_home
    from sleuth.fsutil import atomic_dir
    from sleuth.llm.weights import KNOWN_WEIGHTS, ensure_weights

    torch, transformers = _require()
    gguf = ensure_weights(weights, home)
    spec = KNOWN_WEIGHTS[weights]
    target = (home or sleuth_home()) / "models" / "hf" / f"{gguf.stem}-bf16"
    stamp = target / "sleuth_source.json"
    if stamp.exists():
        try:
            if json.loads(stamp.read_text()).get("sha256") == spec.sha256:
                return target
        except (OSError, ValueError):
            pass
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read GGUF files)
    except ImportError:
        raise MissingExtraError("attention", "gguf", _FEATURE) from None
    t0 = time.perf_counter()
    with atomic_dir(target) as tmp:
        tok = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16, attn_implementation="eager"
        )
        # save_pretrained refuses a GGUF-loaded model while it still carries the quantizer.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.to(torch.bfloat16)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "sleuth_source.json").write_text(
            json.dumps(
                {"gguf": gguf.name, "sha256": spec.sha256, "dtype": "bfloat16", "convert_s": time.perf_counter() - t0}
            )
        )
        del model
    return target


def _register_attention(torch: Any) -> None:
    """Register ``sleuth_icr``: SDPA for the output, plus the query-span rows' attention probabilities."""
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    if ATTN_IMPL in AttentionInterface._global_mapping:
        return

    def icr_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> Any:
        out = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
        cap = getattr(module, "_sleuth_icr", None)
        if cap is not None:
            rows = query[:, :, cap.rows_start :, :].float()  # (1, H, R, d)
            keys = repeat_kv(key, module.num_key_value_groups).float()  # (1, H, K, d)
            scaling = kwargs.get("scaling") or module.scaling
            logits = torch.matmul(rows, keys.transpose(2, 3)) * scaling  # (1, H, R, K)
            n_q, n_k = query.shape[2], key.shape[2]
            pos = torch.arange(n_k - n_q + cap.rows_start, n_k)  # key positions of the query-span rows
            future = torch.arange(n_k)[None, :] > pos[:, None]  # causal: a row sees keys up to its position
            logits = logits.masked_fill(future, float("-inf"))
            probs = torch.softmax(logits, dim=-1)
            cap.add(probs[0].sum(0).mean(0))  # sum over heads, mean over query rows -> (K,)
        return out

    AttentionInterface.register(ATTN_IMPL, icr_attention)
    AttentionMaskInterface.register(ATTN_IMPL, sdpa_mask)


def load_attention_model(model_dir: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) in bf16 with the ``sleuth_icr`` attention, loaded once per process per folder."""
    torch, transformers = _require()
    key = str(Path(model_dir).resolve())
    with _LOAD_LOCK:
        if key in _LOADED:
            return _LOADED[key]
        if not (Path(key) / "config.json").exists():
            raise WeightsError(f"no transformers model in {key}", hint="let ICR build it from the packaged GGUF")
        _register_attention(torch)
        tok = transformers.AutoTokenizer.from_pretrained(key)
        model = transformers.AutoModelForCausalLM.from_pretrained(key, dtype=torch.bfloat16, attn_implementation="sdpa")
        model.set_attn_implementation(ATTN_IMPL)
        model.eval()
        _LOADED[key] = (model, tok)
        return model, tok


# --- scoring -------------------------------------------------------------------------------------------------


def instruction_for(task: str, dataset: str = "") -> str:
    """The reference's instruction choice: ``"ie"`` for BEIR sets other than the five QA ones, else ``"qa"``.

    ``dataset`` is the set's name (``scifact``, ``nq``, ``cqadupstack/android`` ...; a path's last parts are
    tolerated, and case is ignored)."""
    if task != "beir":
        return "qa"
    name = dataset.strip().strip("/").lower()
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    return "qa" if any(p in QA_BEIR_SETS for p in parts) else "ie"


def calibrated_score(q: Any, na: Any) -> float:
    """The reference's ``masked_NA_calibration`` for one document: ``q`` and ``na`` are the attention its tokens
    get from the query pass and from the ``"N/A"`` pass (1-d tensors of equal length). ``d = q - na``; tokens with
    ``d > mean(d) - 2·std(d)`` are kept; the score is ``sum(q·mask - na·mask)``. A one-token document has no
    spread (the reference's ``std`` is NaN there and would drop the token): its score is ``d`` itself. Equal
    differences (``std`` 0) drop every token under the strict ``>``, as in the reference."""
    d = q - na
    if d.numel() <= 1:
        return float(d.sum())
    mask = (d > d.mean() - 2 * d.std()).to(q.dtype)
    return float((q * mask - na * mask).sum())


class _Capture:
    def __init__(self, rows_start: int) -> None:
        self.rows_start = rows_start
        self.total: Any = None

    def add(self, v: Any) -> None:
        self.total = v if self.total is None else self.total + v


class ICRReranker(RerankerBase):
    """In-context reranking by attention. Construct once and reuse: the model loads on first use."""

    name = "icr"

    def __init__(
        self,
        *,
        weights: str = "qwen2.5-coder-0.5b",
        model_dir: str | Path | None = None,
        word_budget: int = common.DEFAULT_WORD_BUDGET,
        window: int = 20,
        stride: int = 10,
        calibrate: bool = True,
        reverse_order: bool = True,
        separator_in_rows: bool = False,
        instruction: str = "qa",
        tracer: Any = None,
        model: Any = None,
        tokenizer: Any = None,
    ) -> None:
        self.weights = weights
        self.model_dir = Path(model_dir) if model_dir else None
        self.word_budget = word_budget
        self.window = window
        self.stride = stride
        self.calibrate = calibrate
        self.reverse_order = reverse_order
        self.separator_in_rows = separator_in_rows
        if instruction not in INSTRUCTIONS:
            raise ConfigError(f"unknown ICR instruction {instruction!r}", hint=f"use one of {sorted(INSTRUCTIONS)}")
        if window < 0 or stride < 1:
            raise ConfigError(
                f"bad ICR window {window} / stride {stride}", hint="window >= 0 (0: one prompt), stride >= 1"
            )
        self.instruction = instruction
        self.tracer = tracer
        self._model: Any = model  # a loaded (model, tokenizer) pair may be injected; else loaded on first use
        self._tok: Any = tokenizer
        self._chat: tuple[str, str] | None = None
        template = load_prompt("rerank_icr")
        intro, _, rest = template.partition("{documents}")
        self._intro = intro.rstrip()
        self._late = rest.strip("\n").replace("{instruction}", INSTRUCTIONS[instruction])  # holds {query}

    # -- model ----------------------------------------------------------------------------------------------
    def load(self) -> ICRReranker:
        if self._model is None:
            _require()
            d = self.model_dir or attention_model_dir(self.weights)
            self._model, self._tok = load_attention_model(d)
        return self

    def _chat_parts(self) -> tuple[str, str]:
        """The chat template's text before and after the user message (through the assistant header)."""
        if self._chat is None:
            marker = "\x00SLEUTH\x00"
            rendered = self._tok.apply_chat_template(
                [{"role": "user", "content": marker}], add_generation_prompt=True, tokenize=False
            )
            before, _, after = rendered.partition(marker)
            self._chat = (before, after)
        return self._chat

    def _ids(self, text: str) -> list[int]:
        return list(self._tok(text, add_special_tokens=False)["input_ids"]) if text else []

    def _layout(self, docs: list[str]) -> tuple[list[int], list[tuple[int, int]]]:
        """The cached prefix's token ids and each document's token span, documents numbered in prompt order.

        The prefix ends after the separator that follows the last document (the reference's
        ``query_start_idx``), or, with ``separator_in_rows``, at the end of the last document."""
        ids = self._ids(self._chat_parts()[0] + self._intro)
        sep = self._ids(SEPARATOR)
        spans = []
        for i, d in enumerate(docs, 1):
            ids += sep
            piece = self._ids(f"[{i}] {d}")
            spans.append((len(ids), len(ids) + len(piece)))
            ids += piece
        if not self.separator_in_rows:
            ids += sep
        return ids, spans

    def _tail(self, query: str) -> list[int]:
        """The attending rows: (the separator, if ``separator_in_rows``,) instruction, query, assistant header."""
        head = SEPARATOR if self.separator_in_rows else ""
        return self._ids(head) + self._ids(self._late.replace("{query}", query) + self._chat_parts()[1])

    def prompt_order(self, n: int) -> list[int]:
        """Indices (into a best-first window of ``n``) in the order the documents are written into the prompt."""
        return list(range(n))[::-1] if self.reverse_order else list(range(n))

    def options(self) -> dict[str, Any]:
        """The settings that decide the scores, for the trace and ``RerankResult.stats``."""
        return {
            "instruction": self.instruction,
            "reverse_order": self.reverse_order,
            "separator_in_rows": self.separator_in_rows,
            "calibrate": self.calibrate,
            "word_budget": self.word_budget,
            "window": self.window,
            "stride": self.stride,
        }

    def _attention(self, input_ids: list[int], rows_start: int, cache: Any) -> Any:
        import torch

        cap = _Capture(rows_start)
        layers = [layer.self_attn for layer in self._model.model.layers]
        for a in layers:
            a._sleuth_icr = cap
        try:
            with torch.inference_mode():
                self._model(
                    input_ids=torch.tensor([input_ids]), past_key_values=cache, use_cache=True, logits_to_keep=1
                )
        finally:
            for a in layers:
                a._sleuth_icr = None
        return cap.total

    def score(self, query: str, docs: list[str], *, tracer: Any = None) -> list[float]:
        """Calibrated ICR scores of ``docs`` (already truncated) for ``query``, in input order. Higher is better.

        ``tracer`` gets one ``llm`` event for the two forward passes: the tokens they read as prompt tokens (no
        completion; the local model is unpriced, so cost is "unmeasured")."""
        self.load()
        from transformers import DynamicCache

        t0 = time.perf_counter()
        prefix, spans = self._layout(docs)
        cache = DynamicCache()
        tail = self._tail(query)
        na_tail = self._tail(CALIBRATION_QUERY) if self.calibrate else []
        with _SCORE_LOCK:
            att_q = self._attention(prefix + tail, len(prefix), cache)
            if self.calibrate:
                cache.crop(-len(tail))  # keep the prefix (through the separator after the last document)
                att_na = self._attention(na_tail, 0, cache)
        self._trace_passes(tracer, len(prefix) + len(tail) + len(na_tail), len(docs), t0)
        if not self.calibrate:
            return [float(att_q[a:b].sum()) for a, b in spans]
        scores = [calibrated_score(att_q[a:b], att_na[a:b]) for a, b in spans]
        del cache
        return scores

    def _trace_passes(self, tracer: Any, tokens: int, n_docs: int, t0: float) -> None:
        if tracer is None:
            return
        usage = Usage(prompt_tokens=tokens, calls=1, unpriced_calls=1, token_source="local_tokenizer")
        args = {"model": self.weights, "documents": n_docs, "passes": 1 + self.calibrate}
        latency = time.perf_counter() - t0
        tracer.emit(TraceEvent(kind="llm", name="icr_attention", args=args, usage=usage, latency_s=latency))

    # -- Reranker -------------------------------------------------------------------------------------------
    def run(self, query: str, hits: list[Hit], k: int | None = None, *, tracer: Any = None) -> RerankResult:
        """Rerank ``hits``; each hit's ``score`` is its calibrated attention (``has_scores``). ``tracer``
        (optional) overrides the constructor's for this call."""
        tracer = tracer if tracer is not None else self.tracer

        def rank(unique: list[Hit], tap: UsageTap) -> common.Ranking:
            if len(unique) <= 1:
                return unique, None, {"windows": 0, **self.options()}
            self.load()
            scores: dict[str, float] = {}
            n_windows = 0

            def rank_window(chunk: list[Hit]) -> list[int]:
                nonlocal n_windows
                n_windows += 1
                order = self.prompt_order(len(chunk))
                written = self.score(query, [common.passage(chunk[i], self.word_budget) for i in order], tracer=tap)
                s = [0.0] * len(chunk)
                for i, v in zip(order, written, strict=True):
                    s[i] = v
                    scores[chunk[i].doc_id] = v
                return sorted(range(len(chunk)), key=lambda i: -s[i])

            size = self.window or len(unique)
            ranked = common.sliding_rerank(unique, size, self.stride, rank_window)
            return ranked, scores, {"windows": n_windows, **self.options()}

        return common.run_reranker(self.name, query, hits, k, tracer, rank)
