"""Where sleuth keeps its files, which model it uses and how it reaches it, and the default corpus.

Every setting is resolved in one order: **flag > environment > config file > default**.

* model: ``--model`` > ``SLEUTH_MODEL`` > ``[model] name`` > ``"local"``.
* server: ``--api-base`` > ``SLEUTH_API_BASE`` > ``[model] api_base``.
* key: ``--api-key-env VAR`` (the *name* of the variable that holds the key) > ``SLEUTH_API_KEY_ENV`` >
  ``[model] api_key_env`` / ``api_key``; else the provider's own variable (``OPENAI_API_KEY``, ...) as litellm
  reads it. With an ``api_base`` and no key anywhere, an OpenAI-compatible server is called without one (a
  placeholder bearer token :data:`NO_KEY` is sent, as keyless vLLM, llama.cpp and Ollama servers accept).
* prefill (the server continues a trailing assistant message, which FIRST's paper form needs): ``SLEUTH_PREFILL``
  (``1``/``0``) > ``[model] prefill``; the embedded model always does, other servers only when told (llama.cpp's
  server does by default).
* The config file's ``api_base``/``api_key``/``api_key_env``/``prefill`` belong to its ``name``: they do not
  carry over to another model given by flag or environment.
* corpus: ``--corpus`` > ``SLEUTH_CORPUS`` > ``[corpus] path``; no implicit default (see :func:`default_corpus`).

The config file is ``$SLEUTH_CONFIG`` or ``$SLEUTH_HOME/config.toml`` (``SLEUTH_HOME`` defaults to
``~/.cache/sleuth``), a TOML file such as::

    [model]
    name = "openai/qwen2.5"          # any litellm model string, "local", or "gguf:/path/file.gguf"
    api_base = "http://127.0.0.1:8000/v1"
    api_key_env = "VLLM_API_KEY"     # optional: the variable holding the key (never the key in this file)
    prefill = true                   # optional: the server continues a prefilled reply (FIRST's paper form)
    max_concurrency = 4
    cache = false                    # on-disk response cache (opt-in, for evals)

    [corpus]
    path = "~/corpora/notes"         # the corpus commands use when no --corpus / SLEUTH_CORPUS is given

Environment: ``SLEUTH_MODEL``, ``SLEUTH_API_BASE``, ``SLEUTH_API_KEY_ENV``, ``SLEUTH_PREFILL``, ``SLEUTH_CORPUS``,
``SLEUTH_HOME``, ``SLEUTH_CONFIG``; for the embedded server ``SLEUTH_THREADS`` (default: cores, at most 4),
``SLEUTH_N_CTX`` (default 4096) and ``SLEUTH_SERVER_LINGER`` (seconds an on-demand server waits after its last
client exits, default 5).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sleuth.errors import ConfigError
from sleuth.fsutil import sleuth_home as sleuth_home  # re-exported: where it has always been imported from

DEFAULT_MODEL = "local"


def config_path() -> Path:
    env = os.environ.get("SLEUTH_CONFIG")
    return Path(env).expanduser() if env else sleuth_home() / "config.toml"


class ModelSettings(BaseModel):
    name: str = DEFAULT_MODEL
    api_base: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    max_concurrency: int = 4
    max_retries: int = 3
    timeout_s: float = 600.0
    cache: bool = False
    prefill: bool | None = None  # None: the client decides (the embedded model: yes; others: no)


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}", hint="fix or delete the file") from None


def _section(name: str) -> dict[str, Any]:
    section = _read_config_file(config_path()).get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"[{name}] in {config_path()} must be a table", hint=f"write `[{name}]` then `key = ...`")
    return section


def _key_from(var: str, source: str) -> str:
    value = os.environ.get(var, "")
    if not value:
        raise ConfigError(f"{source} names the environment variable {var!r}, which is not set",
                          hint=f"export {var}=<the key>, or drop {source} for a server that needs no key")
    return value


def _keyless_ok(name: str) -> bool:
    """An OpenAI-compatible model string whose provider key litellm would otherwise demand."""
    return name.startswith(("openai/", "hosted_vllm/")) and not os.environ.get("OPENAI_API_KEY")


def model_settings(
    model: str | None = None, api_base: str | None = None, api_key_env: str | None = None
) -> ModelSettings:
    """Resolve the model settings: flag (the arguments) > environment > config file (see the module docstring)."""
    section = _section("model")
    try:
        settings = ModelSettings.model_validate(section)
    except ValidationError as e:
        detail = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"bad [model] settings in {config_path()}: {detail}",
                          hint="see `python -c 'import sleuth.config; help(sleuth.config)'` for the keys") from None
    name = model or os.environ.get("SLEUTH_MODEL") or settings.name
    updates: dict[str, Any] = {"name": name}
    if name != settings.name:  # the file's connection settings belong to the file's model
        updates.update(api_base=None, api_key=None, api_key_env=None, prefill=None)
    prefill_env = os.environ.get("SLEUTH_PREFILL", "").strip().lower()
    if prefill_env:
        if prefill_env not in ("1", "0", "true", "false", "yes", "no"):
            raise ConfigError(f"SLEUTH_PREFILL={prefill_env!r} is not a yes/no value", hint="use 1 or 0")
        updates["prefill"] = prefill_env in ("1", "true", "yes")
    base = api_base or os.environ.get("SLEUTH_API_BASE") or updates.get("api_base", settings.api_base)
    updates["api_base"] = base or None
    key_var = api_key_env or os.environ.get("SLEUTH_API_KEY_ENV")
    if key_var:
        source = "--api-key-env" if api_key_env else "SLEUTH_API_KEY_ENV"
        updates.update(api_key=_key_from(key_var, source), api_key_env=key_var)
    elif updates.get("api_key_env", settings.api_key_env):
        var = settings.api_key_env or ""
        updates["api_key"] = _key_from(var, f"api_key_env in {config_path()}")
    key = updates.get("api_key", settings.api_key)
    if not key and updates["api_base"] and _keyless_ok(name):
        updates["api_key"] = NO_KEY
    return settings.model_copy(update=updates)


NO_KEY = "sk-no-key-required"


def default_corpus() -> Path | None:
    """``SLEUTH_CORPUS`` or ``[corpus] path`` of the config file, else None (commands then ask for --corpus)."""
    env = os.environ.get("SLEUTH_CORPUS")
    if env:
        return Path(env).expanduser()
    path = _section("corpus").get("path")
    if path is None:
        return None
    if not isinstance(path, str) or not path.strip():
        raise ConfigError(f"[corpus] path in {config_path()} must be a folder name", hint='write path = "~/corpora/x"')
    return Path(path).expanduser()
