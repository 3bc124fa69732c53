"""The ablation runner (DESIGN.md §6): every variant trained and tested with the same data, budget and seeds.

Variants are config overrides on one base config, listed in ``VARIANTS``:

- ``full``: anchor-grouped targets, anchor scorer, alignment loss, anchor-guided constraint;
- ``no-anchor-selection``: relations grouped by their head entity; no scorer, no anchor candidates;
- ``no-alignment``: ``λ_align = 0`` (the alignment heads are not built);
- ``no-constraint``: free generation, parsed by the same parser, malformed pieces counted;
- ``flat``: the flat-triple baseline (REBEL/TANL style) with the engine's span grammar only.

Each run writes ``runs/<variant>-s<seed>/``: the best-dev model (deleted unless ``keep_models``), the test
predictions (``test_predictions.json``, SpERT JSON that ``anchoralign score`` reads) and ``test_metrics.json``,
whose summary also scores the test sentences where relations share an entity apart from the rest
(``by_sharing``: where anchors have work to do). A run whose ``test_metrics.json`` exists is not repeated, so
an interrupted experiment continues where it stopped.
"""

from __future__ import annotations

import copy
import json
import logging
import platform
import shutil
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from .anchors import shares_an_entity, sharing_stats
from .benchmark import code_commit
from .config import RunConfig, apply_overrides
from .data.registry import dataset_protocol
from .metrics import score_documents
from .protocols import Protocol
from .schema import Schema
from .types import Document

__all__ = ["VARIANTS", "by_sharing", "run_experiment", "summary_table", "variant_config"]

log = logging.getLogger(__name__)

VARIANTS: dict[str, list[str]] = {
    "full": ["model.target_format=anchor", "model.grouping=anchor", "anchor.scorer=true", "anchor.alignment=true",
             "decode.constrained=true"],
    "no-anchor-selection": ["model.target_format=anchor", "model.grouping=head", "anchor.scorer=false",
                            "anchor.alignment=true", "decode.constrained=true", "decode.anchor_candidates=false"],
    "no-alignment": ["model.target_format=anchor", "model.grouping=anchor", "anchor.scorer=true",
                     "anchor.alignment=false", "anchor.lambda_align=0", "decode.constrained=true"],
    "no-constraint": ["model.target_format=anchor", "model.grouping=anchor", "anchor.scorer=true",
                      "anchor.alignment=true", "decode.constrained=false"],
    # full, with the anchor cover's ties going to the relation head (docs/method.md §1); not a paper variant
    "full-head-ties": ["model.target_format=anchor", "model.grouping=anchor-head", "anchor.scorer=true",
                       "anchor.alignment=true", "decode.constrained=true"],
    "flat": ["model.target_format=flat", "model.grouping=anchor", "anchor.scorer=false", "anchor.alignment=false",
             "decode.constrained=true", "decode.signatures=false", "decode.consistent_types=false",
             "decode.anchor_candidates=false"],
}
TASKS = ("ner", "re", "re_strict")


def variant_config(base: RunConfig, variant: str, seed: int) -> RunConfig:
    """``base`` with the variant's overrides and the seed."""
    if variant not in VARIANTS:
        from .errors import InputError

        raise InputError(f"unknown variant {variant!r}; variants: {', '.join(VARIANTS)}")
    cfg = copy.deepcopy(base)
    apply_overrides(cfg, VARIANTS[variant] + [f"train.seed={seed}"])
    cfg.validate()
    return cfg


