"""kill -9 of ``anchoralign train`` at random moments, ``--resume`` until done: are the final weights those of an
uninterrupted run? (issue 10, item 6(c))

The real CLI runs as a subprocess (``python -m anchoralign train --dataset conll04 ...``) on the first
``--train-docs``/``--dev-docs`` sentences of CoNLL04's train/dev files (copied into ``WORKDIR/data/conll04``,
read by the ordinary reader and scored by the conll04 protocol) with ``benchmarks/kill_resume.yaml``: a tiny
random encoder with MiniLM's tokenizer, fp32, one thread, dev evaluation every epoch, so that one run takes
about a minute. Every run imports a copy of the library taken at the start (``WORKDIR/src``; ``--src`` names
another checkout's ``src``), so no run of one report sees an edit made to the working tree meanwhile. Then:

1. run A, uninterrupted (and A2, a second one, as the control that an uninterrupted run repeats itself);
2. per trial, run B: started fresh, SIGKILLed ``--kills`` times, each kill of a kind from ``KINDS`` with its
   moment drawn from a seeded RNG, restarted with ``--resume`` after each kill and at last run to the end:

   - ``mid-epoch``: a random fraction of an epoch after the process's 1st or 2nd epoch line;
   - ``checkpoint-write``: once ``checkpoint.tmp`` holds a random number (0-5) of its 6 files;
   - ``checkpoint-swap``: the moment ``checkpoint.old`` appears (between the two renames that swap the new
     checkpoint in, or while the old one is being deleted);
   - ``random``: a random delay after the process started (start-up, the first epoch, or later);

3. compare B's run directory with A's: the best model and the last checkpoint's model tensor by tensor (exact
   equality and max abs difference), the checkpoint's optimizer, scheduler and RNG states, the metrics.jsonl
   records (all fields but the wall-clock ``train_seconds``), the best epoch, and leftover temporary folders.

    .venv/bin/python benchmarks/kill_resume.py --data-dir ../shared/data --trials 3 --kills 4 \\
        --output results/kill_resume.json

With ``--set train.checkpoint_minutes=0.005`` the runs also checkpoint inside each epoch (about every 0.3 s,
several times an epoch), so most resumes start in the middle of an epoch (``resumes_inside_an_epoch``) and the
kills fall into mid-epoch checkpoint writes too (results/kill_resume_mid_epoch.json).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from anchoralign.errors import InputError

KINDS = ("mid-epoch", "checkpoint-write", "checkpoint-swap", "random")
EPOCH_LINE = re.compile(r"anchoralign\.train: epoch (\d+)/(\d+):")
RESUMED_LINE = re.compile(r"anchoralign\.train: resumed from .*? at epoch (\d+)(?:, batch (\d+))?")
# logged just before the epoch loop starts: by a resumed run after it settled and read the checkpoint; by a fresh
# one after encoding the data ("targets:" counts the targets cut or skipped, which CoNLL04's first sentences have)
LOOP_START = {True: re.compile(r"anchoralign\.train: (resumed from|no checkpoint in)"),
              False: re.compile(r"anchoralign\.train: targets: ")}
WATCHED = ("checkpoint", "checkpoint.tmp", "checkpoint.old", "best", "best.tmp", "best.old")
POLL_SECONDS = 0.0005
CHECKPOINT_FILES = 6


@dataclass
class Process:
    """One ``anchoralign train`` subprocess and the stderr lines it wrote, with their times."""

    proc: subprocess.Popen
    t0: float
    resume: bool
    lines: list[tuple[float, str]] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def epoch_lines(self) -> list[tuple[float, int]]:
        return [(t, int(m.group(1))) for t, line in list(self.lines) if (m := EPOCH_LINE.search(line))]

    def loop_start(self) -> float | None:
        """When the epoch loop started (the seconds of the line logged just before it), None before."""
        return next((t for t, line in list(self.lines) if LOOP_START[self.resume].search(line)), None)

    def start_epoch(self) -> int | None:
        """The first epoch this process trains, once it said so (a resumed one settles the checkpoint first)."""
        if not self.resume:
            return 1
        for _, line in list(self.lines):
            if m := RESUMED_LINE.search(line):
                return int(m.group(1))
        return 1 if self.loop_start() is not None else None

    def start_batch(self) -> int:
        """The batch of its first epoch this process started at (1 but after a checkpoint inside an epoch)."""
        for _, line in list(self.lines):
            if (m := RESUMED_LINE.search(line)) and m.group(2):
                return int(m.group(2))
        return 1


def _start(cmd: list[str], env: dict, log_path: Path) -> Process:
    log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 (closed by the reader thread)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.PIPE, text=True, env=env)
    p = Process(proc, time.monotonic(), "--resume" in cmd)

    def read() -> None:
        for line in proc.stderr:
            p.lines.append((p.now(), line.rstrip("\n")))
            log.write(line)
        log.close()

    threading.Thread(target=read, daemon=True).start()
    return p


class Trigger:
    """When to kill one process: a kind from ``KINDS`` and its parameters, drawn from ``rng``."""

    def __init__(self, kind: str, rng: random.Random, timing: dict) -> None:
        self.kind = kind
        self.timing = timing
        self.k = rng.choice((1, 2))  # mid-epoch: after the process's k-th epoch line
        self.frac = rng.uniform(0.1, 0.9)  # ... this fraction of an epoch later
        self.skip = rng.choice((0, 1))  # checkpoint-*: let this many checkpoints through first
        # checkpoint-write: once checkpoint.tmp holds this many files (of the 6 it gets: the model, tokenizer,
        # schema and config files, and state.pt last), so the kill falls inside the write
        self.files = rng.randrange(0, CHECKPOINT_FILES)
        self.delay = rng.uniform(0.0, timing["loop_start_seconds"] + 1.5 * timing["epoch_seconds"])

    def params(self) -> dict:
        return {"mid-epoch": {"after_epoch_lines": self.k, "epoch_fraction": round(self.frac, 3)},
                "checkpoint-write": {"skip_checkpoints": self.skip, "files_written": self.files},
                "checkpoint-swap": {"skip_checkpoints": self.skip},
                "random": {"delay_s": round(self.delay, 3)}}[self.kind]

    def fires(self, p: Process, out: Path, seen: dict) -> bool:
        now = p.now()
        if self.kind == "mid-epoch":
            lines = p.epoch_lines()
            return len(lines) >= self.k and now >= lines[self.k - 1][0] + self.frac * self.timing["epoch_seconds"]
        if self.kind == "checkpoint-write":
            times = seen["checkpoint.tmp"]
            try:
                return len(times) > self.skip and len(os.listdir(out / "checkpoint.tmp")) >= self.files
            except FileNotFoundError:  # renamed into place meanwhile: the next checkpoint's write then
                return False
        if self.kind == "checkpoint-swap":
            return len(seen["checkpoint.old"]) > self.skip
        return now >= self.delay


def _supervise(p: Process, out: Path, trigger: Trigger | None) -> dict:
    """Poll the run directory every ``POLL_SECONDS`` until the process ends or ``trigger`` fires (then kill -9)."""
    seen: dict[str, list[float]] = {"checkpoint.tmp": [], "checkpoint.old": []}  # when each appeared
    gone: list[float] = []  # when checkpoint.tmp disappeared (renamed into place)
    present = dict.fromkeys(seen, False)
    killed = None
    while p.proc.poll() is None:
        for name in seen:
            here = (out / name).is_dir()
            if here and not present[name]:
                seen[name].append(p.now())
            elif present[name] and not here and name == "checkpoint.tmp":
                gone.append(p.now())
            present[name] = here
        if trigger is not None and trigger.fires(p, out, seen):
            os.kill(p.proc.pid, signal.SIGKILL)
            killed = p.now()
            p.proc.wait()
            break
        time.sleep(POLL_SECONDS)
    p.proc.wait()
    time.sleep(0.2)  # let the reader thread take the last lines
    writes = [g - s for s, g in zip(seen["checkpoint.tmp"], gone, strict=False)]
    return {"killed_at_s": killed, "returncode": p.proc.returncode, "wall_s": round(p.now(), 2),
            "checkpoint_writes_s": writes}


def _dirs(out: Path) -> dict[str, list[str]]:
    return {n: sorted(os.listdir(out / n)) for n in WATCHED if (out / n).is_dir()}


def _checkpoint_epoch(out: Path) -> int | None:
    import torch

    state = out / "checkpoint" / "state.pt"
    return int(torch.load(state, map_location="cpu", weights_only=False)["epoch"]) if state.is_file() else None


def _identities(out: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of each watched folder: the same pair later means the folder was not touched meanwhile."""
    found = {}
    for n in WATCHED:
        with contextlib.suppress(FileNotFoundError):
            st = (out / n).stat()
            found[n] = (st.st_ino, st.st_mtime_ns)
    return found


