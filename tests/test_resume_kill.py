"""What a kill -9 at the worst moments leaves in a run directory, and ``resume`` finishing to the same weights and
the same metrics.jsonl as an uninterrupted run (benchmarks/kill_resume.py kills the real CLI; these rebuild the
states it found, in-process)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from anchoralign.model import load_model
from anchoralign.train import train

from .test_overfit import _cfg
from .tiny import tiny_model, toy_docs, toy_schema

EPOCHS = 4


def _run(tmp_path, out, **kw):
    cfg = _cfg(EPOCHS)
    cfg.train.eval_from_epoch = 1
    torch.manual_seed(0)
    return train(cfg, toy_docs(), toy_docs(), toy_schema(), out, model=tiny_model(tmp_path), progress=False, **kw)


def _epochs(out) -> list[int]:
    return [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("straight")
    _run(tmp, tmp / "a")
    return load_model(tmp / "a" / "checkpoint").state_dict()


def _same_weights(a: dict, out) -> bool:
    b = load_model(out / "checkpoint").state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_stale_old_checkpoint_does_not_stop_the_next_save(tmp_path, straight) -> None:
    """Killed while the previous checkpoint was being deleted: ``checkpoint.old`` stays beside the new one, and
    the next save must not fail renaming ``checkpoint`` onto it."""
    out = tmp_path / "b"
    _run(tmp_path, out, stop_after_epoch=2)
    shutil.copytree(out / "checkpoint", out / "checkpoint.old")
    (out / "checkpoint.old" / "state.pt").unlink()  # half deleted
    _run(tmp_path, out, resume=True)
    assert _same_weights(straight, out)
    assert _epochs(out) == list(range(1, EPOCHS + 1))
    assert not (out / "checkpoint.old").exists() and not (out / "checkpoint.tmp").exists()


def test_killed_between_the_two_renames_resumes_from_the_new_checkpoint(tmp_path, straight) -> None:
    """Killed after ``checkpoint`` became ``checkpoint.old`` and before ``checkpoint.tmp`` (complete) became
    ``checkpoint``: resume continues after epoch 2, not from scratch."""
    out = tmp_path / "b"
    _run(tmp_path, out, stop_after_epoch=1)
    shutil.copytree(out / "checkpoint", tmp_path / "epoch1")
    _run(tmp_path, out, resume=True, stop_after_epoch=2)
    (out / "checkpoint").rename(out / "checkpoint.tmp")
    (tmp_path / "epoch1").rename(out / "checkpoint.old")
    result = _run(tmp_path, out, resume=True, stop_after_epoch=3)
    assert result.epochs_run == 3 and _epochs(out) == [1, 2, 3]  # one epoch trained, none repeated
    _run(tmp_path, out, resume=True)
    assert _same_weights(straight, out)
    assert _epochs(out) == list(range(1, EPOCHS + 1))


def test_metrics_written_before_the_checkpoint_are_not_repeated(tmp_path, straight) -> None:
    """Killed after epoch 3's record reached metrics.jsonl (the last line half written) but before its checkpoint
    was swapped in: resume repeats epoch 3, and metrics.jsonl holds each epoch once."""
    out = tmp_path / "b"
    _run(tmp_path, out, stop_after_epoch=2)
    with open(out / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"epoch": 3, "loss": 1.0}) + "\n" + '{"epoch": 4, "lo')
    _run(tmp_path, out, resume=True)
    assert _same_weights(straight, out)
    assert _epochs(out) == list(range(1, EPOCHS + 1))


def test_resume_without_a_checkpoint_starts_metrics_afresh(tmp_path, straight) -> None:
    """Killed while epoch 1's checkpoint was written: no checkpoint, but epoch 1's record; resume starts over."""
    out = tmp_path / "b"
    _run(tmp_path, out, stop_after_epoch=1)
    (out / "checkpoint").rename(out / "checkpoint.tmp")
    (out / "checkpoint.tmp" / "state.pt").unlink()  # the write was cut short
    _run(tmp_path, out, resume=True)
    assert _same_weights(straight, out)
    assert _epochs(out) == list(range(1, EPOCHS + 1))


class _Killed(Exception):
    pass


def test_killed_inside_an_epoch_resumes_from_the_mid_epoch_checkpoint(tmp_path, monkeypatch) -> None:
    """train.checkpoint_minutes: a kill in the middle of epoch 2 loses only the batch being trained; resume skips
    the batches the checkpoint holds and ends with the weights and losses of an uninterrupted run."""
    import anchoralign.train as train_mod

    def run(out, **kw):
        cfg = _cfg(2)
        cfg.train.batch_size = 1  # three batches (three optimizer steps) per epoch
        cfg.train.eval_from_epoch = 1
        cfg.train.checkpoint_minutes = 1e-9  # after every step
        torch.manual_seed(0)
        return train(cfg, toy_docs(), toy_docs(), toy_schema(), out, model=tiny_model(tmp_path), progress=False, **kw)

    run(tmp_path / "a")
    out = tmp_path / "b"
    real, calls = train_mod.collate, []

    def dying(model, chunk):
        calls.append(1)
        if len(calls) == 6:  # epoch 2's third batch, after two of its steps were checkpointed
            raise _Killed
        return real(model, chunk)

    monkeypatch.setattr(train_mod, "collate", dying)
    with pytest.raises(_Killed):
        run(out)
    state = torch.load(out / "checkpoint" / "state.pt", weights_only=False)
    assert (state["epoch"], state["batches_done"]) == (1, 2)
    calls.clear()
    monkeypatch.setattr(train_mod, "collate", lambda model, chunk: (calls.append(1), real(model, chunk))[1])
    run(out, resume=True)
    assert len(calls) == 1  # only the batch that was cut short is trained again
    a = load_model(tmp_path / "a" / "checkpoint").state_dict()
    assert _same_weights(a, out)
    assert _epochs(out) == [1, 2]
    losses = [[json.loads(line)["loss"] for line in (d / "metrics.jsonl").read_text().splitlines()]
              for d in (tmp_path / "a", out)]
    assert losses[0] == pytest.approx(losses[1], abs=1e-9)
