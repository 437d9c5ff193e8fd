"""Budgets for one agent run: steps, tokens, wall time and cost.

A run keeps what it has spent in its state (so a resumed run keeps counting where it stopped). Before every
model call the graph asks :meth:`Budget.exhausted`; when a budget has run out the agent stops searching and
answers with what it has, and the run records which budget ran out.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import BaseModel, Field

from sleuth.errors import ConfigError
from sleuth.records import Usage

BudgetName = Literal["steps", "tokens", "seconds", "cost"]


class StepCost(NamedTuple):
    """What one step of ``auto``'s plan is expected to cost: tokens and model turns (``steps``)."""

    tokens: int
    steps: int


# Measured with the embedded 0.5B model on HotpotQA reflexion100 (README "Agents": tokens per question of each
# fixed strategy; the route call ~300 tokens). Seconds are not in the table: a run predicts them from its own
# seconds per token so far (a fast API model and a 2-core laptop differ 20x), else from SECONDS_PER_TOKEN.
STEP_COSTS: dict[str, StepCost] = {
    "route": StepCost(300, 0),
    "decompose": StepCost(350, 0),
    "hop": StepCost(900, 0),  # one extra search + bridge answer of a decomposed question
    "sira": StepCost(1100, 0),
    "iter-retgen": StepCost(2300, 2),
    "explore": StepCost(3400, 4),
}
SECONDS_PER_TOKEN = 0.014  # the embedded model on 2 cores: ~15 s for sira's ~1,100 tokens


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

    def affords(
        self, cost: StepCost, *, steps: int, usage: Usage, elapsed_s: float
    ) -> tuple[bool, str]:
        """Whether what is left covers ``cost`` (tokens, seconds predicted from this run's pace, steps), and if
        not, which budget falls short and by how much (a sentence for the trace)."""
        left = self.remaining(steps=steps, usage=usage, elapsed_s=elapsed_s)
        tokens_used = usage.total_tokens
        pace = elapsed_s / tokens_used if tokens_used >= 200 and elapsed_s > 0 else SECONDS_PER_TOKEN
        need_s = cost.tokens * pace
        if left["tokens"] is not None and left["tokens"] < cost.tokens:
            return False, f"tokens: {left['tokens']} left, the step needs about {cost.tokens}"
        if left["seconds"] is not None and left["seconds"] < need_s:
            return False, f"seconds: {left['seconds']:.1f} left, the step needs about {need_s:.1f}"
        if cost.steps and left["steps"] is not None and left["steps"] < cost.steps:
            return False, f"steps: {left['steps']} left, the step needs {cost.steps}"
        return True, ""

    def remaining(self, *, steps: int, usage: Usage, elapsed_s: float) -> dict[str, float | int | None]:
        return {
            "steps": self.max_steps - steps,
            "tokens": None if self.max_tokens is None else self.max_tokens - usage.total_tokens,
            "seconds": None if self.max_seconds is None else round(self.max_seconds - elapsed_s, 3),
            "cost_usd": None if self.max_cost_usd is None else self.max_cost_usd - usage.cost_usd,
        }
