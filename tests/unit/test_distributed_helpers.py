"""What the stages rely on under a multi-process launch, checked in one process: the reference
pre-pass split into shares and put back in order, and a run index that records only on the main process."""

import torch

from alignlab import distributed, run_index
from alignlab.training import refcache


def fake_logps(share: dict) -> dict[str, torch.Tensor]:
    """Stands in for compute_sequence_logps: each sequence's "log-prob" is its own value."""
    out = {}
    for name, values in share.items():
        out[name] = torch.tensor(values, dtype=torch.float32)
        out[f"{name}_tokens"] = torch.tensor(values, dtype=torch.long) * 10
    return out


def test_pre_pass_shares_are_gathered_back_in_the_original_order(monkeypatch):
    sequences = {"train/chosen": [0, 1, 2, 3, 4], "eval/chosen": [7]}  # eval: one share stays empty
    seen = []

    def as_rank0(share):
        seen.append(share)
        return fake_logps(share)

    other_share = {name: values[1::2] for name, values in sequences.items()}
    monkeypatch.setattr(refcache, "launched_processes", lambda: 2)
    monkeypatch.setattr(refcache, "distributed_rank", lambda: 0)
    monkeypatch.setattr(refcache, "gather_objects", lambda mine: [mine, fake_logps(other_share)])
    out = refcache.compute_in_shares(sequences, as_rank0)
    assert seen == [{"train/chosen": [0, 2, 4], "eval/chosen": [7]}]  # this process computed only its share
    assert out["train/chosen"].tolist() == [0, 1, 2, 3, 4] and out["eval/chosen"].tolist() == [7]
    assert out["train/chosen_tokens"].tolist() == [0, 10, 20, 30, 40]


def test_one_process_computes_everything_itself():
    out = refcache.compute_in_shares({"train/chosen": [3, 1]}, fake_logps)
    assert out["train/chosen"].tolist() == [3, 1]


def test_only_the_main_process_opens_the_run_index(monkeypatch, tmp_path):
    db = tmp_path / "runs.sqlite"
    monkeypatch.setattr(distributed, "is_main_process", lambda: False)
    other = run_index.open_run_index(db)
    run = other.start_run("r", None, str(tmp_path))
    other.finish_stage(other.start_stage(run, "s", "sft", None, str(tmp_path), []), "done", {"loss": 1.0})
    other.finish_run(run, "done")
    assert isinstance(other, run_index.NullRunIndex) and not db.exists()
    monkeypatch.setattr(distributed, "is_main_process", lambda: True)
    main = run_index.open_run_index(db)
    main.start_run("r", None, str(tmp_path))
    assert [r.name for r in main.runs()] == ["r"]


def test_run_on_main_in_one_process_just_runs():
    assert distributed.run_on_main(lambda: 42, "x") == 42
    assert distributed.is_main_process() and distributed.distributed_rank() == 0
