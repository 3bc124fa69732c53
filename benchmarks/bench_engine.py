"""Engine benchmark: training and extraction throughput and peak memory of one model, side by side.

    .venv/bin/python benchmarks/bench_engine.py --model DIR --dataset conll04 --data-dir ../shared/data \\
        [--n 200] [--json OUT]
    .venv/bin/python benchmarks/bench_engine.py --tiny        # tiny random model built in code: a smoke run

Each phase runs in a fresh process (this script re-invoked with ``--phase NAME``), so each peak resident set
size (``getrusage(RUSAGE_SELF).ru_maxrss``) belongs to that phase alone; the parent imports neither torch nor
the library, so the little it holds cannot leak into a child's peak. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WARMUP_STEPS = 2
WARMUP_SENTENCES = 8

# phase name -> (kind, settings)
PHASES: dict[str, tuple[str, dict]] = {
    "train_fp32": ("train", {"bf16": False}),
    "train_bf16": ("train", {"bf16": True}),
    "extract_greedy_unconstrained": ("extract", {"constrained": False, "num_beams": 1}),
    "extract_greedy_constrained": ("extract", {"constrained": True, "num_beams": 1}),
    "extract_beam3_constrained": ("extract", {"constrained": True, "num_beams": 3}),
}
LABELS = {
    "train_fp32": "train, fp32",
    "train_bf16": "train, bf16 autocast",
    "extract_greedy_unconstrained": "extract, greedy, unconstrained",
    "extract_greedy_constrained": "extract, greedy, constrained",
    "extract_beam3_constrained": "extract, beam 3, constrained",
}
# ratio name -> (numerator phase, denominator phase, throughput key)
RATIOS = {
    "train_bf16_over_fp32": ("train_bf16", "train_fp32", "examples_per_s"),
    "extract_constrained_over_unconstrained": (
        "extract_greedy_constrained", "extract_greedy_unconstrained", "sentences_per_s"),
    "extract_beam3_over_greedy_constrained": (
        "extract_beam3_constrained", "extract_greedy_constrained", "sentences_per_s"),
}  # fmt: skip


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


# -- inside a phase process -----------------------------------------------------------------------------


def _cycle(docs: list, n: int) -> list:
    """``n`` documents, repeating ``docs`` when there are fewer (each copy with its own id)."""
    from dataclasses import replace

    return [replace(docs[i % len(docs)], id=f"{docs[i % len(docs)].id}#{i}") for i in range(n)]


def _load(args: argparse.Namespace, device):
    """The model on ``device``, the training pool and the first ``n`` extraction documents."""
    need = (args.steps + WARMUP_STEPS) * args.batch_size
    if args.tiny:
        import torch

        sys.path.insert(0, str(REPO))
        from tests.tiny import tiny_model, toy_docs

        from anchoralign.anchor_heads import AnchorConfig

        torch.manual_seed(args.seed)
        model = tiny_model(None, anchor=AnchorConfig())  # full AnchorAlign: scorer and alignment heads
        return model.to(device), _cycle(toy_docs(), need), _cycle(toy_docs(), args.n)

    from anchoralign.data.registry import get_spec, load_split, resolve_data_dir
    from anchoralign.model import load_model

    model = load_model(args.model, device)
    spec = get_spec(args.dataset)
    data_dir = resolve_data_dir(args.data_dir)
    train_split = args.train_split or spec.train_split
    test_split = args.test_split or ("test" if "test" in spec.files else train_split.replace("train", "test"))
    train_docs = load_split(args.dataset, train_split, data_dir).documents
    test_docs = load_split(args.dataset, test_split, data_dir).documents[: args.n]
    return model, _cycle(train_docs, min(need, len(train_docs))), test_docs


def _known_types(docs: list, schema) -> tuple[list, int]:
    """``docs`` without annotations whose types the model's schema lacks (targets need a label for each)."""
    from anchoralign.types import Relation

    out, dropped = [], 0
    for d in docs:
        keep = [i for i, e in enumerate(d.entities) if e.type in schema.entity_types]
        new = {old: k for k, old in enumerate(keep)}
        rels = [
            Relation(new[r.head], new[r.tail], r.type)
            for r in d.relations
            if r.head in new and r.tail in new and r.type in schema.relation_types
        ]
        dropped += len(d.entities) - len(keep) + len(d.relations) - len(rels)
        out.append(d.with_annotations([d.entities[i] for i in keep], rels))
    return out, dropped


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_train(model, docs: list, device, bf16: bool, args: argparse.Namespace) -> dict:
    """Examples/s of forward + backward + clip + AdamW step, bs ``args.batch_size``, after the warm-up steps."""
    import torch

    from anchoralign.batching import collate, make_examples

    need = (args.steps + WARMUP_STEPS) * args.batch_size
    docs, dropped = _known_types(_cycle(docs, need), model.schema)
    random.Random(args.seed).shuffle(docs)
    examples = make_examples(model, docs)
    # As the training loop does: batches of similar source length, in shuffled order (same batches per phase).
    examples.sort(key=lambda e: len(e.source.ids))
    batches = [examples[i : i + args.batch_size] for i in range(0, need, args.batch_size)]
    random.Random(args.seed + 1).shuffle(batches)
    tensors = [collate(model, b) for b in batches]
    pieces = sum(len(e.source.ids) for e in examples) / len(examples)
    targets = sum(len(e.target or []) for e in examples) / len(examples)

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step(batch: dict) -> float:
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(batch)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    for b in tensors[:WARMUP_STEPS]:
        step(b)
    _sync(device)
    start = time.perf_counter()
    losses = [step(b) for b in tensors[WARMUP_STEPS:]]
    _sync(device)
    seconds = time.perf_counter() - start
    return {
        "examples_per_s": args.steps * args.batch_size / seconds, "seconds": seconds, "steps": args.steps,
        "warmup_steps": WARMUP_STEPS, "batch_size": args.batch_size, "mean_source_pieces": pieces,
        "mean_target_ids": targets, "last_loss": losses[-1] if losses else None,
        "annotations_of_unknown_types_dropped": dropped,
    }  # fmt: skip


