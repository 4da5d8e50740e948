"""The files and model directories a stage reads from outside its recipe: found, checked, fingerprinted.

A config field marked `json_schema_extra={"input": "file" | "model" | "source"}` holds such a path
(a URL where the field also takes one, `"url": True`, and a built-in name, `"names"`, are not). Inputs
another stage of the recipe produces are keyed by that stage's hash; the others are fingerprinted
here, and the fingerprints join the stage directory's key, so a re-run after the data changed runs
the stage again (in a new directory) instead of skipping it.

How a path is fingerprinted, and why:
- A file: the SHA-256 of its content. A stage reads its data files whole anyway, so hashing costs at
  most one more read, and only when the file's size or mtime changed since it was last hashed
  (`FingerprintCache`, kept in the run directory): a re-run of a large corpus stats it and moves on,
  and a copy that only changed the mtime keeps its key.
- A directory (a model, a datasets directory): the names, sizes and mtimes (ns) of its files, not
  their content. Checkpoints are tens to hundreds of GB, and reading them whole on every plan would
  cost minutes; tools rewrite model files whole (`save_pretrained`), which changes size or mtime. A
  directory copied without keeping mtimes is re-run: the safe direction. Hidden entries (`.cache`,
  `.git`, lock files) are left out: they change without the model changing.
- A hub id or a missing path: no fingerprint (a missing input is reported by `input_problems`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from alignlab.errors import ConfigError
from alignlab.io import atomic_write_json
from alignlab.modeling.loading import missing_model_hint

DIGEST_LEN = 16
CACHE_FILE = ".input-fingerprints.json"  # in the run directory
Problem = tuple[type, str]


class FingerprintCache:
    """Content digests of files by (path, size, mtime), loaded from and saved to one JSON file."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._entries: dict[str, list] = {}
        if self.path is not None and self.path.is_file():
            try:
                self._entries = json.loads(self.path.read_text())
            except (OSError, ValueError):  # a damaged cache only costs a re-hash
                self._entries = {}

    def get(self, file: Path, stat: os.stat_result | None = None) -> str | None:
        st = stat or file.stat()
        entry = self._entries.get(str(file.resolve()))
        return entry[2] if entry and entry[:2] == [st.st_size, st.st_mtime_ns] else None

    def put(self, file: Path, stat: os.stat_result, digest: str) -> None:
        self._entries[str(file.resolve())] = [stat.st_size, stat.st_mtime_ns, digest]

    def save(self) -> None:
        if self.path is not None and self.path.parent.is_dir():
            atomic_write_json(self.path, self._entries)


def _content_digest(file: Path) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()[:DIGEST_LEN]