def _classify(p: Process, dirs: dict, new: set[str]) -> str:
    """What the kill interrupted, from the log and the folders it left (``new``: those the process made or
    changed; one left untouched by an earlier kill says nothing about this one)."""
    if p.loop_start() is None:
        return "start-up (before the first batch)"
    if "checkpoint.old" in new:
        return "checkpoint swap" if "checkpoint" not in dirs else "old checkpoint deletion"
    if "checkpoint.tmp" in new:
        return "checkpoint write"
    return "epoch (training batches, dev evaluation or best-model save)"


def _train_cmd(args: argparse.Namespace, data: Path, out: Path, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "anchoralign", "train", "--dataset", "conll04", "--data-dir", str(data),
           "--config", args.config, "--output", str(out)]
    for s in args.overrides:
        cmd += ["--set", s]
    return cmd + (["--resume"] if resume else [])


def _run_uninterrupted(args, data: Path, out: Path, env: dict) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    p = _start(_train_cmd(args, data, out, False), env, out.parent / f"{out.name}.log")
    info = _supervise(p, out, None)
    if info["returncode"] != 0:
        raise SystemExit(f"run {out} failed (exit status {info['returncode']}); see {out.parent / out.name}.log")
    info.update(epoch_line_s=[round(t, 2) for t, _ in p.epoch_lines()], loop_start_s=round(p.loop_start(), 2))
    return info