def run_experiment(
    base: RunConfig,
    variants: list[str],
    seeds: list[int],
    train_docs: list[Document],
    dev_docs: list[Document],
    test_docs: list[Document],
    schema: Schema,
    output: str | Path,
    command: str = "",
    build: Callable | None = None,
    keep_models: bool = False,
) -> dict:
    """Train and test every (variant, seed); write ``results.json``, ``results.md`` and ``results.png``."""
    from .evaluation import evaluate_documents
    from .train import train

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        from .errors import InputError

        raise InputError(f"unknown variant {unknown[0]!r}; variants: {', '.join(VARIANTS)}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    # the code this process runs (read once: a commit made while it runs does not change what it imported); a
    # long ablation may be resumed by several processes on different commits, so each run records its own
    code = code_commit()
    results: dict = {
        "command": command,
        "code": code,
        "dataset": base.dataset,
        "config": base.to_dict(),
        "variants_overrides": {v: VARIANTS[v] for v in variants},
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version()},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seeds": seeds,
        # where anchoring has work to do: sentences whose relations share an entity (anchors.sharing_stats)
        "sharing": {"train": sharing_stats(train_docs), "test": sharing_stats(test_docs)},
        "variants": {},
    }
    for variant in variants:
        rows = []
        for seed in seeds:
            cfg = variant_config(base, variant, seed)
            run_dir = _run_dir(out, variant, seed)
            metrics_file = run_dir / "test_metrics.json"
            done = _finished_summary(run_dir)
            if done is not None:
                rows.append(done)
                log.info("%s seed %d: done before, reusing %s", variant, seed, metrics_file)
                continue
            log.info("%s seed %d: training into %s", variant, seed, run_dir)
            resumed = (run_dir / "checkpoint").is_dir()
            t0 = time.time()
            model = build(cfg, schema, train_docs) if build else None
            result = train(cfg, train_docs, dev_docs, schema, run_dir, resume=True, model=model, progress=False)
            train_s = time.time() - t0
            from .model import load_model

            best = load_model(run_dir)
            t1 = time.time()
            protocol = dataset_protocol(cfg.dataset)
            scores, predictions = evaluate_documents(best, test_docs, schema, cfg.decode, protocol=protocol)
            (run_dir / "test_predictions.json").write_text(
                json.dumps([d.to_spert() for d in predictions], ensure_ascii=False) + "\n", encoding="utf-8")
            summary = {"seed": seed, **{t: scores[t]["micro"]["f1"] for t in TASKS},
                       "protocol": scores["protocol"], "main": scores["main"], "figures": scores["figures"],
                       "macro": {t: scores[t]["macro"]["f1"] for t in TASKS},
                       "malformed": scores["malformed"], "best_epoch": result.best_epoch,
                       "epochs_run": result.epochs_run, "schedule_cut": result.schedule_cut,
                       "train_seconds": round(train_s, 1), "test_seconds": round(time.time() - t1, 1),
                       # over every process that trained this run (a resumed run's train_seconds is the last one's)
                       "train_seconds_total": round(result.seconds, 1),
                       # the code that finished the run; a resumed run began on code recorded elsewhere
                       "code": code, "resumed": resumed}
            if "anchor_scorer" in scores:
                summary["anchor_scorer"] = scores["anchor_scorer"]
            summary["by_sharing"] = by_sharing(test_docs, predictions, schema, protocol)
            metrics_file.write_text(json.dumps({"summary": summary, "scores": scores}, indent=2) + "\n")
            shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)
            if not keep_models:
                for f in run_dir.glob("model.safetensors"):
                    f.unlink()
            rows.append(summary)
            log.info("%s seed %d: %s", variant, seed, {t: round(summary[t], 4) for t in TASKS})
            if result.schedule_cut:
                log.warning("%s seed %d: train.max_minutes cut its schedule after epoch %d of %d: this run did not "
                            "get the budget the others had (delete %s and raise train.max_minutes to rerun it)",
                            variant, seed, result.epochs_run, result.epochs_planned, run_dir)
        results["variants"][variant] = rows
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(summary_table(results) + "\n")
    _plot(results, out / "results.png")
    return results


