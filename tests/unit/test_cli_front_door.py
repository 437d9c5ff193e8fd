"""The CLI's front door, in process (typer's CliRunner): one error path (one line plus a hint, a JSON object under
--json, usage errors included), --version alone, no implicit corpus, no index written into a folder that has
none unless asked, plain help text, settings resolved flag > environment > config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import SAMPLE_CORPUS


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("SLEUTH_HOME", str(h))
    for var in ("SLEUTH_CORPUS", "SLEUTH_CONFIG", "SLEUTH_MODEL", "SLEUTH_API_BASE", "SLEUTH_API_KEY_ENV"):
        monkeypatch.delenv(var, raising=False)
    return h


def invoke(app, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    r = CliRunner().invoke(app, list(args), env=env)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r


def test_version_alone(app, home: Path) -> None:
    from sleuth import __version__

    r = invoke(app, "--version")
    assert r.exit_code == 0 and r.stdout.strip() == __version__


def test_usage_errors_are_one_line_with_a_hint_and_json_under_json(app, home: Path) -> None:
    r = invoke(app, "search", "x", "-c", str(SAMPLE_CORPUS), "--k", "0", "--json")
    assert r.exit_code == 2
    err = json.loads(r.stdout)
    assert err["ok"] is False and err["error"] == "UsageError" and "--k" in err["message"]
    assert err["hint"] == "see `sleuth search --help`"
    assert "Usage:" not in r.stderr and "╭" not in r.stderr
    r = invoke(app, "search", "x", "-c", str(SAMPLE_CORPUS), "--nope")
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 2, r.stderr
    assert lines[0].startswith("error (UsageError): No such option: --nope") and lines[1].startswith("hint: ")
    r = invoke(app, "no-such-command", "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["error"] == "UsageError"


def test_bad_line_range_names_the_flag_not_pydantic(app, home: Path) -> None:
    r = invoke(app, "read", "places/dunmore.md", "-c", str(SAMPLE_CORPUS), "--lines", "5:1")
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and "--lines 5:1" in lines[0] and "pydantic" not in r.stderr
    assert lines[1].startswith("hint: pass --lines A:B")
    r = invoke(app, "ls", "-c", str(SAMPLE_CORPUS), "--limit", "0", "--json")
    err = json.loads(r.stdout)
    assert err["message"].startswith("--limit:") and "pydantic" not in err["message"]


def test_bad_regex_is_one_line_and_the_hint_names_the_cli_flag(app, home: Path) -> None:
    r = invoke(app, "grep", "(", "-c", str(SAMPLE_CORPUS))
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 2, r.stderr
    assert "unclosed group" in lines[0]
    assert "-F" in lines[1] and "fixed_strings" not in lines[1]
    err = json.loads(invoke(app, "grep", "(", "-c", str(SAMPLE_CORPUS), "--json").stdout)
    assert err["error"] == "InvalidPatternError" and "\n" not in err["message"] and "-F" in err["hint"]


def test_every_error_has_a_hint(app, home: Path) -> None:
    for args in (["grep", "x"], ["eval", "beir", "--data", "/nope", "--json"], ["trace", "show", "/nope.jsonl"]):
        r = invoke(app, *args, "--json") if "--json" not in args else invoke(app, *args)
        err = json.loads(r.stdout)
        assert r.exit_code == 2 and err["hint"], (args, err)


def test_no_implicit_corpus(app, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "checkout"
    cwd.mkdir()
    (cwd / "README.md").write_text("white matter\n")
    monkeypatch.chdir(cwd)
    r = invoke(app, "grep", "white", "--json")
    err = json.loads(r.stdout)
    assert r.exit_code == 2 and err["error"] == "ConfigError" and "--corpus" in err["hint"]
    r = invoke(app, "search", "white matter")
    assert r.exit_code == 2 and "no corpus given" in r.stderr
    assert not (cwd / ".sleuth").exists()
    # SLEUTH_CORPUS, then [corpus] path in config.toml
    r = invoke(app, "ls", "--json", env={"SLEUTH_CORPUS": str(SAMPLE_CORPUS)})
    assert r.exit_code == 0 and json.loads(r.stdout)["total"] == 11
    (home / "config.toml").write_text(f'[corpus]\npath = "{SAMPLE_CORPUS}"\n')
    r = invoke(app, "ls", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["total"] == 11


def test_search_and_df_write_no_index_into_an_unindexed_folder_unless_asked(app, home: Path, make_corpus) -> None:
    root = make_corpus({"a.txt": "white matter in newborns", "b.txt": "grey matter in adults"})
    for args in (["search", "white matter"], ["df", "matter"]):
        r = invoke(app, *args, "-c", str(root), "--json")
        err = json.loads(r.stdout)
        assert r.exit_code == 2 and err["error"] == "IndexMissingError" and "--index" in err["hint"], err
        assert not (root / ".sleuth").exists()
    r = invoke(app, "search", "white matter", "-c", str(root), "--index", "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["hits"][0]["doc_id"] == "a.txt" and (root / ".sleuth").is_dir()
    r = invoke(app, "df", "matter", "-c", str(root), "--json")  # an indexed corpus now: no question asked
    assert r.exit_code == 0 and json.loads(r.stdout)["terms"][0]["df"] == 2


def test_state_dir_keeps_the_index_elsewhere(app, home: Path, make_corpus, tmp_path: Path) -> None:
    root = make_corpus({"a.txt": "white matter in newborns", "b.txt": "grey matter in adults"})
    state = tmp_path / "indexes" / "c"
    r = invoke(app, "index", str(root), "--state-dir", str(state), "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["status"] == "built"  # not "rebuilt (IndexMissingError)"
    assert (state / "bm25").is_dir() and not (root / ".sleuth").exists()
    r = invoke(app, "search", "white", "-c", str(root), "--state-dir", str(state), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["hits"][0]["doc_id"] == "a.txt"
    assert not (root / ".sleuth").exists()
    r = invoke(app, "index", str(root), "--state-dir", str(state), "--json")
    assert json.loads(r.stdout)["status"] == "up to date"


def test_help_is_plain_text_that_keeps_brackets_and_examples(app, home: Path) -> None:
    r = invoke(app, "mcp", "--help", env={"COLUMNS": "80"})
    flat = " ".join(r.stdout.split()).replace("sleuth- search", "sleuth-search")  # click may wrap at the hyphen
    assert r.exit_code == 0 and "sleuth-search[attention]" in flat
    r = invoke(app, "ask", "--help", env={"COLUMNS": "80"})
    flat = " ".join(r.stdout.split())
    assert "steps=8, tokens=30000, seconds=600, cost=0.05" in flat and "…" not in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    assert "--api-base" in flat and "--api-key-env" in flat


@pytest.mark.parametrize("command", [["ask", "q"], ["search", "q"], ["enrich"], ["tools", "search", "q"], ["mcp"],
                                     ["eval", "beir"], ["eval", "hotpotqa"], ["eval", "browsecomp-plus"],
                                     ["eval", "tools"]])
def test_every_command_with_model_takes_api_base_and_api_key_env(app, home: Path, command: list[str]) -> None:
    r = invoke(app, *command, "--help")
    assert r.exit_code == 0 and "--model" in r.stdout
    assert "--api-base" in r.stdout and "--api-key-env" in r.stdout, command