def _decode_config(args: argparse.Namespace, constrained: bool, num_beams: int):
    """The model's saved decode settings (batch size, length cap), with this phase's search."""
    from dataclasses import fields, replace

    from anchoralign.decode import DecodeConfig

    saved: dict = {}
    if args.model:
        cfg_path = Path(args.model) / "model_config.json"
        saved = json.loads(cfg_path.read_text(encoding="utf-8")).get("run", {}).get("decode", {})
    known = {f.name for f in fields(DecodeConfig)}
    cfg = DecodeConfig(**{k: v for k, v in saved.items() if k in known})
    cfg = replace(cfg, constrained=constrained, num_beams=num_beams)
    if args.decode_batch_size:
        cfg = replace(cfg, batch_size=args.decode_batch_size)
    return cfg


def bench_extract(
    model, docs: list, device, constrained: bool, num_beams: int, args: argparse.Namespace
) -> dict:
    """Sentences/s of ``decode.predict`` on ``docs`` (after a warm-up on a few), with their scores."""
    from dataclasses import asdict

    from anchoralign.decode import predict
    from anchoralign.metrics import score_documents

    cfg = _decode_config(args, constrained, num_beams)
    predict(model, docs[:WARMUP_SENTENCES], cfg)
    _sync(device)
    start = time.perf_counter()
    result = predict(model, docs, cfg)
    _sync(device)
    seconds = time.perf_counter() - start
    scores = score_documents(docs, result.documents, model.schema)
    return {
        "sentences_per_s": len(docs) / seconds, "seconds": seconds, "n": len(docs),
        "decode": asdict(cfg),
        "malformed": result.malformed, "malformed_by_kind": dict(sorted(result.errors.items())),
        "constraint_rejections": result.rejected,
        "predicted_entities": sum(len(d.entities) for d in result.documents),
        "predicted_relations": sum(len(d.relations) for d in result.documents),
        "f1": {t: scores[t]["micro"]["f1"] for t in ("ner", "re", "re_strict")},
    }  # fmt: skip