def by_sharing(gold: list[Document], pred: list[Document], schema: Schema | None, protocol: Protocol) -> dict:
    """Test scores on two parts of ``gold``: the sentences where two or more gold relations share an entity
    (``sharing``: the structure an anchor groups) and the others (``rest``). Per part: sentences, gold
    relations, the protocol's main figure and micro F1 of NER, RE and RE+ strict, fractions."""
    parts: dict[str, list[int]] = {"sharing": [], "rest": []}
    for i, doc in enumerate(gold):
        parts["sharing" if shares_an_entity(doc) else "rest"].append(i)
    out = {}
    for name, idx in parts.items():
        g, p = [gold[i] for i in idx], [pred[i] for i in idx]
        if not g:
            out[name] = {"sentences": 0, "relations": 0}
            continue
        scores = score_documents(g, p, schema, symmetric=protocol.symmetric)
        out[name] = {"sentences": len(g), "relations": sum(len(d.relations) for d in g),
                     "main": protocol.score(g, p, schema)["main"],
                     **{t: scores[t]["micro"]["f1"] for t in TASKS}}
    return out


def finished_runs(output: str | Path, variants: list[str], seeds: list[int], dataset: str = "") -> dict:
    """What an experiment directory holds so far, as ``run_experiment``'s results: for each variant the runs
    whose test evaluation finished (a variant may have fewer seeds than asked; ``summary_table`` says so).
    Nothing is trained; for a table of an ablation that is still running or was interrupted."""
    from .errors import InputError

    out = Path(output)
    if not out.is_dir():
        raise InputError(f"--output {out}: no such experiment directory")
    saved = out / "results.json"
    try:
        results = json.loads(saved.read_text()) if saved.is_file() else {"dataset": dataset}
    except json.JSONDecodeError as e:
        raise InputError(f"{saved}: not valid JSON ({e})") from None
    results["seeds"] = seeds
    results["variants"] = {}
    for variant in variants:
        summaries = (_finished_summary(_run_dir(out, variant, seed)) for seed in seeds)
        results["variants"][variant] = [r for r in summaries if r is not None]
    return results


def _run_dir(out: Path, variant: str, seed: int) -> Path:
    return out / "runs" / f"{variant}-s{seed}"


