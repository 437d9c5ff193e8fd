"""The search agent: LangGraph graphs that choose a search strategy (react, sira, iter-retgen, router),
with budgets, context management, checkpointing and traces.

```python
from sleuth.agents import Agent
agent = Agent.for_corpus("examples/corpus", model="local", agent="router")
result = agent.run("Which ship ...?", trace="run.jsonl")
```
"""

from __future__ import annotations

from sleuth.agents.agent import Agent, ask
from sleuth.agents.budget import Budget
from sleuth.agents.config import AgentConfig
from sleuth.agents.context import ContextPolicy
from sleuth.agents.graphs import build_graph, compile_graph, mermaid
from sleuth.agents.state import AGENTS, STRATEGIES, AgentResult, AgentState, StepEvent

__all__ = [
    "AGENTS",
    "STRATEGIES",
    "Agent",
    "AgentConfig",
    "AgentResult",
    "AgentState",
    "Budget",
    "ContextPolicy",
    "StepEvent",
    "ask",
    "build_graph",
    "compile_graph",
    "mermaid",
]