def _run_killed(args, data: Path, out: Path, env: dict, rng: random.Random, trial: int, timing: dict) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    kinds = [KINDS[(trial + i) % len(KINDS)] for i in range(args.kills)]
    kills, processes, t0 = [], [], time.monotonic()
    for n in range(args.kills + 1):
        trigger = Trigger(kinds[n], rng, timing) if n < args.kills else None
        at_start = _identities(out)
        p = _start(_train_cmd(args, data, out, n > 0), env, out.parent / f"{out.name}.log")
        info = _supervise(p, out, trigger)
        processes.append({"resume": n > 0, "start_epoch": p.start_epoch(), "start_batch": p.start_batch(),
                          "wall_s": info["wall_s"],
                          "returncode": info["returncode"]})
        if info["killed_at_s"] is None:
            if info["returncode"] != 0:  # a finding, not the script's failure: say what the run printed last
                errors = [line for _, line in p.lines if line and not line.startswith((" ", "INFO", "WARNING"))]
                failure = f"exit status {info['returncode']}: {errors[-1] if errors else ''}"
                return {"trial": trial, "kills": kills, "processes": processes, "failed": failure,
                        "wall_s": round(time.monotonic() - t0, 2)}
            if trigger is not None:
                kills.append({"kind": trigger.kind, **trigger.params(), "reached": False})
            break
        dirs = _dirs(out)
        done = p.epoch_lines()
        began = max([t for t, _ in done[-1:]] + [p.loop_start() or 0.0])  # the epoch in progress began
        new = {n for n, ident in _identities(out).items() if at_start.get(n) != ident}
        what = _classify(p, dirs, new)
        kills.append({"kind": trigger.kind, **trigger.params(), "reached": True,
                      "seconds": round(info["killed_at_s"], 3),
                      "epoch": done[-1][1] + 1 if done else p.start_epoch(),  # None: in start-up
                      "seconds_into_epoch": None if p.loop_start() is None else round(info["killed_at_s"] - began, 3),
                      "interrupted": what, "checkpoint_write_interrupted": what == "checkpoint write",
                      "inside_checkpoint_swap": what in ("checkpoint swap", "old checkpoint deletion"),
                      "folders_at_start": sorted(at_start), "folders_after_kill": dirs,
                      "checkpoint_epoch_after_kill": _checkpoint_epoch(out)})
    return {"trial": trial, "kills": kills, "processes": processes, "failed": None,
            "wall_s": round(time.monotonic() - t0, 2)}


