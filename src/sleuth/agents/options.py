"""The agent options the CLI commands share (``sleuth ask``, ``sleuth eval``): budgets, policies, dci context."""

from __future__ import annotations

from typing import Any

from sleuth.agents.budget import Budget
from sleuth.agents.dci import DCIContext
from sleuth.agents.policies import Policies


def agent_options(
    agent: str,
    budget: str | None = None,
    budget_tokens: int | None = None,
    budget_seconds: float | None = None,
    policies: str | None = None,
    context_level: int | None = None,
    scan_budget_mb: float | None = None,
    dci_workspace: int | None = None,
) -> dict[str, Any]:
    """``Agent.for_corpus`` keyword arguments: ``--budget`` with ``--budget-tokens``/``--budget-seconds`` on top,
    ``--policies`` (the agent's defaults when None), ``--context-level`` and ``--scan-budget`` (MB) for dci."""
    b = Budget.parse(budget)
    if budget_tokens is not None:
        b = b.model_copy(update={"max_tokens": budget_tokens})
    if budget_seconds is not None:
        b = b.model_copy(update={"max_seconds": budget_seconds})
    out: dict[str, Any] = {"budget": b, "policies": Policies.parse(policies, agent)}
    if context_level is not None:
        out["dci_context"] = DCIContext(level=context_level)
    if scan_budget_mb is not None:
        out["max_scan_bytes"] = int(scan_budget_mb * 2**20)
    if dci_workspace is not None:
        from sleuth.errors import ConfigError

        if agent != "dci":
            raise ConfigError("--dci-workspace goes with --agent dci", hint="add --agent dci, or drop it")
        out["dci_workspace"] = dci_workspace
    return out


def iter_retgen_settings(
    agent: str | None, answer: str | None = None, steps: int | None = None, *, fill_defaults: bool = False
) -> dict[str, Any]:
    """``--iter-retgen-answer`` / ``--iter-retgen-steps`` as ``AgentConfig`` takes them, checked: the answer form
    goes to ``auto_iter_retgen_answer`` for ``auto`` (its iter-retgen step) and to ``iter_retgen_answer``
    otherwise. ``fill_defaults``: the defaults named too (a run's configuration says which form ran)."""
    from sleuth.agents.config import ITER_RETGEN_ANSWERS, AgentConfig
    from sleuth.errors import ConfigError

    if answer is not None and answer not in ITER_RETGEN_ANSWERS:
        raise ConfigError(f"unknown --iter-retgen-answer {answer!r}",
                          hint=f"use one of: {', '.join(ITER_RETGEN_ANSWERS)} (the first is the paper's form)")
    if steps is not None and (isinstance(steps, bool) or steps < 1):
        raise ConfigError(f"--iter-retgen-steps must be at least 1, got {steps}", hint="T=3 is the paper's")
    key = "auto_iter_retgen_answer" if agent == "auto" else "iter_retgen_answer"
    defaults = {f.name: f.default for f in AgentConfig.__dataclass_fields__.values()}
    out: dict[str, Any] = {}
    if answer is not None or fill_defaults:
        out[key] = answer or defaults[key]
    if steps is not None or fill_defaults:
        out["iter_retgen_steps"] = steps if steps is not None else defaults["iter_retgen_steps"]
    return out


def recorded(options: dict[str, Any]) -> dict[str, Any]:
    """The options as plain data for a run's configuration (what decides its numbers)."""
    out: dict[str, Any] = {"budget": options["budget"].model_dump(), "policies": options["policies"].active()}
    if "dci_context" in options:
        out["dci_context"] = options["dci_context"].model_dump()
    if "max_scan_bytes" in options:
        out["max_scan_bytes"] = options["max_scan_bytes"]
    if "dci_workspace" in options:
        out["dci_workspace"] = options["dci_workspace"]
    return out
