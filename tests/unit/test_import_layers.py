"""Layering: engines and tools never import integrations or agents (integrations and agents build on them).

Each engine/tool module is imported in a fresh interpreter together with every sleuth module it imports anywhere,
also inside functions (lazy imports), followed transitively; afterwards no ``sleuth.agents``/``sleuth.integrations``
module may be loaded. Lazy imports count: a function that imports ``sleuth.integrations`` loads it on its first
call. The one exemption is a module-level ``__getattr__`` (PEP 562) that keeps an old public name importable
(``sleuth.tools.openai_tools``); it is listed in COMPAT_ALIASES and checked to resolve.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sleuth

SRC = Path(sleuth.__file__).resolve().parent
ENGINE_PACKAGES = ("tools", "retrieval", "rerank", "llm", "tracing")
ENGINE_MODULES = ("corpus", "records", "errors", "rg", "ids", "fsutil", "config")
UPPER = ("sleuth.agents", "sleuth.integrations")
# module -> names its __getattr__ serves for compatibility, and where they live now
COMPAT_ALIASES = {"sleuth.tools": {"openai_tools": "sleuth.integrations.openai_tools"}}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _path_of(module: str) -> Path | None:
    base = SRC.parent.joinpath(*module.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> set[str]:
    """Every sleuth module ``path`` imports, at module level or inside functions (not in a module __getattr__
    nor under ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            skip |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):  # `if TYPE_CHECKING:` imports are for the type checker; they never run
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    out: set[str] = set()
    pkg = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("sleuth")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*pkg.split(".")[: len(pkg.split(".")) - node.level + 1], *([base] if base else [])])
            if not base.startswith("sleuth"):
                continue
            out.add(base)
            for a in node.names:  # `from sleuth.x import y` where y is a module
                if _path_of(f"{base}.{a.name}") is not None:
                    out.add(f"{base}.{a.name}")
    return out


def _closure(module: str) -> list[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        p = _path_of(m)
        if p is not None:
            todo.extend(_imports(p) - seen)
    return sorted(seen)


def _engine_modules() -> list[str]:
    mods = [f"sleuth.{m}" for m in ENGINE_MODULES]
    for pkg in ENGINE_PACKAGES:
        mods += sorted(_module_name(p) for p in (SRC / pkg).glob("*.py"))
    return mods


def _loaded_after_import(modules: list[str]) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except ImportError as e:\n"  # an optional extra missing: that module is not this test's business
        "        if 'sleuth' in str(getattr(e, 'name', '') or ''):\n"
        "            raise\n"
        f"print(json.dumps(sorted(k for k in sys.modules if k.startswith({UPPER!r}))))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_engine_and_tool_modules_never_import_agents_or_integrations():
    modules = _engine_modules()
    assert "sleuth.tools" in modules and "sleuth.retrieval.sira" in modules and "sleuth.tracing.tracer" in modules
    offenders = {m: [d for d in _closure(m) if d.startswith(UPPER)] for m in modules}
    offenders = {m: bad for m, bad in offenders.items() if bad}
    assert not offenders, f"engine/tool modules reaching agents or integrations: {offenders}"
    everything = sorted({d for m in modules for d in _closure(m)})
    assert _loaded_after_import(everything) == []


@pytest.mark.parametrize("module", sorted(COMPAT_ALIASES))
def test_compat_aliases_still_resolve(module):
    import importlib

    mod = importlib.import_module(module)
    for name, home in COMPAT_ALIASES[module].items():
        assert getattr(mod, name) is getattr(importlib.import_module(home), name)
        assert name in mod.__all__