def _tensor_diff(a: Path, b: Path) -> dict:
    import torch
    from safetensors.torch import load_file

    ta, tb = load_file(str(a)), load_file(str(b))
    if ta.keys() != tb.keys():
        return {"equal": False, "same_keys": False, "max_abs_diff": None}
    diffs = {k: float((ta[k].double() - tb[k].double()).abs().max()) if ta[k].numel() else 0.0 for k in ta}
    unequal = [k for k in ta if not torch.equal(ta[k], tb[k])]
    return {"equal": not unequal, "same_keys": True, "tensors": len(ta), "unequal_tensors": unequal[:10],
            "max_abs_diff": max(diffs.values(), default=0.0)}


def _state_diff(a: Path, b: Path) -> dict:
    """The checkpoints' state.pt: optimizer, scheduler, RNG states and best-epoch bookkeeping (not the clock)."""
    import torch

    sa = torch.load(a, map_location="cpu", weights_only=False)
    sb = torch.load(b, map_location="cpu", weights_only=False)
    unequal: list[str] = []

    def walk(x, y, path: str) -> None:
        if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
            if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and torch.equal(x, y)):
                unequal.append(path)
        elif isinstance(x, dict) and isinstance(y, dict):
            if x.keys() != y.keys():
                unequal.append(path + " (keys)")
            for k in x.keys() & y.keys():
                walk(x[k], y[k], f"{path}.{k}")
        elif isinstance(x, list | tuple) and isinstance(y, list | tuple) and len(x) == len(y):
            for i, (u, v) in enumerate(zip(x, y, strict=True)):
                walk(u, v, f"{path}[{i}]")
        elif x != y:
            unequal.append(path)

    for k in sa.keys() | sb.keys():
        if k != "elapsed":
            walk(sa.get(k), sb.get(k), k)
    return {"equal": not unequal, "unequal": sorted(unequal)[:10]}


def _records(path: Path) -> tuple[list[dict], int]:
    """metrics.jsonl's records without the wall clock, and how many lines did not parse."""
    records, bad = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        r.pop("train_seconds", None)
        records.append(r)
    return records, bad


def _compare(a: Path, b: Path) -> dict:
    ra, _ = _records(a / "metrics.jsonl")
    rb, bad = _records(b / "metrics.jsonl")
    ma = json.loads((a / "metadata.json").read_text(encoding="utf-8"))
    mb = json.loads((b / "metadata.json").read_text(encoding="utf-8"))
    best = _tensor_diff(a / "model.safetensors", b / "model.safetensors")
    last = _tensor_diff(a / "checkpoint" / "model.safetensors", b / "checkpoint" / "model.safetensors")
    state = _state_diff(a / "checkpoint" / "state.pt", b / "checkpoint" / "state.pt")
    return {"equal_weights": best["equal"], "max_abs_diff": best["max_abs_diff"], "best_model": best,
            "last_checkpoint_model": last, "checkpoint_state": state,
            "metrics_records_equal": ra == rb, "metrics_epochs": [r["epoch"] for r in rb],
            "metrics_unparsable_lines": bad, "best_epoch": [ma.get("best_epoch"), mb.get("best_epoch")],
            "best_dev_equal": ma.get("dev") == mb.get("dev"),
            "leftover_folders": sorted(n for n in WATCHED[1:] if (b / n).exists())}


