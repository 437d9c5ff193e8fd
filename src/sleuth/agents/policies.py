"""Policies that make a small model's search useful, each switchable and recorded in the run's trace and result.

* ``fewshot``: demonstrations of good search trajectories (written from HotpotQA *train* questions of
  ``hipporag_train100``, never an evaluation split) at the end of the system prompt, the stable prefix a server's
  prompt cache reuses on every turn;
* ``force_search``: an answer before any search is not taken: the agent runs one search for the question itself
  (``search``, or ``grep`` for the question's rarest words when there is no index) and shows the model the result;
* ``decompose`` (auto): bridge and comparison questions are split into hops (find the bridge entity, then search
  for it), one structured call;
* ``constrain_args``: the schema the model's output is held to names what the corpus can answer: doc ids from
  the ones already seen (``read``, ``rerank``, ``answer``), search methods as an enum;
* ``sufficiency``: before an answer is taken, a check that the evidence supports it: ``lexical`` (a cheap signal:
  some passage contains the answer's words), ``model`` (one yes/no call), or ``off``. In ``auto`` a failed check
  is what escalates the plan; in a tool loop the answer goes back to the model once with what was missing.

Defaults: everything on for ``auto``; everything off for the named strategies and ``dci`` (the papers' forms).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, Field

from sleuth.errors import ConfigError

Sufficiency = Literal["off", "lexical", "model"]
POLICY_NAMES = ("fewshot", "force_search", "decompose", "constrain_args", "sufficiency")


class Policies(BaseModel):
    fewshot: bool = Field(False, description="demonstrations of good trajectories in the stable prompt prefix")
    force_search: bool = Field(False, description="a search runs before any answer is taken")
    decompose: bool = Field(False, description="bridge/comparison questions are split into hops (auto)")
    constrain_args: bool = Field(False, description="doc ids limited to those seen, method names as an enum")
    sufficiency: Sufficiency = Field("off", description="the check that the evidence supports an answer")

    @classmethod
    def for_agent(cls, agent: str) -> Policies:
        """The defaults: all on for ``auto``, all off for the fixed strategies and ``dci``."""
        if agent == "auto":
            return cls(fewshot=True, force_search=True, decompose=True, constrain_args=True, sufficiency="lexical")
        return cls()

    @classmethod
    def parse(cls, spec: str | None, agent: str = "auto") -> Policies:
        """``None``/``"default"``: the agent's defaults; ``"none"``: all off; otherwise a comma list of names to
        switch on (``fewshot,force-search,decompose,constrain-args,sufficiency[=lexical|model]``), after an
        optional ``default`` or ``none`` to start from; ``-name`` switches one off."""
        if spec is None or not spec.strip():
            return cls.for_agent(agent)
        items = [p.strip().lower().replace("-", "_") for p in spec.split(",") if p.strip()]
        values: dict[str, Any] = cls().model_dump()
        start = items.pop(0) if items and items[0] in ("default", "none") else "none"
        if start == "default":
            values = cls.for_agent(agent).model_dump()
        for item in items:
            off = item.startswith("_") or item.startswith("no_")
            name, _, value = item.lstrip("_").removeprefix("no_").partition("=")
            if name not in POLICY_NAMES:
                raise ConfigError(
                    f"unknown policy {name!r}",
                    hint="use default, none, or a comma list of: fewshot, force-search, decompose, constrain-args, "
                    "sufficiency[=lexical|model] (-name switches one off)",
                )
            if name == "sufficiency":
                level = "off" if off else (value or "lexical")
                if level not in ("off", "lexical", "model"):
                    raise ConfigError(f"unknown sufficiency check {value!r}", hint="use lexical, model or off")
                values[name] = level
            else:
                values[name] = not off
        return cls.model_validate(values)

    def active(self) -> list[str]:
        out = [n for n in POLICY_NAMES if n != "sufficiency" and getattr(self, n)]
        if self.sufficiency != "off":
            out.append(f"sufficiency={self.sufficiency}")
        return out


# -- the cheap sufficiency signal -----------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
_YES_NO = {"yes", "no", "true", "false"}


def _stopwords() -> frozenset[str]:
    from sleuth.retrieval.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def terms(text: str) -> list[str]:
    """Lower-cased word tokens without accents (``"Saltmarsh, Norvand"`` -> ``["saltmarsh", "norvand"]``)."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return _WORD.findall(folded.lower())


def answer_terms(answer: str) -> list[str]:
    """The words an answer must be found with: its tokens without stopwords (all of them when that leaves none)."""
    toks = terms(answer)
    stop = _stopwords()
    content = [t for t in toks if t not in stop]
    return list(dict.fromkeys(content or toks))


def lexical_support(answer: str, texts: Iterable[tuple[str, str]]) -> tuple[bool | None, str]:
    """Does some text contain the answer's words? ``texts`` is ``(doc_id, text)`` pairs.

    ``(True, doc_id)`` when one text holds all of them (three quarters for answers of more than four words),
    ``(False, why)`` when none does, ``(None, why)`` when the signal cannot judge (a yes/no answer, no words)."""
    words = answer_terms(answer)
    if not words:
        return None, "the answer has no words to look for"
    if set(words) <= _YES_NO:
        return None, "a yes/no answer: the words cannot be looked up"
    need = len(words) if len(words) <= 4 else -(-3 * len(words) // 4)
    best, best_doc, n = 0, "", 0
    for doc_id, text in texts:
        n += 1
        have = set(terms(text))
        hit = sum(1 for w in words if w in have)
        if hit > best:
            best, best_doc = hit, doc_id
        if hit >= need:
            return True, doc_id
    if not n:
        return False, "there is no evidence to check the answer against"
    missing = f"{best}/{len(words)} of its words in {best_doc}" if best else "none of its words"
    return False, f"no document of the {n} checked contains the answer {answer!r} ({missing})"


# -- schema constraints ---------------------------------------------------------------------------------------

MAX_ENUM_DOCS = 40  # doc ids offered in an enum: the most recently seen ones


def constrain_schemas(
    schemas: list[dict[str, Any]], doc_ids: list[str], methods: list[str] | None
) -> list[dict[str, Any]]:
    """Copies of the tools' OpenAI schemas whose ``doc_id``/``doc_ids`` may only hold ``doc_ids`` (when there are
    any) and whose ``method`` may only be one of ``methods``. The tool prompt a local model reads shows types and
    descriptions only, so its text (the cached prompt prefix) does not change; the output grammar does."""
    recent = list(dict.fromkeys(reversed(doc_ids)))[:MAX_ENUM_DOCS][::-1]
    out = []
    for schema in schemas:
        fn = dict(schema.get("function", schema))
        params = dict(fn.get("parameters") or {})
        props = {k: dict(v) for k, v in (params.get("properties") or {}).items()}
        for name, prop in props.items():
            if name == "doc_id" and recent:
                props[name] = {**_without_any_of(prop), "type": "string", "enum": recent}
            elif name == "doc_ids" and recent:
                props[name] = {**_without_any_of(prop), "type": "array", "items": {"type": "string", "enum": recent}}
            elif name == "method" and methods:
                props[name] = {**_without_any_of(prop), "type": "string", "enum": list(methods)}
        params["properties"] = props
        fn["parameters"] = params
        out.append({**schema, "function": fn} if "function" in schema else fn)
    return out


def _without_any_of(prop: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in prop.items() if k not in ("anyOf", "default", "type", "items", "enum")}
