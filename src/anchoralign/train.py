"""The training loop on Accelerate: AdamW with warmup and linear decay, per-group learning rates, clipping,
accumulation, mixed precision chosen by hardware (``precision.py``), data parallelism over processes (DDP),
dev-set selection by the dataset's protocol (``protocols.py``: its ``main`` figure; micro RE+ for one's own
data), an atomic checkpoint each epoch and exact resume.

Layout of a run directory::

    config.yaml          the resolved config
    metrics.jsonl        one JSON line per epoch (losses, dev scores, times, precision, schedule_cut)
    model.safetensors …  the best epoch's model (a directory ``load_model`` reads)
    checkpoint/          the last epoch: model, optimizer, scheduler, RNG states (for --resume)
"""

from __future__ import annotations

import contextlib
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

from . import dropout as fast_dropout
from .augment import mention_pool, mention_swap_epoch
from .batching import Example, collate, make_examples
from .config import RunConfig, TrainConfig
from .data.registry import DATASETS, dataset_protocol, get_spec
from .distributed import shard
from .errors import InputError
from .evaluation import evaluate_documents
from .freezing import freeze_encoder_layers
from .model import Seq2SeqIE, build_model, load_model, save_model
from .negatives import negative_documents
from .precision import MIXED_PRECISION, choose_precision
from .schema import Schema
from .scripts import count_scripts
from .trainable_rows import install_row_subset
from .types import Document
from .windows import passage_shape

__all__ = ["train", "TrainResult", "set_seed", "epoch_line", "training_device"]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    output: Path
    best_epoch: int
    best_dev: dict
    epochs_run: int
    seconds: float
    precision: str = "fp32"
    schedule_cut: bool = False  # train.max_minutes stopped the run before its last epoch
    epochs_planned: int = 0
    processes: int = 1


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


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


def trainable_parts(model: Seq2SeqIE, examples: list[Example], tc: TrainConfig):
    """What of the copy backbone a training run leaves out of the gradient: the encoder's frozen bottom
    (``train.freeze_layers``) and the word-embedding rows no gradient can reach (``train.embedding_rows:
    seen``: those of training sources, the generation vocabulary and the decoder start). Returns the two
    installed pieces (each None when not used), whose ``remove()`` puts the plain model back."""
    if model.kind != "copy":
        return None, None
    frozen = freeze_encoder_layers(model.net, tc.freeze_layers)  # first: it refuses a bad value before any change
    rows = None
    if tc.embedding_rows == "seen":
        seen = {i for ex in examples for i in ex.source.ids} | set(model.net.gen_ids.tolist()) | {model.start_id}
        rows = install_row_subset(model.net, seen)
    return frozen, rows


def _adamw(model: Seq2SeqIE, groups: list[dict]) -> torch.optim.AdamW:
    """AdamW, fused (one kernel over all parameters) where torch has it for the parameters' device and dtype:
    torch's default on a CPU is a Python loop over the ~200 tensors (the issue's profile: 11 % of a step)."""
    params = [p for g in groups for p in g["params"]]
    fusable = all(p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.bfloat16, torch.float16)
                  for p in params)
    return torch.optim.AdamW(groups, fused=fusable or None)


def _set_attention_dropout(model: torch.nn.Module, p: float) -> None:
    """Set the dropout of every attention module's probabilities (BERT's ``*Attention.dropout``) to ``p``."""
    for module in model.modules():
        drop = getattr(module, "dropout", None)
        if type(module).__name__.endswith("Attention") and isinstance(drop, torch.nn.Dropout):
            drop.p = p


def _atomic_dir(final: Path, write: Callable[[Path], None]) -> None:
    """Write a directory next to ``final`` and swap it in, so a crash never leaves half a checkpoint."""
    tmp = final.with_name(final.name + ".tmp")
    _recover_dir(final)  # a kill in an earlier swap: a stale .old would make the rename below fail (ENOTEMPTY)
    if tmp.exists():
        shutil.rmtree(tmp)
    write(tmp)
    old = final.with_name(final.name + ".old")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def _recover_dir(final: Path) -> None:
    """Settle what a kill inside ``_atomic_dir`` left: between its two renames ``final`` is missing, ``.old``
    holds the previous version and ``.tmp`` the new one, complete (it was written before ``final`` moved).
    Killed while writing ``.tmp`` (``final`` still there) or deleting ``.old``, those are leftovers."""
    tmp, old = final.with_name(final.name + ".tmp"), final.with_name(final.name + ".old")
    if not final.exists() and old.exists():
        (tmp if tmp.exists() else old).rename(final)
    for stale in (old, tmp):
        if stale.exists():
            shutil.rmtree(stale)


