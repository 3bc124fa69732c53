"""Load test of ``anchoralign serve``: concurrent clients, one sentence per request, against in-process batches.

    .venv/bin/python benchmarks/load_serve.py --model runs/demo [--clients 32] [--seconds 60] [--threads 1] \\
        [--data ../shared/data/conll04/test.json] [--output results/load_serve.json]

Phase 1 starts ``python -m anchoralign serve`` on loopback (default limits: batches of up to 32 texts) and runs
``--clients`` concurrent asyncio clients (httpx, one keep-alive connection each) for ``--seconds``, each
posting one CoNLL04 test sentence (its tokens joined with spaces) per request, the next sentence in turn.
After a warm-up of one request per client, it reports errors, latency percentiles and sentences/s (answered
sentences over the measured wall time). Phase 2, in this process, after the server has stopped: the same
sentences the server answered, in the same order, through ``Extractor.extract`` in batches of ``--batch``
(after a warm-up batch), and the ratio of the two throughputs. Server and in-process decoding run with
``--threads`` torch threads each. The server runs with ``-v``, so its log has a line per batch: the report
gives the batch sizes it reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO / "src"))  # this checkout's library, in-process as in the server it starts

from fuzz_serve import start_server  # noqa: E402


def read_sentences(path: str) -> list[str]:
    """SpERT JSON (the library's reader: a bad file is an ``InputError``): each document's tokens joined with
    spaces."""
    from anchoralign.data.spert import read_spert

    return [" ".join(t.text for t in d.tokens) for d in read_spert(path).documents if d.tokens]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def load(url: str, sentences: list[str], clients: int, seconds: float) -> dict:
    """``clients`` concurrent loops posting one sentence each for ``seconds`` (after one warm-up each)."""
    import httpx

    next_index = 0
    latencies: list[float] = []
    answered: list[int] = []  # sentence indices, in completion order
    errors: Counter = Counter()

    async def client(c: httpx.AsyncClient, deadline: float, record: bool) -> None:
        nonlocal next_index
        while time.perf_counter() < deadline:
            i = next_index % len(sentences)
            next_index += 1
            t0 = time.perf_counter()
            try:
                r = await c.post(f"{url}/v1/extract", json={"texts": [sentences[i]]})
            except httpx.HTTPError as e:
                errors[type(e).__name__] += record
                continue
            if not record:
                return  # warm-up: one request per client
            if r.status_code != 200:
                errors[str(r.status_code)] += 1
                continue
            latencies.append(time.perf_counter() - t0)
            answered.append(i)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=300, limits=limits) as c:
        await asyncio.gather(*(client(c, float("inf"), False) for _ in range(clients)))
        next_index = 0
        start = time.perf_counter()
        await asyncio.gather(*(client(c, start + seconds, True) for _ in range(clients)))
        wall = time.perf_counter() - start
    ms = [x * 1000 for x in latencies]
    return {
        "requests_ok": len(latencies), "errors": dict(errors), "wall_seconds": round(wall, 2),
        "sentences_per_s": round(len(answered) / wall, 2),
        "latency_ms": {"p50": round(_percentile(ms, 50), 1), "p95": round(_percentile(ms, 95), 1),
                       "p99": round(_percentile(ms, 99), 1), "mean": round(statistics.fmean(ms), 1),
                       "max": round(max(ms), 1)} if ms else None,
        "answered": answered,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="runs/demo", help="a model directory (default: runs/demo)")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "conll04" / "test.json"))
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--batch", type=int, default=32, help="batch size of the in-process comparison (default 32)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")),
                   help="torch threads, server and in-process alike (default: $OMP_NUM_THREADS, else 1)")
    p.add_argument("--batch-wait-ms", type=float, default=None, help="passed to serve (default: its default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--output", default="results/load_serve.json")
    args = p.parse_args()
    from anchoralign.model import read_model_config

    read_model_config(args.model)  # not a model directory: one line, exit 2 (run_main), before the server starts
    sentences = read_sentences(args.data)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "serve.log"
        extra = ["-v"] + ([] if args.batch_wait_ms is None else ["--batch-wait-ms", str(args.batch_wait_ms)])
        proc, url = start_server(args.model, args.device, log_path, extra=extra)  # -v: a line per batch
        try:
            server = asyncio.run(load(url, sentences, args.clients, args.seconds))
            proc.send_signal(signal.SIGTERM)
            server["exit_status_after_sigterm"] = proc.wait(300)
        finally:
            if proc.poll() is None:
                proc.kill()
        sizes = [int(m) for m in re.findall(r"batch of (\d+) texts", log_path.read_text(encoding="utf-8"))]
        server["batches"] = len(sizes)  # the warm-up's included
        server["mean_batch_texts"] = round(statistics.fmean(sizes), 1) if sizes else None
        server["batch_texts_histogram"] = dict(sorted(Counter(sizes).items()))
    answered = server.pop("answered")
    print(f"server: {json.dumps(server)}", file=sys.stderr)

    import torch

    import anchoralign

    torch.set_num_threads(args.threads)
    ex = anchoralign.load(args.model, device=args.device)
    ex.extract(sentences[: args.batch], batch_size=args.batch)  # warm-up
    texts = [sentences[i] for i in answered]
    t0 = time.perf_counter()
    for b in range(0, len(texts), args.batch):
        ex.extract(texts[b : b + args.batch], batch_size=args.batch)
    seconds = time.perf_counter() - t0
    batch = {"sentences": len(texts), "batch_size": args.batch, "seconds": round(seconds, 2),
             "sentences_per_s": round(len(texts) / seconds, 2) if seconds else None}
    out = {
        "meta": {"command": " ".join(sys.argv), "date": datetime.now(UTC).isoformat(timespec="seconds"),
                 "model": args.model, "precision": ex.info().get("precision"), "data": args.data,
                 "clients": args.clients, "seconds": args.seconds, "threads": args.threads,
                 "batch_wait_ms": args.batch_wait_ms,
                 "cpu_capability": torch.backends.cpu.get_cpu_capability(), "nproc": os.cpu_count(),
                 "python": platform.python_version(), "torch": torch.__version__},
        "server": server, "in_process_batch": batch,
        "ratio_server_over_batch": round(server["sentences_per_s"] / batch["sentences_per_s"], 3)
        if batch["sentences_per_s"] else None,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=1))
    ok = not server["errors"] and server["exit_status_after_sigterm"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