def _listing_digest(directory: Path) -> str:
    h = hashlib.sha256()
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(f for f in files if not f.startswith(".")):
            p = Path(root, name)
            st = p.stat()
            h.update(f"{p.relative_to(directory).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return "files:" + h.hexdigest()[:DIGEST_LEN]


def fingerprint(path: str | os.PathLike, cache: FingerprintCache | None = None) -> str | None:
    """The fingerprint of a local file or directory (see the module docstring); None if there is none."""
    p = Path(path).expanduser()
    try:
        if p.is_dir():
            return _listing_digest(p)
        if not p.is_file():
            return None
        st = p.stat()
        cached = cache.get(p, st) if cache is not None else None
        if cached is not None:
            return cached
        digest = _content_digest(p)
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read to check whether it changed ({err.strerror})") from None
    if cache is not None:
        cache.put(p, st, digest)
    return digest


def input_fields(model: Any, prefix: str) -> Iterator[tuple[str, dict[str, Any], str | None, BaseModel]]:
    """(dotted key, the field's input marks, value, section) of every path in a field marked as an
    input (`json_schema_extra={"input": "file" | "model" | "source", ...}`; a list or mapping of
    paths gives one row per path), in nested sections and in lists or mappings of sections."""
    if isinstance(model, dict):
        for k, v in model.items():
            yield from input_fields(v, f"{prefix}.{k}")
        return
    if isinstance(model, list | tuple):
        for i, v in enumerate(model):
            yield from input_fields(v, f"{prefix}.{i}")
        return
    if not isinstance(model, BaseModel):
        return
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = f"{prefix}.{name}" if prefix else name
        extra = field.json_schema_extra
        if not (isinstance(extra, dict) and "input" in extra):
            yield from input_fields(value, key)
        elif isinstance(value, dict | list | tuple):
            many = value.items() if isinstance(value, dict) else enumerate(value)
            yield from ((f"{key}.{k}", extra, v, model) for k, v in many)
        else:
            yield key, extra, value, model


def _not_a_path(extra: dict[str, Any], value: str) -> bool:
    """A value that names no local path: a URL where the field takes one (`"url": True`, and every
    `source`), or one of the field's built-in names (`"names"`)."""
    takes_url = bool(extra.get("url")) or extra["input"] == "source"
    return (takes_url and value.startswith(("http://", "https://"))) or value in extra.get("names", ())


def external_inputs(config: BaseModel, cache: FingerprintCache | None = None,
                    skip_prefix: str = "@") -> dict[str, dict[str, str | None]]:
    """Config key -> {path, fingerprint} of every input that is a path outside the recipe. Paths
    starting with `skip_prefix` stand for another stage's output (keyed by that stage's hash)."""
    out = {}
    for key, extra, value, _ in input_fields(config, ""):
        if isinstance(value, str) and not value.startswith(skip_prefix) and not _not_a_path(extra, value):
            out[key] = {"path": value, "fingerprint": fingerprint(value, cache)}
    return out


def input_problems(config: BaseModel, prefix: str, produced: list[str]) -> list[Problem]:
    """A missing input file or model directory (one not produced by the stages in `produced`)."""
    problems: list[Problem] = []
    for key, extra, value, parent in input_fields(config, prefix):
        if value is None or any(value.startswith(p) for p in produced) or _not_a_path(extra, value):
            continue
        problem = _input_problem(key, extra["input"], value, parent)
        if problem:
            problems.append((ConfigError, problem))
    return problems


def _input_problem(key: str, kind: str, value: str, parent: BaseModel) -> str | None:
    p = Path(value).expanduser()
    hub = getattr(parent, "allow_hub", False)
    if kind == "model" and not p.is_dir() and not hub:
        hub_key = key.rsplit(".", 1)[0] + ".allow_hub" if "allow_hub" in type(parent).model_fields else ""
        hint = missing_model_hint(value, hub_key) if hub_key else "check the path"
        return f"config key '{key}': model directory '{value}' not found; {hint}"
    # A model to evaluate: a directory, an endpoint URL or a responses file.
    if kind == "source" and not p.exists() and not hub:
        return (f"config key '{key}': '{value}' not found (give a model directory, an http(s):// endpoint "
                "URL or a responses file)")
    if kind == "file" and not p.exists():
        return f"config key '{key}': file '{value}' not found"
    return None


def changed_since(inputs: dict[str, dict], earlier: dict[str, dict]) -> list[str]:
    """Keys whose path is the same as in `earlier` (a finished stage's record) but whose content is not."""
    return sorted(k for k, v in inputs.items()
                  if k in earlier and earlier[k].get("path") == v["path"]
                  and earlier[k].get("fingerprint") != v["fingerprint"])


def changed_inputs_note(name: str, stage_dir: Path, inputs: dict[str, dict], config_hash: str) -> str | None:
    """A line for the log when a finished directory of stage `name` beside `stage_dir`, with the same
    config, read inputs whose content has changed since (which is why the stage runs again)."""
    from alignlab.stage_io import DONE_FILE

    for marker in sorted(stage_dir.parent.glob(f"{name}-*/{DONE_FILE}")):
        if marker.parent == stage_dir:
            continue
        try:
            done = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue
        changed = changed_since(inputs, done.get("input_files") or {})
        if done.get("config_hash") == config_hash and changed:
            what = ", ".join(f"{k} ({inputs[k]['path']})" for k in changed)
            return (f"stage {name}: input {what} changed since {marker.parent.name} was computed; "
                    f"running it again in {stage_dir.name}")
    return None