def _trim_metrics(out: Path, epoch: int) -> None:
    """Keep metrics.jsonl's records up to the checkpoint's ``epoch``: a kill after an epoch's record was appended
    (or while it was) and before its checkpoint was swapped in leaves a record that the resumed run writes again."""
    path = out / "metrics.jsonl"
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line cut short by the kill
            if json.loads(line).get("epoch", epoch + 1) <= epoch:
                kept.append(line + "\n")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    os.replace(tmp, path)


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
    """Train on ``train_docs``, select the best epoch on ``dev_docs`` by the main figure of ``cfg.dataset``'s
    protocol (RE+ micro F1 for own data, ``cfg.dataset == ""``), save into ``output``.

    Run by several processes (``torchrun``, ``accelerate launch``), each trains on its share of every epoch's
    batches and gradients are averaged (DDP); the main process alone evaluates and writes. ``stop_after_epoch``
    ends the run early as an interruption would (the checkpoint allows ``resume``).
    """
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    tc = cfg.train
    protocol = dataset_protocol(cfg.dataset)  # dev selection: an unknown dataset fails here, before training
    language = get_spec(cfg.dataset).language if cfg.dataset in DATASETS else "en"
    if tc.negatives > 0 and language != "en":
        raise InputError(f"train.negatives writes English sentences; dataset {cfg.dataset} is {language!r}")
    kind = training_device(tc.device)
    choice = choose_precision(tc.precision, kind, "train.precision")  # first: a bad request fails before any write
    cpu = kind.type == "cpu"
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint"
    if tc.threads:
        torch.set_num_threads(tc.threads)
    set_seed(tc.seed)
    if model is None:
        model = build_model(cfg.model, schema, train_docs=train_docs, anchor=cfg.anchor)
    if tc.freeze_layers and model.kind != "copy":
        raise InputError(f"train.freeze_layers freezes the copy backbone's encoder; backbone {cfg.model.backbone!r} "
                         "is a Hugging Face seq2seq model (set train.freeze_layers=0)")
    accelerator = _accelerator(cpu, choice.precision, find_unused=_may_skip_parameters(model))
    main, world, rank = accelerator.is_main_process, accelerator.num_processes, accelerator.process_index
    device = accelerator.device
    model.to(device)
    model.label_smoothing = tc.label_smoothing
    if tc.attention_dropout >= 0:
        _set_attention_dropout(model, tc.attention_dropout)
    if cpu:
        fast_dropout.install(model)  # torch's CPU masks were ~11 % of a step (anchoralign/dropout.py)
    if main:
        log.info("precision: %s (%s)", choice.precision, choice.reason)
        if world == 1 and cpu and "MASTER_ADDR" in os.environ and "ACCELERATE_USE_CPU" in os.environ:
            log.warning("accelerate launch --cpu started one process (Accelerate starts several CPU processes "
                        "only through mpirun); for N use `anchoralign train --processes N` (docs/distributed.md)")
        cfg.save(out / "config.yaml")

    fit_docs = train_docs
    if tc.negatives > 0:
        neg = negative_documents(train_docs, tc.negatives, tc.seed, tc.negative_kind_list)
        fit_docs = [*train_docs, *neg.documents]
        if main:
            log.info("negatives: %d sentences that state no relation added to %d training documents (%s)",
                     len(neg.documents), len(train_docs), ", ".join(f"{k} {v}" for k, v in sorted(neg.counts.items())))
    examples = _heads_only_negatives(make_examples(model, fit_docs), tc)
    skipped: dict[str, int] = {}
    for ex in examples:
        for k, n in ex.skipped.items():
            skipped[k] = skipped.get(k, 0) + n
    if cfg.model.backbone == "copy" and "ambiguous_mention" in skipped:
        # The copy backbone learns and decodes where each mention piece is copied from, so a repeated mention
        # string is placed exactly; only a backbone that writes strings (hf-seq2seq) is placed by rule.
        repeated = skipped.pop("ambiguous_mention")
        if main:
            log.info("targets: %d mentions repeat elsewhere in their passage (placed by copy position, not by rule)",
                     repeated)
    if skipped and main:
        log.warning("targets: %s (of %d training documents)", skipped, len(examples))
    if model.anchor.span_classifier and main:
        width = model.anchor.span_max_width
        wide = sum(1 for ex in examples for e in ex.doc.entities if e.end - e.start > width)
        if wide:
            log.warning("span classifier: %d training entities are longer than anchor.span_max_width %d tokens "
                        "and are not learned as spans (of %d)", wide, width,
                        sum(len(ex.doc.entities) for ex in examples))
    n_batches = -(-len(examples) // tc.batch_size)  # what _batches yields: its windows are whole batches
    per_rank = -(-n_batches // world)  # batches each rank trains on per epoch (shard pads to equal shares)
    steps_per_epoch = -(-per_rank // tc.grad_accum)  # the ranks step together
    total_steps = steps_per_epoch * tc.epochs
    if world > 1 and main:
        log.info("%d processes x batch_size %d x grad_accum %d = %d documents per optimizer step", world,
                 tc.batch_size, tc.grad_accum, world * tc.batch_size * tc.grad_accum)
    frozen, rows = trainable_parts(model, examples, tc)
    if frozen is not None and main:
        log.info("encoder: embeddings and the first %d of %d layers frozen (train.freeze_layers)",
                 tc.freeze_layers, len(model.net.encoder.encoder.layer))
    plain = rows.plain if rows is not None else contextlib.nullcontext
    optimizer = _adamw(model, _param_groups(model, tc.lr, tc.lr_new, tc.weight_decay))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(tc.warmup_ratio * total_steps), total_steps)

    ema = _Ema(model, tc.ema_decay) if tc.ema_decay > 0 else None
    tail = _TailAverage() if tc.average_last > 1 and main else None
    start_epoch, best, best_epoch, elapsed = 1, -1.0, 0, 0.0
    resume_batches, resume_sums = 0, {}
    best_dev: dict = {}
    scaler_state = None
    if resume:
        if main:
            _recover_dir(ckpt)  # killed inside _atomic_dir: checkpoint.tmp or .old may hold the checkpoint
        accelerator.wait_for_everyone()
    if resume and (ckpt / "state.pt").is_file():  # every rank reads the checkpoint
        state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=False)
        with plain():
            model.load_state_dict(load_model(ckpt, "cpu").state_dict())
        model.to(device)
        saved_groups = [len(g["params"]) for g in state["optimizer"]["param_groups"]]
        if saved_groups != [len(g["params"]) for g in optimizer.param_groups]:
            for installed in (rows, frozen):  # the caller's model as it came
                if installed is not None:
                    installed.remove()
            raise InputError(f"{ckpt}: the checkpoint trains other parameters than this config does (tensors per "
                             f"group {saved_groups} against {[len(g['params']) for g in optimizer.param_groups]}); "
                             "resume with the run's own config (train.freeze_layers, train.embedding_rows, model)")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch_rng, py_rng = state["torch_rng"], state["py_rng"]
        by_rank = state.get("rng_by_rank")
        if by_rank is not None and len(by_rank) == world:
            torch_rng, py_rng = by_rank[rank]
        elif state.get("processes", 1) != world and main:
            log.warning("the checkpoint was written by %d process(es), resuming with %d: batches per optimizer "
                        "step and the random streams differ from an uninterrupted run", state.get("processes", 1),
                        world)
        torch.set_rng_state(torch_rng)
        random.setstate(py_rng)
        start_epoch, best, best_epoch = state["epoch"] + 1, state["best"], state["best_epoch"]
        if ema is not None and state.get("ema") is not None:
            ema.shadow = {k: v.to(device) for k, v in state["ema"].items()}
        if tail is not None and state.get("tail") is not None:
            tail.load(state["tail"], device)
        best_dev, elapsed = state["best_dev"], state["elapsed"]
        scaler_state = state.get("scaler")
        # a checkpoint written inside an epoch (train.checkpoint_minutes): its first batches are done
        resume_batches = state.get("batches_done", 0)
        sums_by_rank = state.get("sums_by_rank") or [{}]
        resume_sums = sums_by_rank[rank] if len(sums_by_rank) == world else {}
        if main:
            _trim_metrics(out, state["epoch"])
            where = f", batch {resume_batches + 1}" if resume_batches else ""
            log.info("resumed from %s at epoch %d%s (best dev %.4f at epoch %d)", ckpt, start_epoch, where, best,
                     best_epoch)
    elif resume and main:
        _trim_metrics(out, 0)
        log.info("no checkpoint in %s; starting from scratch", ckpt)

    # DDP-wrapped (several processes) and autocast-wrapped (bf16/fp16) for the loss; `model` stays the plain
    # module: collate, evaluation, EMA and saving use it
    own_forward = "forward" in vars(model)
    prepared, optimizer = accelerator.prepare(model, optimizer)
    if scaler_state is not None and accelerator.scaler is not None:
        accelerator.scaler.load_state_dict(scaler_state)
    writer = _tensorboard(out) if main else None
    t_start = time.time() - elapsed
    last_save = time.time()

    def save_checkpoint(epochs_done: int, batches_done: int = 0, sums: dict | None = None) -> None:
        """Write ``checkpoint/`` (every rank calls: the random states are gathered): the model, optimizer,
        scheduler and random states after ``epochs_done`` epochs and ``batches_done`` batches of the next."""
        nonlocal last_save
        rngs = _gather(accelerator, (torch.get_rng_state(), random.getstate(), dict(sums or {})))
        if main:
            state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "torch_rng": rngs[0][0], "py_rng": rngs[0][1], "epoch": epochs_done, "best": best,
                     "best_epoch": best_epoch, "best_dev": best_dev, "elapsed": time.time() - t_start,
                     "ema": ema.shadow if ema is not None else None, "processes": world,
                     "tail": tail.state() if tail is not None else None,
                     "rng_by_rank": [r[:2] for r in rngs] if world > 1 else None,
                     "batches_done": batches_done, "sums_by_rank": [r[2] for r in rngs],
                     "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None}

            def write_ckpt(tmp: Path) -> None:
                with plain():
                    save_model(model, tmp)
                torch.save(state, tmp / "state.pt")

            _atomic_dir(ckpt, write_ckpt)
            if batches_done:
                log.info("checkpoint inside epoch %d after batch %d", epochs_done + 1, batches_done)
        last_save = time.time()
    base_examples = examples  # the training documents as read, in text order
    scripts = dict(count_scripts(d.text for d in train_docs))  # saved: extraction checks a text's scripts
    pool = mention_pool(train_docs) if tc.mention_swap > 0 else None
    epoch, cut = start_epoch - 1, False
    try:
        for epoch in range(start_epoch, tc.epochs + 1):
            prepared.train()
            epoch_docs = fit_docs
            if pool is not None:  # mention replacement: a new draw of documents and mentions, from (seed, epoch)
                swap = mention_swap_epoch(train_docs, tc.mention_swap, tc.seed, epoch, pool)
                epoch_docs = [*swap.documents, *fit_docs[len(train_docs):]]
                if main and epoch == start_epoch:
                    log.info("mention swap: %d of %d training documents get other mentions this epoch (%d have "
                             "none to replace); types %s", swap.counts["swapped"], len(train_docs),
                             swap.counts["unchanged"], ", ".join(sorted(pool)))
            if tc.target_order == "shuffled" or pool is not None:
                # a new draw of every target's order, from (seed, epoch); swapped documents are encoded anew
                order_rng = random.Random(tc.seed * 7919 + epoch) if tc.target_order == "shuffled" else None
                sources = [base.source if doc is fit_docs[k] else None
                           for k, (doc, base) in enumerate(zip(epoch_docs, base_examples, strict=True))]
                examples = _heads_only_negatives(make_examples(model, epoch_docs, rng=order_rng, sources=sources), tc)
            batches = shard(_batches(examples, tc.batch_size, tc.seed, epoch), rank, world)
            done = resume_batches if epoch == start_epoch else 0  # batches a mid-epoch checkpoint already holds
            bar = tqdm(total=len(batches), initial=done, desc=f"epoch {epoch}/{tc.epochs}",
                       disable=not (progress and main), leave=False)
            sums: dict[str, float] = dict(resume_sums) if done else {}
            for i, chunk in enumerate(batches):
                if i < done:
                    continue
                # accumulation by hand, not accelerator.accumulate: a step also ends at the epoch's last batch
                step = (i + 1) % tc.grad_accum == 0 or i + 1 == len(batches)
                batch = {k: v.to(device) for k, v in collate(model, chunk).items()}
                with contextlib.nullcontext() if step else accelerator.no_sync(prepared):  # all-reduce on steps
                    losses = prepared(batch)
                    accelerator.backward(losses["loss"] / tc.grad_accum)
                for k, v in losses.items():
                    if k.endswith("loss"):
                        sums[k] = sums.get(k, 0.0) + float(v.detach())
                if step:
                    if tc.grad_clip > 0:
                        accelerator.clip_grad_norm_(model.parameters(), tc.grad_clip)
                    optimizer.step()
                    if not accelerator.optimizer_step_was_skipped:  # fp16: a step skipped on overflow
                        scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    if ema is not None:
                        ema.update(model)
                    if tc.checkpoint_minutes > 0 and i + 1 < len(batches):
                        due = time.time() - last_save >= 60 * tc.checkpoint_minutes
                        if _from_main(accelerator, due):  # every rank joins the gather below, or none
                            save_checkpoint(epoch - 1, batches_done=i + 1, sums=sums)
                bar.set_postfix(loss=f"{sums['loss'] / (i + 1):.4f}")
                bar.update(1)
            bar.close()
            record = {"epoch": epoch, **_mean_losses(accelerator, sums, len(batches)),
                      "lr": scheduler.get_last_lr()[0], "train_seconds": round(time.time() - t_start, 1)}
            out_of_time = tc.max_minutes > 0 and (time.time() - t_start) / 60 >= tc.max_minutes
            out_of_time = _from_main(accelerator, out_of_time)  # clocks differ: every rank must stop together
            cut = out_of_time and epoch < tc.epochs
            final = epoch == tc.epochs or out_of_time
            if tail is not None and epoch > tc.epochs - tc.average_last:
                tail.add(model, epoch)
            # "best": dev selects the epoch; "last": the final epoch is kept (dev scored once, for the record)
            evaluate = final or (tc.select == "best" and epoch >= tc.eval_from_epoch)
            if main and evaluate:
                if ema is not None:
                    ema.swap(model)  # evaluate and save the averaged weights
                dev, _ = evaluate_documents(model, dev_docs, schema, cfg.decode, protocol=protocol)
                record["dev"] = {t: dev[t]["micro"] for t in ("ner", "re", "re_strict")}
                record["dev_protocol"] = dev["figures"]  # its "main" selects the epoch
                record["dev_malformed"] = dev["malformed"]
                if "anchor_scorer" in dev:
                    record["dev_anchor_scorer"] = dev["anchor_scorer"]
                score = dev["main"]

                def keep(dev_record: dict, epoch: int = epoch, cut: bool = cut, **extra) -> None:
                    meta = {**(metadata or {}), "best_epoch": epoch, "dev": dev_record, "seed": tc.seed,
                            "precision": choice.precision, "processes": world,
                            "global_batch": world * tc.batch_size * tc.grad_accum, "epochs_planned": tc.epochs,
                            "epochs_completed": epoch, "schedule_cut": cut, "versions": _versions(),
                            "passage": passage_shape(train_docs), "scripts": scripts, **extra}
                    with plain():
                        _save_best(model, out, meta, cfg)

                if score > best or tc.select == "last":
                    best, best_epoch, best_dev = score, epoch, record["dev"]
                    keep(record["dev"])
                if final and tail is not None and tail.count > 1:
                    # the mean of the last epochs' weights competes with the best single epoch ("last": replaces it)
                    own = tail.apply(model)
                    dev_avg, _ = evaluate_documents(model, dev_docs, schema, cfg.decode, protocol=protocol)
                    record["dev_average"] = {**{t: dev_avg[t]["micro"] for t in ("ner", "re", "re_strict")},
                                             "main": dev_avg["main"], "epochs": list(tail.epochs)}
                    kept = dev_avg["main"] > best or tc.select == "last"
                    log.info("mean of the weights of epochs %s: dev %.4f, %s", tail.epochs, dev_avg["main"],
                             "kept" if kept else f"not kept (epoch {best_epoch}: {best:.4f})")
                    if kept:
                        best, best_epoch, best_dev = dev_avg["main"], epoch, record["dev_average"]
                        keep(record["dev_average"], averaged_epochs=list(tail.epochs))
                        record["kept"] = "average"
                    tail.restore(model, own)
                if ema is not None:
                    ema.swap(model)
            best, best_epoch, best_dev = _from_main(accelerator, (best, best_epoch, best_dev))
            record.update(best_epoch=best_epoch, precision=choice.precision, processes=world,
                          epochs_planned=tc.epochs, schedule_cut=cut)
            if main:
                _write_epoch(out, record, writer)
            save_checkpoint(epoch)
            if main:
                spent = time.time() - t_start
                eta = 0.0 if out_of_time else spent / epoch * (tc.epochs - epoch)
                log.info("%s", epoch_line(record, tc.epochs, spent, eta))
            if stop_after_epoch is not None and epoch >= stop_after_epoch:
                break
            if out_of_time:
                if cut and main:
                    log.warning("schedule cut: train.max_minutes=%s reached after epoch %d of %d; the model is "
                                "the best dev epoch so far (%d)", tc.max_minutes, epoch, tc.epochs, best_epoch)
                break
        if main:
            _finish_metadata(out, epoch, tc.epochs, cut)
        accelerator.wait_for_everyone()  # no rank returns before the main one has written the run
    finally:
        if rows is not None:
            rows.remove()  # the caller gets the plain model back
        if frozen is not None:
            frozen.remove()  # and its encoder trainable
        accelerator.unwrap_model(prepared, keep_fp32_wrapper=False)  # undo the autocast wrapper of forward
        if not own_forward:
            vars(model).pop("forward", None)  # ... and the instance attribute it leaves: the class's forward again
        vars(model).pop("_is_accelerate_prepared", None)  # else a later train() on this model would not wrap it
        if writer is not None:
            writer.close()
    return TrainResult(out, best_epoch, best_dev, epoch, time.time() - t_start, precision=choice.precision,
                       schedule_cut=cut, epochs_planned=tc.epochs, processes=world)


def epoch_line(record: dict, epochs: int, elapsed: float, eta: float) -> str:
    """One progress line: ``epoch 3/20: loss 1.2345, dev NER 61.20 RE+ 30.10, 0:04:10 elapsed, ETA 0:23:36``."""
    parts = [f"epoch {record['epoch']}/{epochs}: loss {record.get('loss', float('nan')):.4f}"]
    if "dev" in record:
        parts.append(f"dev NER {100 * record['dev']['ner']['f1']:.2f} RE+ {100 * record['dev']['re_strict']['f1']:.2f}")
    parts.append(f"{_clock(elapsed)} elapsed, ETA {_clock(eta)}")
    if record.get("schedule_cut"):
        parts.append("schedule cut (train.max_minutes)")
    return ", ".join(parts)


def _clock(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def training_device(name: str) -> torch.device:
    """The kind of device ``train.device`` trains on: the CPU when asked (or by ``accelerate launch --cpu``) or
    without CUDA, else CUDA (each process's own GPU is Accelerate's choice)."""
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("train.device is cuda but CUDA is not available")
    forced = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    on_cpu = name == "cpu" or forced or not torch.cuda.is_available()
    return torch.device("cpu" if on_cpu else "cuda")


def _may_skip_parameters(model: Seq2SeqIE) -> bool:
    """Whether some steps may leave parameters out of the loss: the alignment heads when a batch holds fewer
    than two anchors or no relation. DDP must then look for unused parameters, else the next step fails."""
    return model.heads is not None and model.heads.anchor_proj is not None


def _accelerator(cpu: bool, precision: str, find_unused: bool):
    """An ``accelerate.Accelerator`` for one run (processes from the launcher's environment)."""
    from datetime import timedelta

    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs

    AcceleratorState._reset_state()  # one process may train several models (tests, experiments), each its precision
    # the other ranks wait while the main one evaluates dev: allow a long evaluation
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=find_unused),
                InitProcessGroupKwargs(timeout=timedelta(hours=2))]
    return Accelerator(cpu=cpu, mixed_precision=MIXED_PRECISION[precision], kwargs_handlers=handlers)