def run_phase(name: str, args: argparse.Namespace) -> dict:
    """Load, measure one phase, and report its figures with this process's peak RSS."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    start = time.perf_counter()
    model, train_docs, test_docs = _load(args, device)
    load_seconds = time.perf_counter() - start
    rss_after_load = peak_rss_mib()
    kind, settings = PHASES[name]
    if kind == "train":
        out = bench_train(model, train_docs, device, settings["bf16"], args)
    else:
        out = bench_extract(model, test_docs, device, settings["constrained"], settings["num_beams"], args)
    out.update(
        peak_rss_mib=peak_rss_mib(), rss_after_load_mib=rss_after_load, load_seconds=load_seconds,
        torch_threads=torch.get_num_threads(), torch_version=torch.__version__, device=str(device),
        model_kind=model.kind, parameters=sum(p.numel() for p in model.parameters()),
    )  # fmt: skip
    if device.type == "cuda":
        out["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


# -- the parent: one child per phase, then the table ------------------------------------------------------


def _child_argv(args: argparse.Namespace, phase: str, out: str) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--phase-out", out]
    argv += ["--tiny"] if args.tiny else ["--model", args.model]
    for opt in ("dataset", "data_dir", "train_split", "test_split", "n", "steps", "batch_size", "threads",
                "device", "seed", "decode_batch_size"):  # fmt: skip
        value = getattr(args, opt)
        if value is not None:
            argv += [f"--{opt.replace('_', '-')}", str(value)]
    return argv


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _meta(args: argparse.Namespace) -> dict:
    model: dict = {"dir": None, "tiny": True} if args.tiny else {"dir": str(Path(args.model).resolve())}
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
        "torch_version": _version("torch"), "transformers_version": _version("transformers"),
        "anchoralign_version": _version("anchoralign"),
        "model": model, "dataset": "toy documents (tests/tiny.py)" if args.tiny else args.dataset,
        "n": args.n, "train_steps": args.steps, "warmup_steps": WARMUP_STEPS, "batch_size": args.batch_size,
        "threads_requested": args.threads or "torch default", "device_requested": args.device,
        "parent_peak_rss_mib": peak_rss_mib(),
    }  # fmt: skip


def _ratio(phases: dict, num: str, den: str, key: str) -> float | None:
    a, b = phases.get(num, {}).get(key), phases.get(den, {}).get(key)
    return a / b if a and b else None


def _table(meta: dict, phases: dict, ratios: dict) -> str:
    m = meta["machine"]
    first = next((p for p in phases.values() if "torch_threads" in p), {})
    model = "tiny random model (tests/tiny.py)" if meta["model"].get("tiny") else meta["model"]["dir"]
    if meta["model"].get("backbone"):
        model += f" ({meta['model']['kind']}, backbone {meta['model']['backbone']})"
    lines = [
        f"AnchorAlign engine benchmark, {meta['date']}",
        f"machine: {m['platform']} ({m['processor']}), {m['cpu_count']} CPUs, python {m['python']}",
        f"torch {meta['torch_version']}, torch threads {first.get('torch_threads', '?')}, device {first.get('device', '?')}",
        f"model: {model}",
        f"data: {meta['dataset']}; training {meta['train_steps']} steps x batch {meta['batch_size']} after "
        f"{meta['warmup_steps']} warm-up steps; extraction on the first N={meta['n']} test sentences",
        "",
    ]
    head = ("phase", "throughput", "time s", "peak RSS MiB", "RSS after load", "malformed", "RE+ F1")
    rows = [head]
    for name, label in LABELS.items():
        p = phases.get(name)
        if p is None:
            continue
        if "error" in p:
            rows.append((label, f"FAILED: {p['error']}", "", "", "", "", ""))
            continue
        if "examples_per_s" in p:
            thr, mal, f1 = f"{p['examples_per_s']:.2f} examples/s", "", ""
        else:
            thr, mal, f1 = (
                f"{p['sentences_per_s']:.2f} sentences/s",
                str(p["malformed"]),
                f"{p['f1']['re_strict']:.4f}",
            )
        rows.append((label, thr, f"{p['seconds']:.2f}", f"{p['peak_rss_mib']:.0f}", f"{p['rss_after_load_mib']:.0f}",
                     mal, f1))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    lines += ["", "ratios (throughput):"]
    names = {
        "train_bf16_over_fp32": "training, bf16 autocast / fp32",
        "extract_constrained_over_unconstrained": "extraction greedy, constrained / unconstrained",
        "extract_beam3_over_greedy_constrained": "extraction constrained, beam 3 / greedy",
    }
    for key, text in names.items():
        value = ratios.get(key)
        lines.append(f"  {text:<48} {'n/a' if value is None else f'{value:.2f}'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="a model directory written by `anchoralign train`")
    src.add_argument("--tiny", action="store_true", help="a tiny random model built in code (smoke run)")
    p.add_argument("--dataset", default="conll04", help="registered dataset (default: conll04)")
    p.add_argument("--data-dir", help="benchmark root (default: $ANCHORALIGN_DATA, else ./data)")
    p.add_argument(
        "--train-split", help="split that feeds the training phases (default: the dataset's train)"
    )
    p.add_argument("--test-split", help="split whose first N sentences are extracted (default: test)")
    p.add_argument("--n", type=int, default=200, help="sentences to extract (default: 200)")
    p.add_argument("--steps", type=int, default=10, help="timed training steps (default: 10)")
    p.add_argument("--batch-size", type=int, default=16, help="training batch size (default: 16)")
    p.add_argument(
        "--decode-batch-size", type=int, help="extraction batch size (default: the model's config)"
    )
    p.add_argument("--threads", type=int, help="torch threads in each phase (default: torch's default)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="default: cpu")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument(
        "--phases", default=",".join(PHASES), help="comma-separated subset of: " + ", ".join(PHASES)
    )
    p.add_argument("--json", dest="json_out", help="write every figure to this JSON file")
    p.add_argument("--phase", choices=list(PHASES), help=argparse.SUPPRESS)  # internal: run one phase
    p.add_argument("--phase-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.phase:
        result = run_phase(args.phase, args)
        text = json.dumps(result, indent=1)
        if args.phase_out:
            Path(args.phase_out).write_text(text, encoding="utf-8")
        else:
            print(text)
        return 0

    wanted = [x.strip() for x in args.phases.split(",") if x.strip()]
    unknown = [x for x in wanted if x not in PHASES]
    if unknown:
        p.error(f"unknown phase(s) {', '.join(unknown)}; phases: {', '.join(PHASES)}")
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}  # idle OpenMP threads sleep instead of spinning
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    meta = _meta(args)
    phases: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_engine_") as tmp:
        for name in wanted:
            out = os.path.join(tmp, f"{name}.json")
            print(f"[{name}] ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            proc = subprocess.run(_child_argv(args, name, out), env=env, check=False)
            if proc.returncode != 0 or not os.path.exists(out):
                phases[name] = {"error": f"exit status {proc.returncode}"}
                continue
            phases[name] = json.loads(Path(out).read_text(encoding="utf-8"))
            phases[name]["process_seconds"] = time.perf_counter() - start
    ratios = {k: _ratio(phases, *v) for k, v in RATIOS.items()}
    print(_table(meta, phases, ratios), flush=True)
    if args.json_out:
        report = {"meta": meta, "phases": phases, "ratios": ratios}
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json_out}")
    return 1 if any("error" in v for v in phases.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