# a trial whose last process failed: nothing to compare
_FAILED = {"equal_weights": False, "max_abs_diff": None, "best_model": None, "last_checkpoint_model": {"equal": False},
           "checkpoint_state": {"equal": False}, "metrics_records_equal": False, "best_epoch": None}


def _source_digest(src: Path) -> str:
    """One hash over the library's Python files (which code a report measured)."""
    h = hashlib.sha256()
    for f in sorted(src.rglob("*.py")):
        h.update(f.relative_to(src).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def _subset(src: Path, dst: Path, n_train: int, n_dev: int) -> None:
    """CoNLL04's first sentences, laid out as a data directory the registry reads."""
    (dst / "conll04").mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("dev", n_dev)):
        docs = json.loads((src / "conll04" / f"{split}.json").read_text(encoding="utf-8"))[:n]
        (dst / "conll04" / f"{split}.json").write_text(json.dumps(docs), encoding="utf-8")
    shutil.copy(src / "conll04" / "conll04_types.json", dst / "conll04" / "conll04_types.json")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("ANCHORALIGN_DATA", "../shared/data"))
    ap.add_argument("--config", default="benchmarks/kill_resume.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--train-docs", type=int, default=480)
    ap.add_argument("--dev-docs", type=int, default=100)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--kills", type=int, default=4, help="kills per trial (then one last resume to the end)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default="runs/kill_resume")
    ap.add_argument("--no-control", action="store_true", help="skip A2, the second uninterrupted run")
    ap.add_argument("--src", help="the library's src folder (default: the installed one's), e.g. an older "
                                  "checkout's; copied into WORKDIR/src first, and every run imports that copy")
    ap.add_argument("--output", default="results/kill_resume.json")
    args = ap.parse_args()

    import torch

    import anchoralign
    from anchoralign.data.registry import resolve_data_dir

    if not Path(args.config).is_file():  # the runs read it (with --src, an older library may read it its way)
        raise InputError("no such config file (--config)", path=args.config)
    root = resolve_data_dir(args.data_dir)
    for name in ("train.json", "dev.json", "conll04_types.json"):
        if not (root / "conll04" / name).is_file():
            raise InputError(f"no conll04/{name} there (--data-dir)", path=root)
    src = Path(args.src).resolve() if args.src else Path(anchoralign.__file__).resolve().parents[1]
    if not (src / "anchoralign").is_dir():
        raise InputError("holds no anchoralign package (--src: give a checkout's src folder)", path=src)
    work = Path(args.workdir)
    data = work / "data"
    _subset(root, data, args.train_docs, args.dev_docs)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("ANCHORALIGN_DATA", None)
    # a frozen copy: the runs of one report must not straddle an edit of the working tree
    shutil.rmtree(work / "src", ignore_errors=True)
    shutil.copytree(src / "anchoralign", work / "src" / "anchoralign", ignore=shutil.ignore_patterns("__pycache__"))
    env["PYTHONPATH"] = str((work / "src").resolve())
    digest = _source_digest(work / "src" / "anchoralign")
    for log in work.glob("*.log"):
        log.unlink()

    print(f"run A (uninterrupted) in {work / 'A'}", file=sys.stderr)
    run_a = _run_uninterrupted(args, data, work / "A", env)
    starts = [0.0, *run_a["epoch_line_s"]]
    epoch_s = statistics.median(b - a for a, b in zip(starts[1:], starts[2:], strict=False)) \
        if len(starts) > 2 else run_a["epoch_line_s"][0]
    timing = {"epoch_seconds": epoch_s, "loop_start_seconds": run_a["loop_start_s"],
              "checkpoint_write_seconds": statistics.median(run_a["checkpoint_writes_s"] or [0.05])}
    print(f"  {run_a['wall_s']} s; timing {timing}", file=sys.stderr)
    control = None
    if not args.no_control:
        print("run A2 (uninterrupted, the control)", file=sys.stderr)
        a2 = _run_uninterrupted(args, data, work / "A2", env)
        control = {"wall_s": a2["wall_s"], **_compare(work / "A", work / "A2")}
        print(f"  equal weights: {control['equal_weights']}", file=sys.stderr)

    trials = []
    for t in range(args.trials):
        rng = random.Random(f"{args.seed}-{t}")
        print(f"trial {t}: run B with {args.kills} kills", file=sys.stderr)
        trial = _run_killed(args, data, work / f"B{t}", env, rng, t, timing)
        trial.update(_compare(work / "A", work / f"B{t}") if trial["failed"] is None else _FAILED)
        trials.append(trial)
        for k in trial["kills"]:
            where = f"epoch {k['epoch']}, {k['seconds']} s: {k['interrupted']}" if k["reached"] else "not reached"
            print(f"  kill {k['kind']:<16} {where}", file=sys.stderr)
        if trial["failed"]:
            print(f"  the run failed: {trial['failed']}", file=sys.stderr)
        print(f"  equal weights: {trial['equal_weights']} (max abs diff {trial['max_abs_diff']}), metrics equal: "
              f"{trial['metrics_records_equal']}, best epoch A/B: {trial['best_epoch']}", file=sys.stderr)

    kills = [k for tr in trials for k in tr["kills"] if k["reached"]]
    summary = {
        "trials": len(trials), "trials_failed": sum(tr["failed"] is not None for tr in trials), "kills": len(kills),
        "kills_not_reached": sum(not k["reached"] for tr in trials for k in tr["kills"]),
        "kills_by_what_was_interrupted": {w: sum(k["interrupted"] == w for k in kills)
                                          for w in sorted({k["interrupted"] for k in kills})},
        "checkpoint_writes_interrupted": sum(k["checkpoint_write_interrupted"] for k in kills),
        "kills_inside_checkpoint_swap": sum(k["inside_checkpoint_swap"] for k in kills),
        # train.checkpoint_minutes > 0: resumes that began inside an epoch, from a checkpoint written there
        "resumes_inside_an_epoch": sum(pr["start_batch"] > 1 for tr in trials for pr in tr["processes"]),
        "trials_equal_weights": sum(tr["equal_weights"] for tr in trials),
        "trials_equal_last_checkpoint": sum(tr["last_checkpoint_model"]["equal"] for tr in trials),
        "trials_equal_checkpoint_state": sum(tr["checkpoint_state"]["equal"] for tr in trials),
        "trials_equal_metrics": sum(tr["metrics_records_equal"] for tr in trials),
        "max_abs_diff": max((tr["max_abs_diff"] for tr in trials if tr["max_abs_diff"] is not None), default=None),
        "run_a_wall_s": run_a["wall_s"], "trial_wall_s": [tr["wall_s"] for tr in trials],
    }
    report = {
        "meta": {"date": date.today().isoformat(), "command": " ".join([Path(sys.executable).name, *sys.argv]),
                 "platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                 "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
                 "config": args.config, "overrides": args.overrides, "train_docs": args.train_docs,
                 "dev_docs": args.dev_docs, "seed": args.seed, "threads": 1, "timing_from_run_a": timing,
                 "library": str(src / "anchoralign"), "library_digest": digest},
        "summary": summary, "run_a": run_a, "control_a2": control, "trials": trials,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))
    ok = summary["trials_equal_weights"] == len(trials) and (control is None or control["equal_weights"])
    return 0 if ok else 1


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
