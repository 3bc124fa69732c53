"""The training loop: AdamW with warmup and linear decay, per-group learning rates, clipping, accumulation,
bf16 autocast, dev-set selection by RE+ micro F1, an atomic checkpoint each epoch and exact resume.

Layout of a run directory::

    config.yaml          the resolved config
    metrics.jsonl        one JSON line per epoch (losses, dev scores, times)
    model.safetensors …  the best epoch's model (a directory ``load_model`` reads)
    checkpoint/          the last epoch: model, optimizer, scheduler, RNG states (for --resume)
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .batching import Example, collate, make_examples
from .config import RunConfig
from .evaluation import evaluate_documents
from .model import Seq2SeqIE, build_model, load_model, save_model
from .schema import Schema
from .types import Document

__all__ = ["train", "TrainResult", "resolve_device", "set_seed"]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    output: Path
    best_epoch: int
    best_dev: dict
    epochs_run: int
    seconds: float


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _param_groups(model: Seq2SeqIE, lr: float, lr_new: float, weight_decay: float) -> list[dict]:
    """Pretrained weights at ``lr``; fresh ones (copy decoder, output layer, heads) at ``lr_new``."""
    pretrained, fresh = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_pretrained = name.startswith("net.encoder.") if model.kind == "copy" else name.startswith("net.")
        (pretrained if is_pretrained else fresh).append(p)
    groups = [{"params": pretrained, "lr": lr, "weight_decay": weight_decay}]
    if fresh:
        groups.append({"params": fresh, "lr": lr_new, "weight_decay": weight_decay})
    return groups


def _atomic_dir(final: Path, write: Callable[[Path], None]) -> None:
    """Write a directory next to ``final`` and swap it in, so a crash never leaves half a checkpoint."""
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    write(tmp)
    old = final.with_name(final.name + ".old")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def _save_best(model: Seq2SeqIE, out: Path, metadata: dict, cfg: RunConfig) -> None:
    """Write the best model into the run directory itself (files replaced one by one via a temp dir)."""
    def write(tmp: Path) -> None:
        save_model(model, tmp, metadata, extra_config={"run": cfg.to_dict()})

    staging = out / "best"
    _atomic_dir(staging, write)
    for f in staging.iterdir():
        os.replace(f, out / f.name)
    staging.rmdir()


def _batches(examples: list[Example], batch_size: int, seed: int, epoch: int) -> list[list[Example]]:
    """Shuffled batches of similar source length (less padding), reproducible from (seed, epoch)."""
    rng = random.Random(seed * 1000 + epoch)
    idx = list(range(len(examples)))
    rng.shuffle(idx)
    # sort within windows of 50 batches by length, then shuffle the batches
    window = batch_size * 50
    chunks = []
    for s in range(0, len(idx), window):
        part = sorted(idx[s : s + window], key=lambda i: len(examples[i].source.ids))
        chunks += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(chunks)
    return [[examples[i] for i in c] for c in chunks]


def train(
    cfg: RunConfig,
    train_docs: list[Document],
    dev_docs: list[Document],
    schema: Schema,
    output: str | Path,
    *,
    resume: bool = False,
    model: Seq2SeqIE | None = None,
    metadata: dict | None = None,
    progress: bool = True,
    stop_after_epoch: int | None = None,
) -> TrainResult:
    """Train on ``train_docs``, select the best epoch on ``dev_docs`` by RE+ micro F1, save into ``output``.

    ``stop_after_epoch`` ends the run early as an interruption would (the checkpoint allows ``resume``).
    """
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    tc = cfg.train
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint"
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = resolve_device(tc.device)
    set_seed(tc.seed)
    if model is None:
        model = build_model(cfg.model, schema, train_docs=train_docs, anchor=cfg.anchor)
    model.to(device)
    model.label_smoothing = tc.label_smoothing
    cfg.save(out / "config.yaml")

    examples = make_examples(model, train_docs)
    skipped: dict[str, int] = {}
    for ex in examples:
        for k, n in ex.skipped.items():
            skipped[k] = skipped.get(k, 0) + n
    if skipped:
        log.warning("targets: %s (of %d training documents)", skipped, len(examples))
    steps_per_epoch = -(-len(examples) // (tc.batch_size * tc.grad_accum))
    total_steps = steps_per_epoch * tc.epochs
    optimizer = torch.optim.AdamW(_param_groups(model, tc.lr, tc.lr_new, tc.weight_decay))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(tc.warmup_ratio * total_steps), total_steps)

    ema = _Ema(model, tc.ema_decay) if tc.ema_decay > 0 else None
    start_epoch, best, best_epoch, elapsed = 1, -1.0, 0, 0.0
    best_dev: dict = {}
    if resume and (ckpt / "state.pt").is_file():
        state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(load_model(ckpt, "cpu").state_dict())
        model.to(device)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        random.setstate(state["py_rng"])
        start_epoch, best, best_epoch = state["epoch"] + 1, state["best"], state["best_epoch"]
        if ema is not None and state.get("ema") is not None:
            ema.shadow = state["ema"]
        best_dev, elapsed = state["best_dev"], state["elapsed"]
        log.info("resumed from %s at epoch %d (best dev RE+ %.4f at epoch %d)", ckpt, start_epoch, best, best_epoch)
    elif resume:
        log.info("no checkpoint in %s; starting from scratch", ckpt)

    use_bf16 = tc.bf16 and (device.type == "cuda" or device.type == "cpu")
    writer = _tensorboard(out)
    t_start = time.time() - elapsed
    epoch = start_epoch - 1
    for epoch in range(start_epoch, tc.epochs + 1):
        model.train()
        batches = _batches(examples, tc.batch_size, tc.seed, epoch)
        bar = tqdm(total=len(batches), desc=f"epoch {epoch}/{tc.epochs}", disable=not progress, leave=False)
        sums: dict[str, float] = {}
        for i, chunk in enumerate(batches):
            batch = {k: v.to(device) for k, v in collate(model, chunk).items()}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                losses = model(batch)
            (losses["loss"] / tc.grad_accum).backward()
            for k, v in losses.items():
                if k.endswith("loss"):
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
            if (i + 1) % tc.grad_accum == 0 or i + 1 == len(batches):
                if tc.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                if ema is not None:
                    ema.update(model)
            bar.set_postfix(loss=f"{sums['loss'] / (i + 1):.4f}")
            bar.update(1)
        bar.close()
        record = {"epoch": epoch, **{k: v / max(1, len(batches)) for k, v in sums.items()},
                  "lr": scheduler.get_last_lr()[0], "train_seconds": round(time.time() - t_start, 1)}
        out_of_time = tc.max_minutes > 0 and (time.time() - t_start) / 60 >= tc.max_minutes
        if epoch >= tc.eval_from_epoch or epoch == tc.epochs or out_of_time:
            if ema is not None:
                ema.swap(model)  # evaluate and save the averaged weights
            dev, _ = evaluate_documents(model, dev_docs, schema, cfg.decode)
            record["dev"] = {t: dev[t]["micro"] for t in ("ner", "re", "re_strict")}
            record["dev_malformed"] = dev["malformed"]
            if "anchor_scorer" in dev:
                record["dev_anchor_scorer"] = dev["anchor_scorer"]
            score = dev["re_strict"]["micro"]["f1"]
            if score > best:
                best, best_epoch, best_dev = score, epoch, record["dev"]
                meta = {**(metadata or {}), "best_epoch": epoch, "dev": record["dev"], "seed": tc.seed,
                        "versions": _versions()}
                _save_best(model, out, meta, cfg)
            if ema is not None:
                ema.swap(model)
        record["best_epoch"] = best_epoch
        with open(out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if writer is not None:
            for k, v in record.items():
                if isinstance(v, float):
                    writer.add_scalar(f"train/{k}", v, epoch)
            for task, sc in record.get("dev", {}).items():
                writer.add_scalar(f"dev/{task}_f1", sc["f1"], epoch)
            writer.flush()
        log.info("epoch %d: %s", epoch, json.dumps(record))
        state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "torch_rng": torch.get_rng_state(), "py_rng": random.getstate(), "epoch": epoch, "best": best,
                 "best_epoch": best_epoch, "best_dev": best_dev, "elapsed": time.time() - t_start,
                 "ema": ema.shadow if ema is not None else None}

        def write_ckpt(tmp: Path, state=state) -> None:
            save_model(model, tmp)
            torch.save(state, tmp / "state.pt")

        _atomic_dir(ckpt, write_ckpt)
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break
        if out_of_time:
            log.info("stopping after epoch %d: train.max_minutes=%s reached", epoch, tc.max_minutes)
            break
    return TrainResult(out, best_epoch, best_dev, epoch, time.time() - t_start)


class _Ema:
    """An exponential moving average of the trainable weights (Polyak averaging), swapped in to evaluate."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for n, p in model.named_parameters():
            if n in self.shadow:
                self.shadow[n].lerp_(p.detach(), 1 - self.decay)

    @torch.no_grad()
    def swap(self, model: torch.nn.Module) -> None:
        """Exchange the model's weights and the averaged ones (call twice to restore)."""
        for n, p in model.named_parameters():
            if n in self.shadow:
                tmp = p.detach().clone()
                p.copy_(self.shadow[n])
                self.shadow[n] = tmp


def _tensorboard(out: Path):
    """A TensorBoard writer in ``out/tensorboard`` when the tensorboard package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out / "tensorboard"))


def _versions() -> dict:
    import platform

    import transformers

    from . import __version__

    return {"anchoralign": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}
