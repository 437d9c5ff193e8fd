"""Where sleuth keeps its files and which model it uses.

Precedence for the model: an explicit argument (``--model``) > ``SLEUTH_MODEL`` > the config file > ``"local"``.
The config file is ``$SLEUTH_CONFIG`` or ``$SLEUTH_HOME/config.toml`` (``SLEUTH_HOME`` defaults to
``~/.cache/sleuth``), a TOML file such as::

    [model]
    name = "openai/gpt-4o-mini"      # any litellm model string, "local", or "gguf:/path/file.gguf"
    api_base = "http://127.0.0.1:8000/v1"
    max_concurrency = 4
    cache = false                    # on-disk response cache (opt-in, for evals)

Environment: ``SLEUTH_MODEL``, ``SLEUTH_API_BASE``, ``SLEUTH_HOME``, ``SLEUTH_CONFIG``; for the embedded server
``SLEUTH_THREADS`` (default: cores, at most 4), ``SLEUTH_N_CTX`` (default 4096) and ``SLEUTH_SERVER_LINGER`` (seconds an
on-demand server waits after its last client exits, default 5).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sleuth.errors import ConfigError

DEFAULT_MODEL = "local"


def sleuth_home() -> Path:
    """``$SLEUTH_HOME`` or ``~/.cache/sleuth`` (created on demand by the callers that write there)."""
    env = os.environ.get("SLEUTH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sleuth"


def config_path() -> Path:
    env = os.environ.get("SLEUTH_CONFIG")
    return Path(env).expanduser() if env else sleuth_home() / "config.toml"


class ModelSettings(BaseModel):
    name: str = DEFAULT_MODEL
    api_base: str | None = None
    api_key: str | None = None
    max_concurrency: int = 4
    max_retries: int = 3
    timeout_s: float = 600.0
    cache: bool = False


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}", hint="fix or delete the file") from None


def model_settings(model: str | None = None, api_base: str | None = None) -> ModelSettings:
    """Resolve the model settings from the argument, the environment and the config file."""
    section = _read_config_file(config_path()).get("model", {})
    if not isinstance(section, dict):
        raise ConfigError(f"[model] in {config_path()} must be a table", hint="write `[model]` then `name = ...`")
    try:
        settings = ModelSettings.model_validate(section)
    except ValidationError as e:
        raise ConfigError(f"bad [model] settings in {config_path()}: {e}", hint="see sleuth.config for the keys") from None
    updates: dict[str, Any] = {}
    env_model = os.environ.get("SLEUTH_MODEL")
    if env_model:
        updates["name"] = env_model
    if os.environ.get("SLEUTH_API_BASE"):
        updates["api_base"] = os.environ["SLEUTH_API_BASE"]
    if model:
        updates["name"] = model
        if not api_base and model != settings.name:
            updates["api_base"] = None  # an api_base configured for another model does not carry over
    if api_base:
        updates["api_base"] = api_base
    return settings.model_copy(update=updates)