def _mean_losses(accelerator, sums: dict[str, float], n: int) -> dict[str, float]:
    """Mean losses over this rank's batches, averaged over ranks."""
    means = {k: v / max(1, n) for k, v in sums.items()}
    if accelerator.num_processes > 1 and means:
        t = torch.tensor(list(means.values()), dtype=torch.float64, device=accelerator.device)
        means = dict(zip(means, accelerator.reduce(t, reduction="mean").tolist(), strict=True))
    return means


def _from_main(accelerator, value):
    """The main process's ``value`` on every rank."""
    if accelerator.num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]


def _gather(accelerator, value) -> list:
    """Every rank's ``value``, in rank order."""
    if accelerator.num_processes == 1:
        return [value]
    import torch.distributed as dist

    out: list = [None] * accelerator.num_processes
    dist.all_gather_object(out, value)
    return out


def _write_epoch(out: Path, record: dict, writer) -> None:
    """Append the epoch's record to metrics.jsonl and TensorBoard."""
    with open(out / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    if writer is not None:
        for k, v in record.items():
            if isinstance(v, float):
                writer.add_scalar(f"train/{k}", v, record["epoch"])
        for task, sc in record.get("dev", {}).items():
            writer.add_scalar(f"dev/{task}_f1", sc["f1"], record["epoch"])
        writer.flush()
    log.debug("epoch %d: %s", record["epoch"], json.dumps(record))


def _finish_metadata(out: Path, epochs_completed: int, epochs_planned: int, cut: bool) -> None:
    """Record in the best model's metadata.json how the schedule ended (it was saved before the end)."""
    path = out / "metadata.json"
    if not path.is_file():
        return
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta.update(epochs_completed=epochs_completed, epochs_planned=epochs_planned, schedule_cut=cut)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


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


class _TailAverage:
    """The uniform mean of the trainable weights at the ends of the last epochs (checkpoint averaging)."""

    def __init__(self) -> None:
        self.sum: dict[str, torch.Tensor] = {}
        self.epochs: list[int] = []

    @property
    def count(self) -> int:
        return len(self.epochs)

    @torch.no_grad()
    def add(self, model: torch.nn.Module, epoch: int) -> None:
        for n, p in model.named_parameters():
            if p.requires_grad:
                w = p.detach().float()
                self.sum[n] = self.sum[n].add_(w) if n in self.sum else w.clone()
        self.epochs.append(epoch)

    @torch.no_grad()
    def apply(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Put the mean into the model; returns its own weights for ``restore``."""
        own = {}
        for n, p in model.named_parameters():
            if n in self.sum:
                own[n] = p.detach().clone()
                p.copy_((self.sum[n] / self.count).to(p.dtype))
        return own

    @torch.no_grad()
    def restore(self, model: torch.nn.Module, own: dict[str, torch.Tensor]) -> None:
        for n, p in model.named_parameters():
            if n in own:
                p.copy_(own[n])

    def state(self) -> dict:
        return {"sum": self.sum, "epochs": self.epochs}

    def load(self, state: dict, device) -> None:
        self.sum = {k: v.to(device) for k, v in state["sum"].items()}
        self.epochs = list(state["epochs"])


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


def _heads_only_negatives(examples: list, tc: TrainConfig) -> list:
    """``examples`` with the added negatives' targets out of the generation loss when ``train.negatives_generate``
    is false (they still train the encoder and the heads)."""
    if not tc.negatives_generate:
        for ex in examples:
            if ex.doc.meta.get("negative"):
                ex.generate = False
    return examples
