"""Budgets for one agent run: steps, tokens, wall time and cost.

A run keeps what it has spent in its state (so a resumed run keeps counting where it stopped). Before every
model call the graph asks :meth:`Budget.exhausted`; when a budget has run out the agent stops searching and
answers with what it has, and the run records which budget ran out.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sleuth.errors import ConfigError
from sleuth.records import Usage

BudgetName = Literal["steps", "tokens", "seconds", "cost"]


class Budget(BaseModel):
    """Limits for one run. ``None`` means no limit on that axis (steps always have one)."""

    max_steps: int = Field(8, ge=1, description="model turns in the search loop (each may call tools)")
    max_tokens: int | None = Field(30_000, ge=1, description="prompt + completion tokens over the whole run")
    max_seconds: float | None = Field(600.0, gt=0, description="wall time over the whole run")
    max_cost_usd: float | None = Field(None, ge=0, description="priced cost; unpriced calls count as 0")
    final_answer_call: bool = Field(
        True,
        description="when a budget runs out, make one last model call that may only answer; "
        "False answers from the last observations without calling the model",
    )

    @classmethod
    def parse(cls, spec: str | None) -> Budget:
        """``"steps=6,tokens=20000,seconds=120,cost=0.05"`` (any subset) -> Budget."""
        if not spec:
            return cls()
        keys = {"steps": "max_steps", "tokens": "max_tokens", "seconds": "max_seconds", "cost": "max_cost_usd"}
        values: dict[str, object] = {}
        for part in spec.split(","):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or name not in keys:
                raise ConfigError(
                    f"bad budget item {part!r}",
                    hint="write e.g. steps=6,tokens=20000,seconds=120,cost=0.05 (value 'none' lifts a limit)",
                )
            values[keys[name]] = None if value.strip().lower() == "none" else value.strip()
        try:
            return cls.model_validate(values)
        except ValueError as e:
            raise ConfigError(f"bad budget {spec!r}: {e}", hint="numbers must be positive") from None

    def exhausted(self, *, steps: int, usage: Usage, elapsed_s: float) -> BudgetName | None:
        """The first budget that has run out, or None. ``steps`` counts model turns already taken."""
        if steps >= self.max_steps:
            return "steps"
        if self.max_tokens is not None and usage.total_tokens >= self.max_tokens:
            return "tokens"
        if self.max_seconds is not None and elapsed_s >= self.max_seconds:
            return "seconds"
        if self.max_cost_usd is not None and usage.cost_usd >= self.max_cost_usd:
            return "cost"
        return None

    def remaining(self, *, steps: int, usage: Usage, elapsed_s: float) -> dict[str, float | int | None]:
        return {
            "steps": self.max_steps - steps,
            "tokens": None if self.max_tokens is None else self.max_tokens - usage.total_tokens,
            "seconds": None if self.max_seconds is None else round(self.max_seconds - elapsed_s, 3),
            "cost_usd": None if self.max_cost_usd is None else self.max_cost_usd - usage.cost_usd,
        }
