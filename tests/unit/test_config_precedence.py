"""sleuth.config: one order for every setting (flag > environment > config file), keys named by variable, keyless
OpenAI-compatible servers, and the config file's connection settings staying with the config file's model."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleuth.config import NO_KEY, default_corpus, model_settings
from sleuth.errors import ConfigError


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path))
    for var in ("SLEUTH_CONFIG", "SLEUTH_MODEL", "SLEUTH_API_BASE", "SLEUTH_API_KEY_ENV", "SLEUTH_CORPUS",
                "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_environment_api_base_is_kept_when_model_is_given(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLEUTH_API_BASE", "http://env:8000/v1")
    s = model_settings("openai/qwen")
    assert (s.name, s.api_base) == ("openai/qwen", "http://env:8000/v1")  # was dropped before
    assert model_settings("openai/qwen", "http://flag/v1").api_base == "http://flag/v1"


def test_flag_over_environment_over_config(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "config.toml").write_text('[model]\nname = "openai/cfg"\napi_base = "http://cfg/v1"\n'
                                      'api_key_env = "CFG_KEY"\n')
    monkeypatch.setenv("CFG_KEY", "sk-cfg")
    monkeypatch.setenv("ENV_KEY", "sk-env")
    monkeypatch.setenv("FLAG_KEY", "sk-flag")
    s = model_settings()
    assert (s.name, s.api_base, s.api_key) == ("openai/cfg", "http://cfg/v1", "sk-cfg")
    monkeypatch.setenv("SLEUTH_API_BASE", "http://env/v1")
    monkeypatch.setenv("SLEUTH_API_KEY_ENV", "ENV_KEY")
    s = model_settings()
    assert (s.api_base, s.api_key) == ("http://env/v1", "sk-env")
    s = model_settings(None, "http://flag/v1", "FLAG_KEY")
    assert (s.name, s.api_base, s.api_key, s.api_key_env) == ("openai/cfg", "http://flag/v1", "sk-flag", "FLAG_KEY")


def test_config_connection_settings_stay_with_the_config_model(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "config.toml").write_text('[model]\nname = "openai/cfg"\napi_base = "http://cfg/v1"\napi_key = "sk-c"\n')
    s = model_settings("anthropic/claude-x")
    assert s.api_base is None and s.api_key is None
    monkeypatch.setenv("SLEUTH_MODEL", "openai/other")
    assert model_settings().api_base is None
    assert model_settings("openai/cfg").api_base == "http://cfg/v1"


def test_keyless_openai_compatible_server(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = model_settings("openai/qwen", "http://127.0.0.1:8080/v1")
    assert s.api_key == NO_KEY  # litellm's OpenAI client would fail with "Missing credentials" on None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real")
    assert model_settings("openai/qwen", "http://127.0.0.1:8080/v1").api_key is None  # litellm uses the real one
    assert model_settings("openai/gpt-4o-mini").api_key is None  # no api_base: the provider's own key rules


def test_a_key_variable_that_is_not_set_is_named(home: Path) -> None:
    with pytest.raises(ConfigError) as e:
        model_settings("openai/qwen", "http://h/v1", "NO_SUCH_KEY_VAR")
    assert "NO_SUCH_KEY_VAR" in e.value.message and "--api-key-env" in e.value.message and e.value.hint


def test_bad_config_values_are_one_line(home: Path) -> None:
    (home / "config.toml").write_text('[model]\nmax_concurrency = "many"\n')
    with pytest.raises(ConfigError) as e:
        model_settings()
    msg = e.value.message
    assert "\n" not in msg and "max_concurrency" in msg and "pydantic.dev" not in msg


def test_default_corpus(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_corpus() is None
    (home / "config.toml").write_text('[corpus]\npath = "~/notes"\n')
    assert default_corpus() == Path("~/notes").expanduser()
    monkeypatch.setenv("SLEUTH_CORPUS", "/data/c")
    assert default_corpus() == Path("/data/c")
