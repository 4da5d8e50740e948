"""Fingerprints of the input files and model directories a stage reads (part of its directory key)."""

import os

from alignlab import stage_inputs
from alignlab.stage_inputs import FingerprintCache, fingerprint


def test_a_file_is_known_by_its_content_hashed_only_when_size_or_mtime_change(tmp_path, monkeypatch):
    f = tmp_path / "data.jsonl"
    f.write_text('{"a": 1}\n')
    reads = []
    real = stage_inputs._content_digest
    monkeypatch.setattr(stage_inputs, "_content_digest", lambda p: reads.append(p) or real(p))
    cache = FingerprintCache()
    first = fingerprint(f, cache)
    assert fingerprint(f, cache) == first and len(reads) == 1  # unchanged: the cached digest
    os.utime(f, ns=(1, 1))  # touched (a copy without -p): hashed again, and the same content
    assert fingerprint(f, cache) == first and len(reads) == 2
    f.write_text('{"a": 2}\n')  # same size, new content
    assert fingerprint(f, cache) != first and len(reads) == 3


def test_the_cache_survives_a_round_trip_through_its_file(tmp_path):
    f = tmp_path / "data.jsonl"
    f.write_text("x\n")
    cache = FingerprintCache(tmp_path / "cache.json")
    digest = fingerprint(f, cache)
    cache.save()
    assert FingerprintCache(tmp_path / "cache.json").get(f) == digest


def test_a_directory_is_known_by_the_names_sizes_and_times_of_its_files(tmp_path):
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "sub" / "weights.bin").write_bytes(b"\0" * 64)
    (model / ".cache").mkdir()
    first = fingerprint(model)
    assert fingerprint(model) == first
    (model / ".cache" / "lock").write_text("")  # hidden bookkeeping is not the model
    assert fingerprint(model) == first
    (model / "sub" / "weights.bin").write_bytes(b"\1" * 65)
    assert fingerprint(model) != first


def test_a_missing_path_or_a_hub_id_has_no_fingerprint(tmp_path):
    assert fingerprint(tmp_path / "absent") is None
    assert fingerprint("org/model") is None
