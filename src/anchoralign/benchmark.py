"""The benchmark suite runner (DESIGN.md §7): each dataset trained with its own config and tested by its protocol.

A *unit* is one training run: a dataset, or one fold of a cross-validated dataset (ADE's 10 folds). Unit
``conll04`` trains into ``OUTPUT/conll04/``, unit ``ade/fold3`` into ``OUTPUT/ade/fold3/``; each writes the
best-dev model, ``test_metrics.json`` (the protocol's figures and how they were made) and
``test_predictions.json``. A unit whose ``test_metrics.json`` exists is done and is not run again; one that
was interrupted resumes from its last epoch's checkpoint (``train(..., resume=True)``). ``run.json`` pins
the config settings of a unit (the file's values, ``--set``, ``--seed``): a later call with other settings
stops with an error instead of mixing two runs.

A dataset with folds but no dev split (ADE) selects its epoch on a hold-out: ``HOLDOUT_FRACTION`` of the
fold's train split, drawn with a fixed seed per fold (:func:`holdout_split`), never from the fold's test.

After each unit, the dataset's entry in the results JSON (``{"datasets": {name: entry}}``) is rebuilt from
every finished unit on disk and merged in atomically, and the markdown table beside it is rewritten. A
cross-validated dataset with only some folds done reports the mean over those, ``"partial": true`` and
``"meets_floor": null``. docs/benchmarks-suite.md describes the command, the configs and the shapes.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import platform
import random
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from .config import RunConfig, load_config
from .data.registry import get_spec, load_schema, load_split, resolve_data_dir
from .errors import InputError
from .protocols import average_folds, get_protocol
from .schema import Schema
from .types import Document

__all__ = [
    "SUITE",
    "FLOORS",
    "PUBLISHED",
    "HOLDOUT_FRACTION",
    "HOLDOUT_SEED",
    "Unit",
    "dataset_folds",
    "parse_folds",
    "holdout_split",
    "plan",
    "unit_status",
    "dataset_entry",
    "results_table",
    "run_benchmark",
]

log = logging.getLogger(__name__)

SUITE = ("conll04", "ade", "scierc", "webnlg", "webnlg_star", "chinese_literature")

# The floors for the CPU configs (issue 9 item 5), on the protocol's figures: "main" is the protocol's
# relation figure (RE+ strict micro; ADE: RE+ strict macro, mean of 10 folds; WebNLG/WebNLG*: triple F1).
FLOORS: dict[str, dict[str, float]] = {
    "conll04": {"main": 0.56},
    "ade": {"main": 0.70},
    "scierc": {"main": 0.25},
    "webnlg": {"main": 0.75},
    "webnlg_star": {"main": 0.80},
    "chinese_literature": {"ner": 0.55, "main": 0.20},
}

# Published figures to print beside ours, by the same protocol: (system, figure key, value, citation). Only
# figures checked against their paper or given by the project's issues; larger encoders than ours throughout.
PUBLISHED: dict[str, list[tuple[str, str, float, str]]] = {name: [] for name in SUITE}
PUBLISHED.update({
    "conll04": [
        ("SpERT (BERT-base)", "main", 0.7147, "Eberts & Ulges 2020"),
        ("TANL (T5-base)", "main", 0.714, "Paolini et al. 2021"),
        ("REBEL (BART-large)", "main", 0.754, "Huguet Cabot & Navigli 2021"),
    ],
    "ade": [("SpERT (BERT-base, with overlap)", "main", 0.7884, "Eberts & Ulges 2020")],
    "scierc": [("SpERT (SciBERT), RE boundaries", "re", 0.5084, "Eberts & Ulges 2020")],
})

# ADE has no dev split: the epoch is selected on this fraction of the fold's train split
HOLDOUT_FRACTION = 0.1
HOLDOUT_SEED = 13  # the hold-out of fold i is drawn with random.Random(HOLDOUT_SEED * 1000 + i)

_FOLD = re.compile(r"^fold(\d+)-train$")


@dataclass(frozen=True)
class Unit:
    """One training run of the suite: a dataset, or one fold of a cross-validated one."""

    dataset: str
    fold: int | None = None

    @property
    def name(self) -> str:
        return self.dataset if self.fold is None else f"{self.dataset}/fold{self.fold}"

    def directory(self, output: str | Path) -> Path:
        return Path(output) / self.name


def dataset_folds(name: str) -> list[int]:
    """The fold numbers of a cross-validated dataset (splits ``fold{i}-train``/``fold{i}-test``); [] for others."""
    return sorted(int(m.group(1)) for s in get_spec(name).files if (m := _FOLD.match(s)))


def parse_folds(text: str) -> list[int]:
    """``"0-9"``, ``"0,3,5"`` or ``"2"`` -> sorted fold numbers."""
    out: set[int] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        lo, dash, hi = part.partition("-")
        try:
            out.update(range(int(lo), int(hi) + 1) if dash else [int(lo)])
        except ValueError:
            raise InputError(f"--folds takes numbers and ranges like 0-9 or 0,3,5, got {text!r}") from None
    if not out:
        raise InputError(f"--folds names no fold: {text!r}")
    return sorted(out)


def holdout_split(docs: Sequence[Document], fraction: float, seed: int) -> tuple[list[Document], list[Document]]:
    """``(train, dev)``: a seeded random ``fraction`` of ``docs`` (at least one) as dev, the rest in order."""
    if not 0 < fraction < 1:
        raise ValueError(f"hold-out fraction must be in (0, 1), got {fraction}")
    n_dev = max(1, round(fraction * len(docs)))
    chosen = set(random.Random(seed).sample(range(len(docs)), n_dev))
    return ([d for i, d in enumerate(docs) if i not in chosen], [d for i, d in enumerate(docs) if i in chosen])


def plan(datasets: Iterable[str], folds: Sequence[int] | None = None) -> list[Unit]:
    """The units of ``datasets``: every fold (or those in ``folds``) of a cross-validated dataset, else one."""
    units = []
    for name in datasets:
        have = dataset_folds(name)
        if not have:
            units.append(Unit(name))
            continue
        chosen = have if folds is None else list(folds)
        missing = [f for f in chosen if f not in have]
        if missing:
            raise InputError(f"dataset {name!r} has no fold {missing[0]} (folds {have[0]}-{have[-1]})")
        units += [Unit(name, f) for f in chosen]
    return units


def unit_status(unit: Unit, output: str | Path) -> tuple[str, int]:
    """``("done", 0)``, ``("interrupted", epochs completed)`` or ``("new", 0)`` from the unit's directory."""
    d = unit.directory(output)
    if (d / "test_metrics.json").is_file():
        return "done", 0
    lines = (d / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if (d / "metrics.jsonl").is_file() else []
    if lines and (d / "checkpoint").is_dir():
        return "interrupted", int(json.loads(lines[-1])["epoch"])
    return "new", 0


# --------------------------------------------------------------------------------------------- provenance


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def code_commit() -> dict:
    """The checkout's commit and whether tracked files differ from it (``{"commit", "dirty"}``)."""
    commit = _git("rev-parse", "--short=12", "HEAD")
    if not commit:
        return {"commit": "unknown", "dirty": None}
    return {"commit": commit, "dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


def machine_info(device: str = "cpu") -> dict:
    """What the figures' times depend on: platform, CPU capability, threads, device."""
    import torch

    from .precision import cpu_bf16_flag, cpu_capability

    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "cpu_capability": cpu_capability(), "cpu_native_bf16": cpu_bf16_flag(),
            "threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__,
            "device": device}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    s = max(0, round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


# --------------------------------------------------------------------------------------------- results


def dataset_entry(name: str, summaries: Sequence[dict], folds_planned: int = 0) -> dict:
    """A dataset's results entry from its finished units' summaries (one, or one per fold done).

    Top level: the protocol's figures (``protocol``, ``main``, ``ner``, ...; for folds the mean over the folds
    done, with ``std`` and ``folds``), how they were made (config, commit, machine, date, train_seconds,
    command) and the floor check: ``meets_floor`` is null for a partial cross-validation or without a floor.
    """
    if not summaries:
        raise ValueError(f"{name}: no finished unit")
    protocol = get_protocol(summaries[0]["figures"]["protocol"])
    last = max(summaries, key=lambda s: s["date"])
    entry: dict = {}
    if folds_planned:
        ordered = sorted(summaries, key=lambda s: s["fold"])
        averaged = average_folds([s["figures"] for s in ordered])
        entry.update(averaged["mean"])
        entry["std"] = averaged["std"]
        entry["folds"] = [{"fold": s["fold"], **s["figures"], "best_epoch": s["best_epoch"],
                           "epochs_run": s["epochs_run"], "schedule_cut": s["schedule_cut"],
                           "train_seconds": s["train_seconds"], "train_docs": s["train_docs"],
                           "dev_docs": s["dev_docs"], "test_docs": s["test_docs"], "commit": s["commit"],
                           "date": s["date"], "run_dir": s["run_dir"], "command": s["command"],
                           "evaluate_command": s["evaluate_command"]} for s in ordered]
        entry["folds_done"], entry["folds_planned"] = len(ordered), folds_planned
        entry["partial"] = len(ordered) < folds_planned
        entry["averaging"] = f"mean and sample std over {len(ordered)} of {folds_planned} folds"
    else:
        entry.update(last["figures"])
        entry["partial"] = False
        entry.update({k: last[k] for k in ("best_epoch", "epochs_run", "epochs_planned", "schedule_cut",
                                            "train_docs", "dev_docs", "test_docs", "run_dir", "evaluate_command")})
    commits = sorted({s["commit"] for s in summaries})
    entry.update(
        main_figure=protocol.select_key, main_label=protocol.label(protocol.select_key),
        protocol_description=protocol.description,
        config=last["config"], seed=last["seed"],
        commit=commits[0] if len(commits) == 1 else commits, dirty=any(s.get("dirty") for s in summaries),
        machine=last["machine"], date=last["date"], precision=last["precision"],
        train_seconds=round(sum(s["train_seconds"] for s in summaries), 1),
        test_seconds=round(sum(s["test_seconds"] for s in summaries), 1),
        malformed=sum(s["malformed"] for s in summaries),
        command=last["dataset_command"], data=last["data"] if not folds_planned else _folds_data(name),
    )
    floors = FLOORS.get(name)
    entry["floor"] = floors["main"] if floors else None
    entry["floors"] = floors
    if floors is None or entry["partial"]:
        entry["meets_floor"] = None
    else:
        entry["meets_floor"] = all(entry[k] >= v for k, v in floors.items())
    return entry


def _folds_data(name: str) -> dict:
    return {"dataset": name, "train": "fold{i}-train less the hold-out", "test": "fold{i}-test",
            "dev": f"hold-out: {HOLDOUT_FRACTION:.0%} of fold{{i}}-train, random.Random({HOLDOUT_SEED} * 1000 + i)"}


@contextlib.contextmanager
def _locked(directory: Path):
    """An exclusive lock on ``directory`` while a results file in it is merged (two runners may share one)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def merge_results(results_path: str | Path, name: str, entry: dict) -> dict:
    """Put ``entry`` under ``datasets[name]`` of the results JSON (others kept), atomically; rewrite the
    markdown table beside it (same name, ``.md``). Returns the whole results."""
    path = Path(results_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent):
        results = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        results.setdefault("datasets", {})[name] = entry
        results["datasets"] = dict(sorted(results["datasets"].items(), key=lambda kv: _suite_order(kv[0])))
        _write_atomic(path, json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        _write_atomic(path.with_suffix(".md"), results_table(results) + "\n")
    return results


def _suite_order(name: str) -> tuple[int, str]:
    return (SUITE.index(name) if name in SUITE else len(SUITE), name)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def _figure(entry: dict, key: str) -> str:
    if key not in entry:
        return "—"
    text = _pct(entry[key])
    if "std" in entry:
        text += f" ± {_pct(entry['std'][key])}"
    return text


def _floor_cell(floors: dict | None) -> str:
    if not floors:
        return "—"
    return ", ".join(f"{'NER' if k == 'ner' else 'main'} ≥ {_pct(v)}" for k, v in floors.items())


def _meets_cell(entry: dict) -> str:
    floors = entry.get("floors")
    if not floors:
        return "no floor"
    if entry.get("partial"):
        return f"n/a (partial: {entry['folds_done']}/{entry['folds_planned']} folds)"
    missed = [f"{'NER' if k == 'ner' else 'main'} by {_pct(v - entry[k])}" for k, v in floors.items()
              if entry[k] < v]
    return "yes" if not missed else "**no**: missed " + ", ".join(missed)


def _published_cell(name: str) -> str:
    anchors = PUBLISHED.get(name) or []
    if not anchors:
        return "none cited"
    return "; ".join(f"{system} {_pct(value)} ({cite})" for system, _, value, cite in anchors)


def results_table(results: dict) -> str:
    """Markdown: per dataset the protocol, NER, the main figure (fold mean ± std for ADE), the floor, the
    published anchors, whether the floor is met, the training time; then the command behind each row."""
    datasets = results.get("datasets", {})
    names = sorted(set(SUITE) | set(datasets), key=_suite_order)
    lines = [
        "Test figures (%) of the benchmark suite, each by its dataset's protocol (docs/protocols.md); "
        "ADE: mean ± sample std over its folds, RE+ and NER macro over types.",
        "",
        "| dataset | protocol | NER | main | floor | published anchors | meets floor | train time | commit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        e = datasets.get(name)
        if e is None:
            lines.append(f"| {name} | {get_spec(name).protocol.name if name in SUITE else '?'} | not run yet | | "
                         f"{_floor_cell(FLOORS.get(name))} | {_published_cell(name)} | n/a | | |")
            continue
        main = f"{_figure(e, 'main')} ({e['main_label']})"
        if e.get("partial"):
            main += f", **partial: {e['folds_done']} of {e['folds_planned']} folds**"
        commit = e["commit"] if isinstance(e["commit"], str) else ", ".join(e["commit"])
        lines.append(f"| {name} | {e['protocol']} | {_figure(e, 'ner')} | {main} | {_floor_cell(e.get('floors'))} "
                     f"| {_published_cell(name)} | {_meets_cell(e)} | {_clock(e['train_seconds'])} | "
                     f"{commit}{' (dirty)' if e.get('dirty') else ''} |")
    done = [n for n in names if n in datasets]
    if done:
        lines += ["", "Each row comes from (training and test, resumable; then re-scoring the saved model):", ""]
        for name in done:
            e = datasets[name]
            lines.append(f"- {name}: `{e['command']}`")
            if e.get("evaluate_command"):
                lines.append(f"  then `{e['evaluate_command']}`")
            elif e.get("folds"):
                lines.append(f"  then, fold by fold, `{e['folds'][0]['evaluate_command']}` (fold {e['folds'][0]['fold']})")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- the runner


@dataclass
class _UnitData:
    train: list[Document]
    dev: list[Document]
    test: list[Document]
    schema: Schema
    info: dict  # where train, dev and test come from


class _Reader:
    """Splits read once per call (the plan counts documents, the units train on them)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.cache: dict[tuple[str, str], list[Document]] = {}

    def __call__(self, dataset: str, split: str) -> list[Document]:
        if (dataset, split) not in self.cache:
            result = load_split(dataset, split, self.data_dir)
            for kind, n in result.warnings.items():
                log.debug("%s/%s: %d x %s", dataset, split, n, kind)
            self.cache[dataset, split] = result.documents
        return self.cache[dataset, split]


def _holdout_seed(fold: int) -> int:
    return HOLDOUT_SEED * 1000 + fold


def _train_count(unit: Unit, cfg: RunConfig, read: _Reader) -> int:
    if unit.fold is None:
        return len(read(unit.dataset, cfg.train.train_split))
    n = len(read(unit.dataset, f"fold{unit.fold}-train"))
    return n - max(1, round(HOLDOUT_FRACTION * n))


def _unit_data(unit: Unit, cfg: RunConfig, read: _Reader) -> _UnitData:
    if unit.fold is None:
        tr, dv, te = cfg.train.train_split, cfg.train.dev_split, "test"
        schema = load_schema(unit.dataset, read.data_dir, train_split=tr)
        return _UnitData(read(unit.dataset, tr), read(unit.dataset, dv), read(unit.dataset, te), schema,
                         {"dataset": unit.dataset, "train": tr, "dev": dv, "test": te})
    tr, te, seed = f"fold{unit.fold}-train", f"fold{unit.fold}-test", _holdout_seed(unit.fold)
    train_docs, dev_docs = holdout_split(read(unit.dataset, tr), HOLDOUT_FRACTION, seed)
    schema = load_schema(unit.dataset, read.data_dir, train_split=tr)  # signatures from this fold's train only
    info = {"dataset": unit.dataset, "train": f"{tr} less the hold-out", "test": te,
            "dev": f"hold-out: {len(dev_docs)} of {tr}'s {len(dev_docs) + len(train_docs)} documents "
                   f"({HOLDOUT_FRACTION:.0%}, random.Random({seed}))"}
    return _UnitData(train_docs, dev_docs, read(unit.dataset, te), schema, info)


def _unit_config(base: RunConfig, unit: Unit) -> RunConfig:
    cfg = copy.deepcopy(base)
    cfg.dataset = unit.dataset
    if unit.fold is not None:  # recorded in the run's config.yaml; the runner itself picks the documents
        cfg.train.train_split = f"fold{unit.fold}-train"
        cfg.train.dev_split = f"fold{unit.fold}-train-holdout"
    return cfg


# settings a resumed unit may change: they decide when a checkpoint is written, not what is trained
UNPINNED = (("train", "checkpoint_minutes"),)


def _settings_sha(path: Path, overrides: Sequence[str], seed: int | None) -> str:
    """What pins a run's settings: the config file's values (parsed, so comments may change), the overrides,
    the seed and the hold-out. Not the resolved dataclass, which grows a field whenever the code gains one."""
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for section, key in UNPINNED:  # how often a run saves changes nothing it computes
        if isinstance(values.get(section), dict):
            values[section] = {k: v for k, v in values[section].items() if k != key}
    kept = [o for o in overrides if o.split("=", 1)[0].strip() not in {f"{s}.{k}" for s, k in UNPINNED}]
    pinned = {"file": values, "overrides": kept, "seed": seed, "holdout": [HOLDOUT_FRACTION, HOLDOUT_SEED]}
    return _sha256(json.dumps(pinned, sort_keys=True, default=str).encode())


def _pinned_sha(directory: Path) -> str | None:
    """The settings hash a unit's directory was run with (test_metrics.json, else run.json), if any."""
    for name, key in (("test_metrics.json", "summary"), ("run.json", None)):
        f = directory / name
        if f.is_file():
            data = json.loads(f.read_text(encoding="utf-8"))
            return (data[key] if key else data).get("settings_sha256")
    return None


def _check_pinned(unit: Unit, directory: Path, pinned: str | None, current: str) -> None:
    if pinned is None:  # written by an older runner: nothing to compare
        log.warning("%s: %s records no config settings hash; not checked against the config", unit.name, directory)
    elif pinned != current:
        raise InputError(f"{unit.name} in {directory} was run with other config settings (sha256 {pinned[:12]}, "
                         f"now {current[:12]}): use another --output, or remove {directory} to run it again")


def _command(dataset: str, fold: int | None, args: dict) -> str:
    """The command line that trains and tests ``dataset`` (all its folds, or ``fold``) as this call did."""
    parts = ["anchoralign", "benchmark", "--datasets", dataset, "--output", str(args["output"]),
             "--config-dir", str(args["config_dir"]), "--suffix", args["suffix"]]
    if dataset_folds(dataset):
        parts += ["--folds", str(fold) if fold is not None else _fold_text(dataset_folds(dataset))]
    if args.get("seed") is not None:
        parts += ["--seed", str(args["seed"])]
    for item in args.get("overrides") or []:
        parts += ["--set", item]
    if args.get("data_dir") is not None:
        parts += ["--data-dir", str(args["data_dir"])]
    parts += ["--results", str(args["results"])]
    return " ".join(shlex.quote(p) for p in parts)


def _fold_text(folds: Sequence[int]) -> str:
    return f"{folds[0]}-{folds[-1]}" if list(folds) == list(range(folds[0], folds[-1] + 1)) else ",".join(map(str, folds))


def _run_unit(unit: Unit, cfg: RunConfig, data: _UnitData, directory: Path, provenance: dict,
              keep_checkpoint: bool) -> dict:
    """Train (or resume) one unit, test its best-dev model by the dataset's protocol, write test_metrics.json."""
    from .data.registry import dataset_protocol
    from .evaluation import evaluate_documents
    from .model import load_model
    from .train import train, training_device

    directory.mkdir(parents=True, exist_ok=True)
    spec_file = directory / "run.json"
    code = code_commit()
    if spec_file.is_file():
        spec = json.loads(spec_file.read_text(encoding="utf-8"))
        _check_pinned(unit, directory, spec.get("settings_sha256"), provenance["config"]["settings_sha256"])
        spec.setdefault("resumed", []).append({"date": _now(), **code})
        log.info("%s: resuming in %s", unit.name, directory)
    else:
        if (directory / "checkpoint").is_dir():
            log.warning("%s: %s holds a checkpoint but no run.json; resuming from it", unit.name, directory)
        spec = {"unit": unit.name, "config": provenance["config"],
                "settings_sha256": provenance["config"]["settings_sha256"], "seed": cfg.train.seed, "data": data.info, "started": _now(), **code}
    _write_atomic(spec_file, json.dumps(spec, indent=2) + "\n")
    meta = {"benchmark": {"unit": unit.name, "data": data.info, "config": provenance["config"]}}
    result = train(cfg, data.train, data.dev, data.schema, directory, resume=True, metadata=meta, progress=False)
    device = training_device(cfg.train.device)
    best = load_model(directory, device)
    t0 = time.time()
    scores, preds = evaluate_documents(best, data.test, data.schema, cfg.decode,
                                       protocol=dataset_protocol(unit.dataset))
    test_seconds = time.time() - t0
    rescore = ["anchoralign", "evaluate", "--model", str(directory), "--dataset", unit.dataset, "--split",
               data.info["test"]]
    if provenance.get("data_dir") is not None:
        rescore += ["--data-dir", str(provenance["data_dir"])]
    summary = {
        "unit": unit.name, "dataset": unit.dataset, "fold": unit.fold, "figures": scores["figures"],
        "malformed": scores["malformed"], "violations": scores["violations"],
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "epochs_planned": result.epochs_planned,
        "schedule_cut": result.schedule_cut, "precision": result.precision,
        "train_seconds": round(result.seconds, 1), "test_seconds": round(test_seconds, 1),
        "train_docs": len(data.train), "dev_docs": len(data.dev), "test_docs": len(data.test), "data": data.info,
        "config": provenance["config"], "settings_sha256": provenance["config"]["settings_sha256"],
        "seed": cfg.train.seed,
        **code, "train_commit": spec["commit"], "machine": machine_info(device.type), "date": _now(),
        "run_dir": str(directory), "command": provenance["command"], "dataset_command": provenance["dataset_command"],
        "evaluate_command": " ".join(shlex.quote(p) for p in rescore),
    }
    (directory / "test_predictions.json").write_text(
        json.dumps([d.to_spert() for d in preds], ensure_ascii=False) + "\n", encoding="utf-8")
    _write_atomic(directory / "test_metrics.json", json.dumps({"summary": summary, "scores": scores}, indent=2) + "\n")
    if not keep_checkpoint:
        shutil.rmtree(directory / "checkpoint", ignore_errors=True)  # the optimizer state: twice the model
    return summary


def _finished(name: str, output: Path, settings_sha: str) -> list[dict]:
    """Summaries of every finished unit of ``name`` under ``output`` (all its folds, whichever call ran them),
    each checked against the config settings it would get now."""
    folds = dataset_folds(name)
    out = []
    for unit in [Unit(name, f) for f in folds] if folds else [Unit(name)]:
        f = unit.directory(output) / "test_metrics.json"
        if f.is_file():
            summary = json.loads(f.read_text(encoding="utf-8"))["summary"]
            _check_pinned(unit, f.parent, summary.get("settings_sha256"), settings_sha)
            out.append(summary)
    return out


def run_benchmark(
    datasets: Sequence[str],
    output: str | Path,
    *,
    config_dir: str | Path = "configs",
    suffix: str = "cpu",
    folds: Sequence[int] | None = None,
    seed: int | None = None,
    overrides: Sequence[str] = (),
    results_path: str | Path = "results/benchmarks.json",
    data_dir: str | Path | None = None,
    dry_run: bool = False,
    keep_checkpoints: bool = False,
    report: Callable[[str], None] | None = None,
) -> dict:
    """Train and test each dataset with ``config_dir/<dataset>-<suffix>.yaml`` (plus ``seed`` and ``overrides``),
    skipping finished units and resuming interrupted ones; after each unit merge the dataset's entry into
    ``results_path`` and rewrite its markdown table. ``report`` gets one progress line per unit.

    Returns ``{"units": [{"unit", "status", ...}], "results": the results JSON}``; with ``dry_run`` nothing is
    trained or written and each unit's status says what would happen.
    """
    report = report or log.info
    out = Path(output)
    root = resolve_data_dir(data_dir)
    for name in datasets:
        get_spec(name)
    units = plan(datasets, folds)
    args = {"output": output, "config_dir": config_dir, "suffix": suffix, "seed": seed, "overrides": list(overrides),
            "data_dir": data_dir, "results": results_path}

    configs: dict[str, tuple[RunConfig, dict] | None] = {}
    for name in dict.fromkeys(u.dataset for u in units):  # every config read before anything trains
        path = Path(config_dir) / f"{name}-{suffix}.yaml"
        if not path.is_file():
            if not dry_run:
                raise InputError(f"no config for {name}: {path} does not exist")
            configs[name] = None
            continue
        cfg = load_config(path, list(overrides) + ([f"train.seed={seed}"] if seed is not None else []))
        configs[name] = (cfg, {"path": str(path), "sha256": _sha256(path.read_bytes()), "overrides": list(overrides),
                               "settings_sha256": _settings_sha(path, overrides, seed)})

    read = _Reader(root)
    rows, work = [], {}
    for unit in units:
        status, epoch = unit_status(unit, out)
        row = {"unit": unit.name, "status": status, "dir": str(unit.directory(out))}
        if configs[unit.dataset] is None:
            row["status"] = f"{status}; config missing: {Path(config_dir) / f'{unit.dataset}-{suffix}.yaml'}"
        else:
            cfg = _unit_config(configs[unit.dataset][0], unit)
            pinned, current = _pinned_sha(unit.directory(out)), configs[unit.dataset][1]["settings_sha256"]
            if pinned is not None and pinned != current:  # found before anything trains
                if not dry_run:
                    _check_pinned(unit, unit.directory(out), pinned, current)
                row["status"] += "; run with another config (use another --output, or remove its directory)"
            n_train = _train_count(unit, cfg, read)
            row.update(config=configs[unit.dataset][1]["path"], train_docs=n_train, epochs=cfg.train.epochs,
                       epochs_done=epoch)
            work[unit] = 0 if status == "done" else n_train * max(0, cfg.train.epochs - epoch)
        rows.append(row)
    if not dry_run:  # every finished fold too, also those outside this call's --folds
        for name, entry in configs.items():
            _finished(name, out, entry[1]["settings_sha256"])  # type: ignore[index]
    rate = _rate_from_disk(out, units)  # seconds per training document-epoch of the finished units
    if rate is not None:
        for row, unit in zip(rows, units, strict=True):
            if work.get(unit):
                row["estimate_seconds"] = round(rate * work[unit])
    if dry_run:
        return {"units": rows, "results": _read_results(results_path)}

    t_start, spent_work, spent_time = time.time(), 0, 0.0
    results = _read_results(results_path)
    for k, unit in enumerate(units, 1):
        base, cfg_info = configs[unit.dataset]  # type: ignore[misc]
        cfg = _unit_config(base, unit)
        directory = unit.directory(out)
        if rows[k - 1]["status"] == "done":
            summary = json.loads((directory / "test_metrics.json").read_text(encoding="utf-8"))["summary"]
            line = f"done before: test main {_pct(summary['figures']['main'])}"
        else:
            provenance = {"config": cfg_info, "data_dir": data_dir,
                          "command": _command(unit.dataset, unit.fold, args),
                          "dataset_command": _command(unit.dataset, None, args)}
            t0 = time.time()
            summary = _run_unit(unit, cfg, _unit_data(unit, cfg, read), directory, provenance, keep_checkpoints)
            spent_time += time.time() - t0
            spent_work += work[unit]
            resumed = " (resumed)" if rows[k - 1]["status"].startswith("interrupted") else ""
            line = (f"trained and tested{resumed} in {_clock(time.time() - t0)}: test main "
                    f"{_pct(summary['figures']['main'])}, NER {_pct(summary['figures']['ner'])}")
        entry = dataset_entry(unit.dataset, _finished(unit.dataset, out, cfg_info["settings_sha256"]),
                              len(dataset_folds(unit.dataset)))
        results = merge_results(results_path, unit.dataset, entry)
        rows[k - 1]["status"] = "done"
        remaining = sum(work.get(u, 0) for u in units[k:])
        per_work = spent_time / spent_work if spent_work else rate
        eta = 0.0 if not remaining else per_work * remaining if per_work is not None else None
        report(f"[{k}/{len(units)}] {unit.name}: {line}; elapsed {_clock(time.time() - t_start)}, ETA {_clock(eta)}")
    return {"units": rows, "results": results}


def _read_results(path: str | Path) -> dict:
    p = Path(path)
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {"datasets": {}}


def _rate_from_disk(output: Path, units: Sequence[Unit]) -> float | None:
    """Seconds per training document-epoch over the finished units under ``output`` (None if none)."""
    secs = work = 0.0
    for unit in units:
        f = unit.directory(output) / "test_metrics.json"
        if f.is_file():
            s = json.loads(f.read_text(encoding="utf-8"))["summary"]
            secs += s["train_seconds"] + s["test_seconds"]
            work += s["train_docs"] * max(1, s["epochs_run"])
    return secs / work if work else None