def _finished_summary(run_dir: Path) -> dict | None:
    """The summary of a run whose test evaluation finished (its ``test_metrics.json``), else None."""
    from .errors import InputError

    f = run_dir / "test_metrics.json"
    if not f.is_file():
        return None
    try:
        summary = json.loads(f.read_text())["summary"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise InputError(f"{f}: not a finished run's test metrics ({type(e).__name__}: {e}); remove it to "
                         "train that run again") from None
    if "schedule_cut" not in summary:  # finished before the runner recorded it: the run's metadata.json has it
        try:
            meta = json.loads((run_dir / "metadata.json").read_text())
            summary["schedule_cut"] = bool(meta.get("schedule_cut", False))
            summary["epochs_run"] = meta.get("epochs_completed")
        except (OSError, json.JSONDecodeError, AttributeError):
            pass
    if summary.get("schedule_cut"):
        log.warning("%s: train.max_minutes cut this run's schedule (after epoch %s): it did not get the budget "
                    "the others had (delete the directory and raise train.max_minutes to rerun it)",
                    run_dir, summary.get("epochs_run"))
    return summary


def _mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def _cell(xs: list[float]) -> str:
    """``mean ± std`` in %, or the one value alone: one run has no spread to show."""
    m, s = _mean_std(xs)
    return f"{m:.2f} ± {s:.2f}" if len(xs) > 1 else f"{m:.2f}"


def summary_table(results: dict) -> str:
    """Markdown: per variant, mean ± sample std over seeds of test micro F1 (in %), and training seconds per run
    (wall time over all the run's processes; runs finished before ``train_seconds_total`` was recorded count
    only their last process)."""
    rows_all = [r for rows in results["variants"].values() for r in rows]
    partial = any(len(rows) != len(results["seeds"]) for rows in results["variants"].values())
    protocol = next((r["protocol"] for r in rows_all if "protocol" in r), None)
    main_col = protocol is not None and protocol != "micro"  # micro's main figure is the RE+ column already
    lines = [
        f"Test micro F1 (%) on {results['dataset']}, mean ± std over seeds {results['seeds']}; "
        "NER strict, RE (boundaries + type), RE+ strict (also argument types)"
        + (f"; main: the {protocol} protocol's relation figure." if main_col else "."),
        "",
        "| variant | NER | RE | RE+ |" + (" main |" if main_col else "") + " malformed | train s/run |"
        + (" seeds done |" if partial else ""),
        "|---|---|---|---|" + ("---|" if main_col else "") + "---|---|" + ("---|" if partial else ""),
    ]
    for variant, rows in results["variants"].items():
        if not rows:
            continue
        cells = []
        for t in (*TASKS, "main") if main_col else TASKS:
            cells.append(_cell([100 * r[t] for r in rows]))
        mal = statistics.fmean(r["malformed"] for r in rows)
        secs = statistics.fmean(r.get("train_seconds_total", r["train_seconds"]) for r in rows)
        done = f" {', '.join(str(r['seed']) for r in rows)} |" if partial else ""
        cut = [str(r["seed"]) for r in rows if r.get("schedule_cut")]
        mark = f" (seed {', '.join(cut)} cut by train.max_minutes)" if cut else ""
        lines.append(f"| {variant}{mark} | {' | '.join(cells)} | {mal:.1f} | {secs:.0f} |{done}")
    if "sharing" in results:
        sh = results["sharing"]["test"]
        lines += ["", f"Test sentences with two or more relations sharing an entity: "
                      f"{100 * sh['share_relations_sharing_an_entity']:.1f} % of {sh['sentences']} "
                      f"({sh['relations_per_sentence']:.2f} relations per sentence)."]
    lines += _sharing_table(results)
    return "\n".join(lines)


def _sharing_table(results: dict) -> list[str]:
    """Markdown lines: per variant, the main figure on test sentences whose relations share an entity and on
    the rest (runs that recorded ``by_sharing``; runs before it did not)."""
    rows = {v: [r for r in rs if "by_sharing" in r] for v, rs in results["variants"].items()}
    if not any(rows.values()):
        return []
    first = next(r for rs in rows.values() for r in rs)["by_sharing"]
    lines = ["", f"Main figure (%) on the test sentences where two or more relations share an entity "
                 f"({first['sharing']['sentences']} sentences, {first['sharing']['relations']} relations) and on "
                 f"the rest ({first['rest']['sentences']}, {first['rest']['relations']}), mean ± std over the "
                 "seeds that recorded it (one seed: its value):", "",
             "| variant | sharing | rest | seeds |", "|---|---|---|---|"]
    for variant, rs in rows.items():
        if not rs:
            continue
        cells = []
        for part in ("sharing", "rest"):
            xs = [100 * r["by_sharing"][part]["main"] for r in rs if "main" in r["by_sharing"][part]]
            cells.append(_cell(xs) if xs else "–")  # no sentence in that part
        lines.append(f"| {variant} | {' | '.join(cells)} | {', '.join(str(r['seed']) for r in rs)} |")
    return lines


def _plot(results: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed (pip install 'anchoralign[plot]'); no plot written")
        return
    variants = [v for v, rows in results["variants"].items() if rows]
    fig, ax = plt.subplots(figsize=(1.6 * len(variants) + 2, 3.6))
    width = 0.27
    for k, (task, name) in enumerate(zip(TASKS, ("NER", "RE", "RE+"), strict=True)):
        stats = [_mean_std([100 * r[task] for r in results["variants"][v]]) for v in variants]
        xs = [i + (k - 1) * width for i in range(len(variants))]
        ax.bar(xs, [m for m, _ in stats], width, yerr=[s for _, s in stats], capsize=3, label=name)
    ax.set_xticks(range(len(variants)), variants, rotation=15)
    ax.set_ylabel("test micro F1 (%)")
    ax.set_title(f"{results['dataset']}: ablation, {len(results['seeds'])} seeds")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never over one
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
