"""Engine benchmark: encoder floor, extraction and training throughput and peak memory, side by side in one run.

    .venv/bin/python benchmarks/bench_engine.py --model DIR --dataset conll04 --data-dir ../shared/data \\
        [--n 200] [--train-docs 320] [--config configs/conll04-cpu.yaml] [--set K=V ...] [--json OUT] \\
        [--baseline-src OLD/src --baseline-config OLD/configs/conll04-cpu.yaml --baseline-set K=V ...]
    .venv/bin/python benchmarks/bench_engine.py --tiny        # tiny random models and toy documents: a smoke run

Each phase runs in a fresh process (this script re-invoked with ``--phase NAME``), so each peak resident set
size (``getrusage(RUSAGE_SELF).ru_maxrss``) belongs to that phase alone; the parent imports neither torch nor
the library, so the little it holds cannot leak into a child's peak. The baseline training phase runs with an
older checkout's ``src`` first on ``PYTHONPATH``, so the old and the new training loop are measured in the same
run on the same machine. The encoder and extraction phases time ``--repeats`` passes (default 3) and count the
fastest, since one pass on a shared or virtual machine can be a third slower than the next. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WARMUP_SENTENCES = 8
DEV_DOCS = 8  # dev documents handed to train() (it needs some; the benchmark's epoch never evaluates them)
TINY_TRAIN_DOCS = 64
# environment variables that each can force a lower instruction set than the CPU has
ISA_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")

# phase name -> (kind, settings)
PHASES: dict[str, tuple[str, dict]] = {
    "encoder_forward": ("encoder", {}),
    "encoder_forward_length_batches": ("encoder", {"batching": "length"}),
    "extract_greedy_unconstrained": ("extract", {"constrained": False, "num_beams": 1, "space": "copy"}),
    "extract_greedy_constrained": ("extract", {"constrained": True, "num_beams": 1, "space": "copy"}),
    "extract_beam3_constrained": ("extract", {"constrained": True, "num_beams": 3, "space": "copy"}),
    "extract_greedy_constrained_vocab": ("extract", {"constrained": True, "num_beams": 1, "space": "vocab"}),
    "train_fp32": ("train", {"precision": "fp32", "baseline": False}),
    "train_bf16": ("train", {"precision": "bf16", "baseline": False}),
    "train_fp32_baseline": ("train", {"precision": "fp32", "baseline": True}),
}
DEFAULT_PHASES = [p for p in PHASES if p != "train_fp32_baseline"]  # the baseline runs with --baseline-src
LABELS = {
    "encoder_forward": "encoder forward only (fp32, no grad)",
    "encoder_forward_length_batches": "encoder forward only, extraction's batches",
    "extract_greedy_unconstrained": "extract, greedy, unconstrained",
    "extract_greedy_constrained": "extract, greedy, constrained",
    "extract_beam3_constrained": "extract, beam 3, constrained",
    "extract_greedy_constrained_vocab": "extract, greedy, constrained, vocab space",
    "train_fp32": "train, fp32",
    "train_bf16": "train, bf16 autocast",
    "train_fp32_baseline": "train, fp32, baseline src",
}
# ratio name -> (numerator phase, denominator phase, throughput key, text)
RATIOS = {
    "extract_constrained_over_encoder_forward": (
        "extract_greedy_constrained", "encoder_forward", "sentences_per_s",
        "extraction greedy constrained / encoder forward"),
    "extract_constrained_over_encoder_length_batches": (
        "extract_greedy_constrained", "encoder_forward_length_batches", "sentences_per_s",
        "extraction greedy constrained / encoder forward in extraction's batches"),
    "extract_constrained_over_unconstrained": (
        "extract_greedy_constrained", "extract_greedy_unconstrained", "sentences_per_s",
        "extraction greedy, constrained / unconstrained"),
    "extract_beam3_over_greedy_constrained": (
        "extract_beam3_constrained", "extract_greedy_constrained", "sentences_per_s",
        "extraction constrained, beam 3 / greedy"),
    "extract_copy_space_over_vocab_space": (
        "extract_greedy_constrained", "extract_greedy_constrained_vocab", "sentences_per_s",
        "extraction greedy constrained, copy space / vocab space"),
    "train_bf16_over_fp32": ("train_bf16", "train_fp32", "examples_per_s", "training, bf16 autocast / fp32"),
    "train_fp32_over_baseline": (
        "train_fp32", "train_fp32_baseline", "examples_per_s", "training fp32, this src / baseline src"),
}  # fmt: skip


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


# -- inside a phase process -----------------------------------------------------------------------------
# Only stdlib at module level, and the library imported inside functions: the baseline phase runs this script
# against an older ``src``, so its path (_train_data, bench_train) uses APIs that both versions have.


def _cycle(docs: list, n: int) -> list:
    """``n`` documents, repeating ``docs`` when there are fewer (each copy with its own id)."""
    from dataclasses import replace

    return [replace(docs[i % len(docs)], id=f"{docs[i % len(docs)].id}#{i}") for i in range(n)]


def _tiny_helpers():
    sys.path.insert(0, str(REPO))  # tests/tiny.py: this checkout's, on whichever library is imported
    from tests import tiny

    return tiny


def _extraction_data(args: dict, device):
    """The model on ``device`` and the first ``n`` extraction documents."""
    if args["tiny"]:
        import torch

        from anchoralign.anchor_heads import AnchorConfig

        tiny = _tiny_helpers()
        torch.manual_seed(args["seed"])
        model = tiny.tiny_model(None, anchor=AnchorConfig())  # full AnchorAlign: scorer and alignment heads
        return model.to(device), _cycle(tiny.toy_docs(), args["n"])

    from anchoralign.data.registry import get_spec, load_split, resolve_data_dir
    from anchoralign.model import load_model

    model = load_model(args["model"], device)
    spec = get_spec(args["dataset"])
    test_split = args["test_split"] or (
        "test" if "test" in spec.files else spec.train_split.replace("train", "test")
    )
    docs = load_split(args["dataset"], test_split, resolve_data_dir(args["data_dir"])).documents[: args["n"]]
    return model, docs


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_encoder(model, docs: list, device, args: dict, batching: str = "fixed") -> dict:
    """Sentences/s of the bare encoder forward over ``docs``, fp32, no grad: length-sorted batches of
    ``--encoder-batch-size`` (32), or (``batching="length"``) the batches ``decode.predict`` itself makes
    (``batching.length_batches``: the model's decode batch size, the long tail split). Tokenizing and collating
    happen before the clock (``prepare_seconds``)."""
    import torch

    from anchoralign.batching import collate, make_examples

    start = time.perf_counter()
    examples = make_examples(model, docs, with_targets=False)
    if batching == "length":  # imported here: the fixed batches also run with an older checkout's src
        from anchoralign.batching import length_batches
        from anchoralign.decode import PAD_SLACK

        batch_size = _decode_config(args, True, 1, "copy").batch_size
        groups = length_batches([len(e.source.ids) for e in examples], batch_size, PAD_SLACK)
        batches = [collate(model, [examples[i] for i in g]) for g in groups]
    else:
        batch_size = args.get("encoder_batch_size") or 32
        examples.sort(key=lambda e: len(e.source.ids))
        batches = [collate(model, examples[i : i + batch_size]) for i in range(0, len(examples), batch_size)]
    batches = [{k: b[k].to(device) for k in ("input_ids", "attention_mask")} for b in batches]
    warm = {k: v.to(device) for k, v in collate(model, examples[:WARMUP_SENTENCES]).items()
            if k in ("input_ids", "attention_mask")}  # fmt: skip
    prepare_seconds = time.perf_counter() - start
    encoder = model.net.encoder if model.kind == "copy" else model.net.get_encoder()
    model.eval()
    times = []
    with torch.no_grad():
        encoder(**warm)
        _sync(device)
        for _ in range(args.get("repeats") or 1):
            start = time.perf_counter()
            for b in batches:
                encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
            _sync(device)
            times.append(time.perf_counter() - start)
    seconds = min(times)
    return {
        "sentences_per_s": len(docs) / seconds, "seconds": seconds, "seconds_each": times, "n": len(docs),
        "batch_size": batch_size, "batching": batching,
        "batches": len(batches), "positions": sum(int(b["input_ids"].numel()) for b in batches),
        "prepare_seconds": prepare_seconds,
        "mean_source_pieces": sum(len(e.source.ids) for e in examples) / max(1, len(examples)),
        "encoder": type(encoder).__name__,
    }  # fmt: skip


def _decode_config(args: dict, constrained: bool, num_beams: int, space: str):
    """The model's saved decode settings (batch size, length cap), with this phase's search, space and precision."""
    from dataclasses import fields, replace

    from anchoralign.decode import DecodeConfig

    saved: dict = {}
    if args["model"]:
        cfg_path = Path(args["model"]) / "model_config.json"
        saved = json.loads(cfg_path.read_text(encoding="utf-8")).get("run", {}).get("decode", {})
    known = {f.name for f in fields(DecodeConfig)}
    cfg = DecodeConfig(**{k: v for k, v in saved.items() if k in known})
    cfg = replace(cfg, constrained=constrained, num_beams=num_beams, space=space,
                  precision=args["decode_precision"] or "fp32")  # fmt: skip
    if args["decode_batch_size"]:
        cfg = replace(cfg, batch_size=args["decode_batch_size"])
    return cfg


def bench_extract(model, docs: list, device, settings: dict, args: dict) -> dict:
    """Sentences/s of ``decode.predict`` on ``docs`` (after a warm-up on a few), with their scores."""
    from dataclasses import asdict

    from anchoralign.decode import predict
    from anchoralign.metrics import score_documents

    cfg = _decode_config(args, settings["constrained"], settings["num_beams"], settings["space"])
    predict(model, docs[:WARMUP_SENTENCES], cfg)
    _sync(device)
    times = []
    for _ in range(args.get("repeats") or 1):
        start = time.perf_counter()
        result = predict(model, docs, cfg)
        _sync(device)
        times.append(time.perf_counter() - start)
    seconds = min(times)
    scores = score_documents(docs, result.documents, model.schema)
    return {
        "sentences_per_s": len(docs) / seconds, "seconds": seconds, "seconds_each": times, "n": len(docs),
        "decode": asdict(cfg), "computed_in": getattr(result, "precision", None),
        "space_applies": model.kind == "copy",  # an HF model is always searched over its vocabulary
        "malformed": result.malformed, "malformed_by_kind": dict(sorted(result.errors.items())),
        "constraint_rejections": result.rejected,
        "predicted_entities": sum(len(d.entities) for d in result.documents),
        "predicted_relations": sum(len(d.relations) for d in result.documents),
        "f1": {t: scores[t]["micro"]["f1"] for t in ("ner", "re", "re_strict")},
    }  # fmt: skip


def _native_bf16(device) -> bool | None:
    """``anchoralign.precision.native_bf16``, or None where the imported library has no such function."""
    try:
        from anchoralign.precision import native_bf16
    except ImportError:
        return None
    return bool(native_bf16(device))


def _cpu_capability() -> str:
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "unknown"


def _train_config(args: dict, baseline: bool):
    """The run config the phase trains with: the file, ``model.backbone=random-tiny`` with --tiny, the overrides."""
    from anchoralign.config import load_config

    path = (args["baseline_config"] or args["config"]) if baseline else args["config"]
    overrides = (["model.backbone=random-tiny"] if args["tiny"] else []) + list(
        (args["baseline_overrides"] if baseline else args["overrides"]) or []
    )
    return load_config(path, overrides), path, overrides


def _train_data(args: dict, cfg) -> tuple[list, list, object, str]:
    """The first K training documents, a few dev documents and the schema (registry APIs old and new share)."""
    k = args["train_docs"] or (TINY_TRAIN_DOCS if args["tiny"] else 320)
    if args["tiny"]:
        tiny = _tiny_helpers()
        return _cycle(tiny.toy_docs(), k), tiny.toy_docs()[:DEV_DOCS], tiny.toy_schema(), "toy documents"

    from anchoralign.data.registry import load_schema, load_split, resolve_data_dir

    data_dir = resolve_data_dir(args["data_dir"])
    dataset = args["dataset"]
    train_split = args["train_split"] or getattr(cfg.train, "train_split", None) or "train"
    train_docs = load_split(dataset, train_split, data_dir).documents[:k]
    dev_docs: list = []
    for split in (getattr(cfg.train, "dev_split", None), "dev", args["test_split"], "test"):
        if not split:
            continue
        try:
            dev_docs = load_split(dataset, split, data_dir).documents[:DEV_DOCS]
        except Exception:  # noqa: BLE001 - a dataset without that split: try the next
            continue
        if dev_docs:
            break
    return train_docs, dev_docs, load_schema(dataset, data_dir), f"{dataset}/{train_split}"


def _set_if_present(section, **values) -> dict:
    """Set the fields ``section`` has (an older config may lack some); returns what was set."""
    done = {}
    for name, value in values.items():
        if hasattr(section, name):
            setattr(section, name, value)
            done[name] = value
    return done


def bench_train(settings: dict, args: dict, device_name: str) -> dict:
    """Examples/s of the library's own ``train()`` over one epoch on the first K training documents: K divided
    by the epoch-1 record's ``train_seconds`` in the run's metrics.jsonl (the epoch's batches, before any dev
    evaluation or checkpoint)."""
    import inspect

    import anchoralign
    from anchoralign.train import train

    cfg, cfg_path, overrides = _train_config(args, settings["baseline"])
    tc = cfg.train
    set_fields = _set_if_present(tc, max_minutes=0.0, device=device_name, eval_from_epoch=10**6)
    if args["threads"]:
        set_fields |= _set_if_present(tc, threads=args["threads"])
    if hasattr(tc, "precision"):
        tc.precision = settings["precision"]
        set_fields["precision"] = settings["precision"]
    elif hasattr(tc, "bf16"):  # older configs: a bf16 switch
        tc.bf16 = settings["precision"] == "bf16"
        set_fields["bf16"] = tc.bf16
    params = inspect.signature(train).parameters
    kwargs: dict = {}
    if "progress" in params:
        kwargs["progress"] = False
    # the config's schedule, cut after epoch 1 (no dev evaluation: eval_from_epoch is past it)
    if "stop_after_epoch" in params:
        tc.epochs = max(2, tc.epochs)
        kwargs["stop_after_epoch"] = 1
    else:  # one-epoch schedule: train() evaluates the dev documents at its last epoch, after train_seconds
        tc.epochs = 1
    set_fields["epochs"] = tc.epochs

    train_docs, dev_docs, schema, data = _train_data(args, cfg)
    rss_after_load = peak_rss_mib()
    with tempfile.TemporaryDirectory(prefix="bench_train_") as out:
        start = time.perf_counter()
        train(cfg, train_docs, dev_docs, schema, out, **kwargs)
        call_seconds = time.perf_counter() - start
        records = [json.loads(line) for line in Path(out, "metrics.jsonl").read_text(encoding="utf-8").splitlines()
                   if line.strip()]  # fmt: skip
    record = next((r for r in records if r.get("epoch") == 1), records[0] if records else {})
    seconds = record.get("train_seconds")
    if not seconds:
        raise RuntimeError(f"metrics.jsonl has no usable train_seconds for epoch 1: {record}")
    batch_size = getattr(tc, "batch_size", None)
    return {
        "examples_per_s": len(train_docs) / seconds, "seconds": seconds, "examples": len(train_docs),
        "batch_size": batch_size, "optimizer_steps": math.ceil(len(train_docs) / batch_size) if batch_size else None,
        "train_call_seconds": call_seconds, "rss_after_load_mib": rss_after_load, "data": data,
        "dev_docs": len(dev_docs), "config": str(cfg_path), "overrides": overrides, "set_by_benchmark": set_fields,
        "epoch_record": record, "precision_used": record.get("precision", settings["precision"]),
        "backbone": getattr(cfg.model, "backbone", None),
        "anchoralign_file": str(Path(anchoralign.__file__).resolve()),
        "anchoralign_version": getattr(anchoralign, "__version__", None),
    }  # fmt: skip


def run_phase(name: str, args: dict) -> dict:
    """Load, measure one phase, and report its figures with this process's peak RSS."""
    import logging

    import torch

    logging.basicConfig(level=logging.WARNING, format="  [%(name)s] %(levelname)s: %(message)s")
    if args["threads"]:
        torch.set_num_threads(args["threads"])
    device = torch.device(
        args["device"] if args["device"] != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    kind, settings = PHASES[name]
    common = {"cpu_capability": _cpu_capability(), "native_bf16": _native_bf16(device), "device": str(device),
              "torch_version": torch.__version__, "torch_threads": torch.get_num_threads()}  # fmt: skip
    if kind == "train":
        if settings["precision"] == "bf16" and not common["native_bf16"]:
            what = f"CPU capability {common['cpu_capability']}" if device.type == "cpu" else str(device)
            return {**common, "skipped": f"no native bf16 ({what})"}
        out = bench_train(settings, args, device.type)
    else:
        start = time.perf_counter()
        model, docs = _extraction_data(args, device)
        load_seconds = time.perf_counter() - start
        rss_after_load = peak_rss_mib()
        if kind == "encoder":
            out = bench_encoder(model, docs, device, args, settings.get("batching", "fixed"))
        else:
            out = bench_extract(model, docs, device, settings, args)
        out.update(rss_after_load_mib=rss_after_load, load_seconds=load_seconds, model_kind=model.kind,
                   parameters=sum(p.numel() for p in model.parameters()))  # fmt: skip
    out.update(common, peak_rss_mib=peak_rss_mib(), torch_threads=torch.get_num_threads())
    if device.type == "cuda":
        out["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


# -- the parent: one child per phase, then the table ------------------------------------------------------


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _meta(args: argparse.Namespace) -> dict:
    model: dict = (
        {"dir": None, "tiny": True} if args.tiny else {"dir": args.model and str(Path(args.model).resolve())}
    )
    if args.model:
        cfg = json.loads((Path(args.model) / "model_config.json").read_text(encoding="utf-8"))
        model.update(
            kind=cfg.get("kind"),
            backbone=cfg.get("model", {}).get("backbone"),
            target_format=cfg.get("model", {}).get("target_format"),
        )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "isa_env": {k: os.environ[k] for k in ISA_ENV if k in os.environ},
        "threads_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
        "omp_wait_policy": "PASSIVE" if args.omp_passive else os.environ.get("OMP_WAIT_POLICY", "unset (OpenMP default)"),
        "train_repeats": args.train_repeats,
        "rounds": args.rounds,
        "torch_version": _version("torch"), "transformers_version": _version("transformers"),
        "anchoralign_version": _version("anchoralign"),
        "model": model, "dataset": "toy documents (tests/tiny.py)" if args.tiny else args.dataset,
        "n": args.n, "repeats": args.repeats, "train_docs": args.train_docs or (TINY_TRAIN_DOCS if args.tiny else 320),
        "config": args.config, "overrides": args.overrides, "decode_precision": args.decode_precision or "fp32",
        "baseline": {"src": args.baseline_src, "config": args.baseline_config or args.config,
                     "overrides": args.baseline_overrides} if args.baseline_src else None,
        "threads_requested": args.threads or "torch default", "device_requested": args.device,
        "parent_peak_rss_mib": peak_rss_mib(),
    }  # fmt: skip


def _ratio(phases: dict, num: str, den: str, key: str) -> float | None:
    a, b = phases.get(num, {}).get(key), phases.get(den, {}).get(key)
    return a / b if a and b else None


def _row(label: str, p: dict) -> tuple[str, ...]:
    if "error" in p:
        return (label, f"FAILED: {p['error']}", "", "", "", "", "")
    if "skipped" in p:
        return (label, f"skipped: {p['skipped']}", "", "", "", "", "")
    if "examples_per_s" in p:
        thr, mal, f1 = f"{p['examples_per_s']:.2f} examples/s", "", ""
    elif "f1" in p:
        thr, mal, f1 = (
            f"{p['sentences_per_s']:.2f} sentences/s",
            str(p["malformed"]),
            f"{p['f1']['re_strict']:.4f}",
        )
    else:
        thr, mal, f1 = f"{p['sentences_per_s']:.2f} sentences/s", "", ""
    return (
        label,
        thr,
        f"{p['seconds']:.2f}",
        f"{p['peak_rss_mib']:.0f}",
        f"{p['rss_after_load_mib']:.0f}",
        mal,
        f1,
    )


def _with(overrides: list) -> str:
    return f" with --set {' '.join(overrides)}" if overrides else ""


def _table(meta: dict, phases: dict, ratios: dict) -> str:
    m = meta["machine"]
    first = next((p for p in phases.values() if "cpu_capability" in p), {})
    model = "tiny random model (tests/tiny.py)" if meta["model"].get("tiny") else str(meta["model"]["dir"])
    if meta["model"].get("backbone"):
        model += f" ({meta['model']['kind']}, backbone {meta['model']['backbone']})"
    isa = ", ".join(f"{k}={v}" for k, v in meta["isa_env"].items()) or f"none of {', '.join(ISA_ENV)} set"
    train = next((p for p in phases.values() if "examples" in p), {})
    lines = [
        f"AnchorAlign engine benchmark, {meta['date']}",
        f"machine: {m['platform']} ({m['processor']}), {m['cpu_count']} CPUs, python {m['python']}",
        f"CPU capability {first.get('cpu_capability', '?')} ({isa}); native bf16: {first.get('native_bf16', '?')}",
        f"torch {meta['torch_version']}, torch threads {first.get('torch_threads', '?')}"
        + "".join(f", {k}={v}" for k, v in meta["threads_env"].items())
        + f", device {first.get('device', '?')}",
        f"extraction: model {model}; first N={meta['n']} test sentences of {meta['dataset']}; decode precision "
        f"{meta['decode_precision']}",
        f"training: train() for one epoch on the first {train.get('examples', meta['train_docs'])} training "
        f"documents, batch {train.get('batch_size', '?')}, backbone {train.get('backbone', '?')}; examples/s from "
        "train_seconds of epoch 1 in metrics.jsonl (0.1 s resolution)",
        f"  config {meta['config']}"
        + _with(phases.get("train_fp32", {}).get("overrides", meta["overrides"])),
    ]
    ran = {PHASES[name][0] for name in phases}
    lines = [x for x in lines if not (x.startswith("extraction:") and ran.isdisjoint({"encoder", "extract"}))]
    lines = [x for x in lines if not (x.startswith(("training:", "  config")) and "train" not in ran)]
    if meta["baseline"]:
        b = meta["baseline"]
        base = phases.get("train_fp32_baseline", {})
        lines.append(
            f"  baseline: src {b['src']}, config {b['config']}" + _with(base.get("overrides", b["overrides"]))
        )
        if base.get("anchoralign_file") and not base["anchoralign_file"].startswith(b["src"]):
            lines.append(
                f"  WARNING: the baseline phase imported {base['anchoralign_file']}, not the baseline src"
            )
    lines.append("")
    head = ("phase", "throughput", "time s", "peak RSS MiB", "RSS after load", "malformed", "RE+ F1")
    rows = [head] + [_row(label, phases[name]) for name, label in LABELS.items() if name in phases]
    widths = [
        max(len(r[i]) for r in rows if not r[1].startswith(("FAILED", "skipped"))) for i in range(len(head))
    ]
    for r in rows:
        if r[1].startswith(("FAILED", "skipped")):
            lines.append(f"{r[0].ljust(widths[0])}  {r[1]}")
            continue
        cells = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        lines.append("  ".join(cells))
    lines += ["", "ratios (throughput):"]
    for key, (*_, text) in RATIOS.items():
        value = ratios.get(key)
        each = meta.get("ratios_by_round", {}).get(key)
        rounds = f"   rounds: {', '.join(f'{x:.3f}' for x in each if x is not None)}" if each else ""
        lines.append(f"  {text:<56} {'n/a' if value is None else f'{value:.3f}'}{rounds}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="a model directory written by `anchoralign train` (the extraction phases)")
    p.add_argument("--tiny", action="store_true", help="tiny random models and toy documents (smoke run)")
    p.add_argument("--dataset", default="conll04", help="registered dataset (default: conll04)")
    p.add_argument("--data-dir", help="benchmark root (default: $ANCHORALIGN_DATA, else ./data)")
    p.add_argument(
        "--train-split", help="split the training phases train on (default: the config's train.train_split)"
    )
    p.add_argument("--test-split", help="split whose first N sentences are extracted (default: test)")
    p.add_argument("--n", type=int, default=200, help="sentences to extract (default: 200)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed passes of each encoder and extraction phase; the fastest counts (default: 3)")
    p.add_argument(
        "--decode-batch-size", type=int, help="extraction batch size (default: the model's config)"
    )
    p.add_argument(
        "--encoder-batch-size", type=int, default=32, help="batch size of the bare encoder pass (default: 32)"
    )
    p.add_argument(
        "--decode-precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="decode.precision of the extraction phases (default: fp32, for comparability)",
    )
    p.add_argument(
        "--train-docs",
        type=int,
        help=f"training documents for one epoch (default: 320; --tiny: {TINY_TRAIN_DOCS})",
    )
    p.add_argument(
        "--config",
        default=str(REPO / "configs" / "conll04-cpu.yaml"),
        help="run config of the training phases (default: configs/conll04-cpu.yaml)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field of --config (repeatable)",
    )
    p.add_argument(
        "--baseline-src", help="an older checkout's src directory: adds the train_fp32_baseline phase"
    )
    p.add_argument("--baseline-config", help="config for the baseline phase (default: --config)")
    p.add_argument(
        "--baseline-set",
        dest="baseline_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field of --baseline-config (repeatable)",
    )
    p.add_argument("--train-repeats", type=int, default=1,
                   help="rounds of the training phases, interleaved; each counts its fastest (default 1)")
    p.add_argument("--rounds", type=int, default=1,
                   help="rounds of the encoder and extraction phases, interleaved (A B A B ...), each a fresh "
                        "process of --repeats passes; each phase counts its fastest round, and the JSON holds "
                        "every round and each round's ratios (default 1)")
    p.add_argument("--omp-passive", action="store_true",
                   help="run the phases with OMP_WAIT_POLICY=PASSIVE (default: the environment's own policy)")
    p.add_argument("--threads", type=int, help="torch threads in each phase (default: torch's default)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="default: cpu")
    p.add_argument("--seed", type=int, default=13, help="seed of the tiny extraction model")
    p.add_argument("--phases", help="comma-separated subset of: " + ", ".join(PHASES)
                   + " (default: all; the baseline with --baseline-src)")  # fmt: skip
    p.add_argument("--json", dest="json_out", help="write every figure to this JSON file")
    p.add_argument("--phase", choices=list(PHASES), help=argparse.SUPPRESS)  # internal: run one phase
    p.add_argument("--phase-out", help=argparse.SUPPRESS)
    p.add_argument("--phase-args", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.phase:
        settings = (
            json.loads(Path(args.phase_args).read_text(encoding="utf-8")) if args.phase_args else vars(args)
        )
        try:
            result, status = run_phase(args.phase, settings), 0
        except Exception as e:  # noqa: BLE001 - the parent's table names the failure
            traceback.print_exc()
            result, status = {"error": f"{type(e).__name__}: {e}"}, 1
        text = json.dumps(result, indent=1, default=str)
        if args.phase_out:
            Path(args.phase_out).write_text(text, encoding="utf-8")
        else:
            print(text)
        return status

    if args.phases:
        wanted = [x.strip() for x in args.phases.split(",") if x.strip()]
    else:
        wanted = DEFAULT_PHASES + (["train_fp32_baseline"] if args.baseline_src else [])
    unknown = [x for x in wanted if x not in PHASES]
    if unknown:
        p.error(f"unknown phase(s) {', '.join(unknown)}; phases: {', '.join(PHASES)}")
    if args.train_repeats < 1:
        p.error(f"--train-repeats must be >= 1, got {args.train_repeats}")
    if args.rounds < 1:
        p.error(f"--rounds must be >= 1, got {args.rounds}")
    if "train_fp32_baseline" in wanted and not args.baseline_src:
        p.error("train_fp32_baseline needs --baseline-src")
    if args.baseline_src:
        args.baseline_src = str(Path(args.baseline_src).resolve())
        if not (Path(args.baseline_src) / "anchoralign").is_dir():
            p.error(
                f"--baseline-src {args.baseline_src} holds no anchoralign package (give the checkout's src)"
            )
    if args.model and args.tiny:
        p.error("--model and --tiny exclude each other")
    if not args.model and not args.tiny and any(PHASES[w][0] != "train" for w in wanted):
        p.error("the extraction phases need --model (or --tiny); --phases train_fp32,... runs training alone")
    # bad input is one line before any phase starts (argparse's own: the parent imports no library, see above)
    if args.model:
        try:
            json.loads((Path(args.model) / "model_config.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            p.error(f"--model {args.model}: not a model directory (no model_config.json)")
        except (OSError, ValueError) as e:
            p.error(f"--model {args.model}: cannot read model_config.json: {e}")
    if args.data_dir and not Path(args.data_dir).is_dir():
        p.error(f"--data-dir {args.data_dir}: no such directory")
    training = any(PHASES[w][0] == "train" for w in wanted)
    for opt in ("config", "baseline_config"):
        if getattr(args, opt):
            if training and not Path(getattr(args, opt)).is_file():
                p.error(f"--{opt.replace('_', '-')} {getattr(args, opt)}: no such file")
            setattr(args, opt, str(Path(getattr(args, opt)).resolve()))

    env = dict(os.environ)
    if args.omp_passive:  # idle OpenMP threads sleep instead of spinning (costs the many small steps of decoding)
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    meta = _meta(args)
    phases: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_engine_") as tmp:
        settings = os.path.join(tmp, "args.json")
        Path(settings).write_text(json.dumps(vars(args)), encoding="utf-8")
        # training phases: --train-repeats rounds, interleaved (A B A B ...), so that a slow spell of a shared
        # machine falls on both sides of a ratio; each keeps its fastest round
        train_names = [n for n in wanted if PHASES[n][0] == "train"]
        order = [n for n in wanted if n not in train_names] * args.rounds + train_names * args.train_repeats
        rounds: dict[str, list[dict]] = {}
        for name in order:
            out = os.path.join(tmp, f"{name}.json")
            print(f"[{name}] ...", file=sys.stderr, flush=True)
            child_env = env
            if PHASES[name][1].get("baseline"):
                child_env = {
                    **env,
                    "PYTHONPATH": os.pathsep.join(
                        [args.baseline_src] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
                    ),
                }
            argv = [sys.executable, str(Path(__file__).resolve()), "--phase", name, "--phase-out", out,
                    "--phase-args", settings]  # fmt: skip
            start = time.perf_counter()
            proc = subprocess.run(argv, env=child_env, check=False)
            if os.path.exists(out):
                result = json.loads(Path(out).read_text(encoding="utf-8"))
                os.remove(out)
            else:
                result = {"error": f"exit status {proc.returncode}"}
            result["process_seconds"] = time.perf_counter() - start
            rounds.setdefault(name, []).append(result)
        for name, results in rounds.items():
            key = "examples_per_s" if name in train_names else "sentences_per_s"
            ok = [r for r in results if key in r]
            phases[name] = dict(max(ok, key=lambda r: r[key]) if ok else results[0])
            if len(results) > 1:
                phases[name][f"{key}_each"] = [r.get(key) for r in results]
    ratios = {k: _ratio(phases, *v[:3]) for k, v in RATIOS.items()}
    if args.rounds > 1:  # the ratios of each round's own phases (a machine's slow spell moves both sides)
        by_round = {}
        for k, (num, den, key, _) in RATIOS.items():
            if num in rounds and den in rounds and key == "sentences_per_s":
                by_round[k] = [_ratio({num: a, den: b}, num, den, key)
                               for a, b in zip(rounds[num], rounds[den], strict=True)]
        meta["ratios_by_round"] = by_round
    print(_table(meta, phases, ratios), flush=True)
    if args.json_out:
        report = {"meta": meta, "phases": phases, "ratios": ratios}
        Path(args.json_out).write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json_out}")
    return 1 if any("error" in v for v in phases.values()) else 0


if __name__ == "__main__":  # not run_main: a baseline phase runs with an older anchoralign on its path
    raise SystemExit(main())
