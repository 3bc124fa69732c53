"""Fuzz the extraction API and ``anchoralign serve`` with seeded random inputs; count crashes, 5xx and bad offsets.

    .venv/bin/python benchmarks/fuzz_serve.py --model runs/demo [--n 10000] [--seed 0] [--long 1] \\
        [--output results/fuzz_serve.json]

Every generated text (random Unicode across scripts, emoji ZWJ sequences, combining marks, control and
zero-width characters, empty and whitespace-only texts) goes (a) to ``Extractor.extract`` in-process and (b) to
a real ``python -m anchoralign serve`` on loopback, in requests of 1-8 texts with a random threshold, from 4
concurrent clients. Besides those, ``--long`` 50,000-character lines of each long kind go to both, and protocol
inputs (malformed JSON, wrong types, oversized bodies, too many or too long texts, lone surrogates) go to the
server alone, each expecting its own 4xx. The texts go with ``any_script`` (the API's and the server's refusal
of a text mostly in scripts the model's training data does not hold is not what this fuzzes). Checks: no exception from ``extract``, no transport error, no 5xx,
every error status as expected with the JSON error shape, and in every result ``0 <= start < end <=
len(text)``, ``text[start:end] == entity.text``, relation ids in range, scores in [0, 1], the threshold applied.
Exit status 1 when any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # this checkout's library, in-process as in the server it starts
LONG_CHARS = 50_000
CLIENTS = 4

# ---------------------------------------------------------------------------------------------- generators

LATIN = "abcdefghijklmnopqrstuvwxyzàáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœłđ"
NAMES = ["John", "Smith", "Acme", "Corp", "Boston", "Mary", "Paris", "Reuters", "Ohio", "Lincoln"]
WHITESPACE = " \t\n\r\x0b\x0c\x85\u00a0\u1680\u2000\u2003\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u180e\u00ad\ufe0f\ufe00"
BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
EMOJI = "👩👨👧👦🧑❤🏳🌈👍😀💻🚀🔥🎉🐈"


def _pick(rnd: random.Random, lo: int, hi: int) -> str:
    return chr(rnd.randint(lo, hi))


def _latin_word(rnd: random.Random) -> str:
    if rnd.random() < 0.25:
        return rnd.choice(NAMES)
    w = "".join(rnd.choice(LATIN) for _ in range(rnd.randint(1, 10)))
    return w.capitalize() if rnd.random() < 0.3 else w


def _cjk_word(rnd: random.Random) -> str:
    ranges = [(0x4E00, 0x9FFF), (0x3040, 0x309F), (0x30A0, 0x30FF), (0xAC00, 0xD7A3), (0x20000, 0x2A6DF)]
    out = "".join(_pick(rnd, *rnd.choice(ranges)) for _ in range(rnd.randint(1, 6)))
    return out + (rnd.choice("，。！？、「」") if rnd.random() < 0.3 else "")


def _rtl_word(rnd: random.Random) -> str:
    if rnd.random() < 0.5:  # Arabic letters, harakat, Arabic-Indic digits
        w = "".join(_pick(rnd, 0x0621, 0x064A) + (_pick(rnd, 0x064B, 0x0652) if rnd.random() < 0.3 else "")
                    for _ in range(rnd.randint(1, 8)))
        w += "".join(_pick(rnd, 0x0660, 0x0669) for _ in range(rnd.randint(0, 2)))
    else:  # Hebrew letters and niqqud
        w = "".join(_pick(rnd, 0x05D0, 0x05EA) + (_pick(rnd, 0x05B0, 0x05BC) if rnd.random() < 0.3 else "")
                    for _ in range(rnd.randint(1, 8)))
    return (rnd.choice(BIDI) if rnd.random() < 0.2 else "") + w


def _devanagari_word(rnd: random.Random) -> str:
    out = []
    for _ in range(rnd.randint(1, 5)):
        out.append(_pick(rnd, 0x0915, 0x0939))
        r = rnd.random()
        if r < 0.3:
            out.append(_pick(rnd, 0x093E, 0x094C))  # a vowel sign
        elif r < 0.45:
            out.append("\u094d")  # virama: a conjunct with the next consonant
        elif r < 0.5:
            out.append("\u093c\u0902")  # nukta, anusvara
    return "".join(out) + ("\u0964" if rnd.random() < 0.2 else "")


def _emoji_word(rnd: random.Random) -> str:
    r = rnd.random()
    if r < 0.35:  # a ZWJ sequence, maybe with skin tones and VS16
        parts = [rnd.choice(EMOJI) + (_pick(rnd, 0x1F3FB, 0x1F3FF) if rnd.random() < 0.3 else "")
                 for _ in range(rnd.randint(2, 4))]
        return "\u200d".join(p + ("\ufe0f" if rnd.random() < 0.3 else "") for p in parts)
    if r < 0.55:  # a flag: two regional indicators
        return _pick(rnd, 0x1F1E6, 0x1F1FF) + _pick(rnd, 0x1F1E6, 0x1F1FF)
    if r < 0.65:  # a keycap
        return rnd.choice("0123456789#*") + "\ufe0f\u20e3"
    if r < 0.72:  # a tag sequence (subdivision flag)
        return "\U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in "gbsct") + "\U000e007f"
    return "".join(rnd.choice(EMOJI) for _ in range(rnd.randint(1, 3)))


def _combining_word(rnd: random.Random) -> str:
    marks = [(0x0300, 0x036F), (0x1AB0, 0x1ABE), (0x20D0, 0x20F0), (0x1DC0, 0x1DFF)]
    base = "" if rnd.random() < 0.1 else rnd.choice(LATIN + "AEIOU")  # sometimes a mark with no base
    return base + "".join(_pick(rnd, *rnd.choice(marks)) for _ in range(rnd.randint(1, 15)))


def _control_word(rnd: random.Random) -> str:
    controls = [chr(c) for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]] + ["\ufffe", "\uffff", "\ufdd0"]
    return "".join(rnd.choice(controls) if rnd.random() < 0.4 else rnd.choice(LATIN) for _ in range(rnd.randint(1, 8)))


def _zero_width_word(rnd: random.Random) -> str:
    return "".join(rnd.choice(ZERO_WIDTH) if rnd.random() < 0.5 else rnd.choice(LATIN) for _ in range(rnd.randint(1, 8)))


def _random_codepoints(rnd: random.Random) -> str:
    out = []
    for _ in range(rnd.randint(1, 40)):
        c = rnd.randint(0, 0x10FFFF) if rnd.random() < 0.3 else rnd.randint(0, 0xFFFF)
        out.append(chr(c if not 0xD800 <= c <= 0xDFFF else c + 0x800))  # no lone surrogates: not text
    return "".join(out)


WORDS: dict[str, Callable[[random.Random], str]] = {
    "latin": _latin_word, "cjk": _cjk_word, "rtl": _rtl_word, "devanagari": _devanagari_word,
    "emoji": _emoji_word, "combining": _combining_word, "control": _control_word, "zero_width": _zero_width_word,
}


def _sentence(rnd: random.Random, word: Callable[[random.Random], str]) -> str:
    seps = [" "] * 8 + ["", "\t", "  ", "\u3000", "\n", " . ", ", "]
    n = min(12, 1 + int(rnd.expovariate(0.5)))  # mostly short (2-3 words), so that 10k inputs take minutes
    return "".join(word(rnd) + rnd.choice(seps) for _ in range(n)).rstrip(" ")


def _mixed(rnd: random.Random) -> str:
    return " ".join(_sentence(rnd, rnd.choice(list(WORDS.values()))) for _ in range(rnd.randint(2, 4)))


# text category -> (weight, generator)
TEXTS: dict[str, tuple[float, Callable[[random.Random], str]]] = {
    **{name: (10.0, lambda rnd, w=w: _sentence(rnd, w)) for name, w in WORDS.items()},
    "mixed_scripts": (10.0, _mixed),
    "random_codepoints": (8.0, _random_codepoints),
    "empty": (2.0, lambda rnd: ""),
    "whitespace_only": (3.0, lambda rnd: "".join(rnd.choice(WHITESPACE) for _ in range(rnd.randint(1, 20)))),
}


def _long(rnd: random.Random, kind: str) -> str:
    """A line of exactly LONG_CHARS characters."""
    if kind == "long_nospace":
        return "".join(rnd.choice(LATIN) for _ in range(LONG_CHARS))
    parts, size = [], 0
    while size < LONG_CHARS:
        piece = (_sentence(rnd, _latin_word) + " ." if kind == "long_words"
                 else _sentence(rnd, _cjk_word) if kind == "long_cjk" else _mixed(rnd))
        parts.append(piece + " ")
        size += len(piece) + 1
    return "".join(parts)[:LONG_CHARS]


LONG_KINDS = ["long_words", "long_mixed", "long_nospace", "long_cjk"]


def _body(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def _protocol_input(rnd: random.Random, kind: str) -> tuple[bytes | list[bytes], set[int]]:
    """A request body (a list of chunks: sent chunked, without Content-Length) and the statuses it may get."""
    if kind == "invalid_json":
        good = _body({"texts": [_sentence(rnd, _latin_word)]})
        r = rnd.random()
        if r < 0.25:
            return good[: rnd.randint(0, len(good) - 1)], {400, 422}  # truncated (empty: no body)
        if r < 0.4:
            return good + rnd.choice([b"}", b"]", b",", b"x", b"{}"]), {400}
        if r < 0.55:
            return bytes(rnd.randint(0, 255) for _ in range(rnd.randint(1, 200))), {400, 422}
        if r < 0.7:
            return good.replace(b'"', b"'"), {400}
        if r < 0.8:
            return b'{"texts": ["a\\x"]}', {400}  # a bad escape
        if r < 0.9:
            return b"[" * rnd.randint(2000, 200_000), {400}  # deep nesting
        return b'{"texts": ["\xff\xfe broken utf-8"]}', {400}
    if kind == "wrong_types":
        bad = rnd.choice([
            {"texts": "John Smith"}, {"texts": None}, {"texts": 3}, {"texts": {"a": "b"}}, {"texts": [1, 2]},
            {"texts": ["ok", None]}, {"texts": [["nested"]]}, {"texts": [True]}, {}, {"text": ["a"]},
            {"texts": ["a"], "threshold": "0.5"}, {"texts": ["a"], "threshold": True},
            {"texts": ["a"], "threshold": rnd.choice([1.5, -0.1, 1e308, -1e-9])}, {"texts": ["a"], "extra": 1},
            ["a", "b"], "a", 3, None, {"texts": ["a"], "threshold": None},
        ])
        if rnd.random() < 0.05:
            return b'{"texts": ["a"], "threshold": ' + rnd.choice([b"NaN", b"Infinity", b"-Infinity"]) + b"}", {422}
        if rnd.random() < 0.05:
            depth = rnd.randint(10, 500)
            return b'{"texts": ' + b"[" * depth + b"]" * depth + b"}", {422}
        return _body(bad), {422}
    if kind == "oversized_body":
        body = _body({"texts": ["x" * 60_000] * rnd.randint(18, 40)})  # every text within max_chars
        return (body if rnd.random() < 0.5 else [body[i : i + 65_536] for i in range(0, len(body), 65_536)]), {413}
    if kind == "too_many_texts":
        return _body({"texts": ["a"] * rnd.randint(65, 300)}), {413}
    if kind == "too_long_text":
        return _body({"texts": ["ok", "x" * rnd.randint(100_001, 200_000)]}), {413}
    if kind == "lone_surrogate":
        s = rnd.choice([b"\\ud800", b"\\udfff", b"\\udc00x", b"a\\ud83d"])
        return b'{"texts": ["fine", "' + s + b'"]}', {422}
    raise ValueError(kind)


# protocol category -> weight (share of the inputs)
PROTOCOL = {"invalid_json": 3.0, "wrong_types": 3.0, "oversized_body": 0.3, "too_many_texts": 0.5,
            "too_long_text": 0.5, "lone_surrogate": 1.0}


# ---------------------------------------------------------------------------------------------- checks


def check_result(result: dict, text: str, threshold: float) -> list[str]:
    """What is wrong with one result (empty when nothing is)."""
    problems = []
    if result.get("text") != text:
        problems.append("text differs from the input")
    entities, relations = result.get("entities", []), result.get("relations", [])
    ids = [e.get("id") for e in entities]
    if ids != list(range(len(ids))):
        problems.append(f"entity ids {ids[:10]} are not 0..n-1")
    kept = set()
    for r in relations:
        if r.get("head") not in ids or r.get("tail") not in ids:
            problems.append(f"relation {r} points outside the {len(ids)} entities")
        if not (isinstance(r.get("score"), int | float) and 0 <= r["score"] <= 1):
            problems.append(f"relation score {r.get('score')!r} not in [0, 1]")
        elif r["score"] < threshold:
            problems.append(f"relation score {r['score']} under the threshold {threshold}")
        kept.update((r.get("head"), r.get("tail")))
    for e in entities:
        s, t = e.get("start"), e.get("end")
        if not (isinstance(s, int) and isinstance(t, int) and 0 <= s < t <= len(text)):
            problems.append(f"entity offsets ({s}, {t}) invalid for a text of {len(text)} characters")
        elif text[s:t] != e.get("text"):
            problems.append(f"text[{s}:{t}] = {text[s:t]!r} but entity text {e.get('text')!r}")
        if not (isinstance(e.get("score"), int | float) and 0 <= e["score"] <= 1):
            problems.append(f"entity score {e.get('score')!r} not in [0, 1]")
        elif e["score"] < threshold and e.get("id") not in kept:
            problems.append(f"entity score {e['score']} under the threshold {threshold} and in no kept relation")
    return problems


# ---------------------------------------------------------------------------------------------- runs


def plan(n: int, seed: int, long_each: int) -> tuple[list[tuple[str, str]], list[tuple[str, object, set[int]]]]:
    """The texts (category, text) and the protocol inputs (category, body, expected statuses), seeded."""
    rnd = random.Random(seed)
    names = list(TEXTS) + list(PROTOCOL)
    weights = [w for w, _ in TEXTS.values()] + list(PROTOCOL.values())
    texts, protocol = [], []
    for name in rnd.choices(names, weights, k=max(0, n - long_each * len(LONG_KINDS))):
        if name in TEXTS:
            texts.append((name, TEXTS[name][1](rnd)))
        else:
            protocol.append((name, *_protocol_input(rnd, name)))
    texts += [(kind, _long(rnd, kind)) for kind in LONG_KINDS for _ in range(long_each)]
    return texts, protocol


def fuzz_api(ex, texts: list[tuple[str, str]], report: dict) -> list:
    """Extract every text in-process, 32 at a time (a batch that raises is retried text by text)."""
    out: list = [None] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i][1]))  # the long lines last, alone
    t0 = time.perf_counter()
    for b in range(0, len(order), 32):
        idx = order[b : b + 32]
        try:
            results = ex.extract([texts[i][1] for i in idx], any_script=True)
        except Exception:
            results = []
            for i in idx:
                try:
                    results.extend(ex.extract([texts[i][1]], any_script=True))
                except Exception as e:
                    report["crashes"] += 1
                    report["examples"].append({"category": texts[i][0], "text": texts[i][1][:200],
                                               "error": f"{type(e).__name__}: {e}"})
                    results.append(None)
        for i, r in zip(idx, results, strict=True):
            out[i] = r
            if r is None:
                continue
            problems = check_result(r.to_dict(), texts[i][1], 0.0)
            report["invalid"] += bool(problems)
            if problems:
                report["examples"].append({"category": texts[i][0], "text": texts[i][1][:200], "problems": problems[:5]})
        if (b // 32) % 50 == 0:
            print(f"  api: {b + len(idx)}/{len(texts)} texts, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _fingerprint(model: str) -> list:
    """Size and modification time of each file of the model directory."""
    return sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in Path(model).iterdir() if f.is_file())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, device: str, log_path: Path, extra: list[str] = ()) -> tuple[subprocess.Popen, str]:
    """``python -m anchoralign serve`` on a free loopback port, once /v1/health answers."""
    import httpx

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [sys.executable, "-m", "anchoralign", "serve", "--model", model, "--port", str(port), "--device", device,
           *extra]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not answer /v1/health within 300 s")


def _structure(result: dict) -> tuple:
    ents = [(e["start"], e["end"], e["type"]) for e in result["entities"]]
    return ents, [(ents[r["head"]], ents[r["tail"]], r["type"]) for r in result["relations"]]


def fuzz_server(url: str, texts: list[tuple[str, str]], protocol: list, api: list, seed: int, report: dict) -> None:
    """Send the texts in requests of 1-8 (the long lines alone) with random thresholds, and every protocol input,
    from CLIENTS threads; check each answer."""
    import httpx

    rnd = random.Random(seed + 1)
    requests: list[tuple[str, object, set[int], list[int], float]] = []  # category, body, expected, text idx, t
    short = [i for i, (c, _) in enumerate(texts) if not c.startswith("long_")]
    rnd.shuffle(short)
    i = 0
    while i < len(short):
        idx = short[i : i + rnd.randint(1, 8)]
        i += len(idx)
        t = 0.0 if rnd.random() < 0.5 else round(rnd.random(), 3)
        body = {"texts": [texts[j][1] for j in idx], "threshold": t, "any_script": True}
        requests.append(("texts", _body(body), {200}, idx, t))
    requests += [("texts", _body({"texts": [texts[j][1]], "any_script": True}), {200}, [j], 0.0)
                 for j, (c, _) in enumerate(texts) if c.startswith("long_")]
    requests += [(kind, body, expected, [], 0.0) for kind, body, expected in protocol]
    rnd.shuffle(requests)
    status: dict[str, Counter] = defaultdict(Counter)
    lock = threading.Lock()
    local = threading.local()

    def send(req) -> None:
        kind, body, expected, idx, t = req
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=900)
        headers = {"content-type": "application/json"}
        content = iter(body) if isinstance(body, list) else body
        problems: list[str] = []
        try:
            r = local.client.post(f"{url}/v1/extract", content=content, headers=headers)
        except httpx.HTTPError as e:
            with lock:
                report["transport_errors"] += 1
                report["examples"].append({"category": kind, "error": f"{type(e).__name__}: {e}"})
            local.client = httpx.Client(timeout=900)
            return
        categories = sorted({texts[j][0] for j in idx}) if idx else [kind]
        if r.status_code not in expected:
            problems.append(f"status {r.status_code}, expected {sorted(expected)}: {r.text[:200]}")
        if r.status_code == 200 and idx:
            results = r.json()["results"]
            if len(results) != len(idx):
                problems.append(f"{len(results)} results for {len(idx)} texts")
            for j, res in zip(idx, results, strict=False):
                found = check_result(res, texts[j][1], t)
                problems += found
                if api[j] is not None and t == 0 and not found:
                    mine = api[j].to_dict()
                    with lock:  # bf16 scores move in the 3rd decimal with the batch's padding: compare both ways
                        report["same_as_api"]["identical"] += res == mine
                        report["same_as_api"]["same_spans_types_relations"] += _structure(res) == _structure(mine)
                        report["same_as_api"]["compared"] += 1
        elif r.status_code != 200:
            try:
                error = r.json()["error"]
                assert isinstance(error["message"], str) and error["message"]
            except Exception:
                problems.append(f"error body not {{'error': {{'message': ...}}}}: {r.text[:200]}")
        with lock:
            for c in categories:
                status[c][r.status_code] += 1
            report["requests"] += 1
            report["5xx"] += r.status_code >= 500
            report["unexpected"] += bool(problems)
            if problems and len(report["examples"]) < 50:
                report["examples"].append({"category": ",".join(categories), "problems": problems[:5]})
            if report["requests"] % 500 == 0:
                print(f"  server: {report['requests']}/{len(requests)} requests", file=sys.stderr)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(send, requests))
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["status"] = {c: {str(k): v for k, v in sorted(s.items())} for c, s in sorted(status.items())}
    report["same_as_api"] = dict(report["same_as_api"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="runs/demo", help="a model directory (default: runs/demo)")
    p.add_argument("--n", type=int, default=10_000, help="generated inputs in all (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--long", type=int, default=1, help=f"50k-character lines of each of {LONG_KINDS} (default 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--output", default="results/fuzz_serve.json")
    args = p.parse_args()
    import torch

    import anchoralign
    from anchoralign.model import read_model_config

    read_model_config(args.model)  # not a model directory: one line, exit 2 (run_main), before anything runs
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    texts, protocol = plan(args.n, args.seed, args.long)
    inputs = Counter(c for c, _ in texts) + Counter(c for c, _, _ in protocol)
    print(f"{len(texts)} texts and {len(protocol)} protocol inputs: {dict(sorted(inputs.items()))}", file=sys.stderr)
    api_report = {"texts": len(texts), "crashes": 0, "invalid": 0, "examples": []}
    before = _fingerprint(args.model)
    ex = anchoralign.load(args.model, device=args.device)
    api = fuzz_api(ex, texts, api_report)
    del ex
    server_report = {"requests": 0, "5xx": 0, "transport_errors": 0, "unexpected": 0,
                     "same_as_api": Counter(), "examples": []}
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "serve.log"
        proc, url = start_server(args.model, args.device, log_path)
        try:
            fuzz_server(url, texts, protocol, api, args.seed, server_report)
            server_report["alive_after"] = proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            server_report["exit_status_after_sigterm"] = proc.wait(120)
        finally:
            if proc.poll() is None:
                proc.kill()
        log = log_path.read_text(encoding="utf-8", errors="replace")
        server_report["tracebacks_in_log"] = log.count("Traceback")
    if _fingerprint(args.model) != before:  # then the API and the server read different weights
        server_report["same_as_api"]["note"] = "the model directory changed during the run: not comparable"
    failed = (api_report["crashes"] + api_report["invalid"] + server_report["5xx"] + server_report["transport_errors"]
              + server_report["unexpected"] + server_report["tracebacks_in_log"]
              + (server_report["exit_status_after_sigterm"] != 0) + (not server_report["alive_after"]))
    out = {
        "meta": {"command": " ".join(sys.argv), "date": datetime.now(UTC).isoformat(timespec="seconds"),
                 "model": args.model, "seed": args.seed, "n": args.n, "long_each": args.long,
                 "cpu_capability": torch.backends.cpu.get_cpu_capability(), "nproc": os.cpu_count(),
                 "threads": torch.get_num_threads(), "python": platform.python_version(),
                 "torch": torch.__version__},
        "inputs": dict(sorted(inputs.items())), "api": api_report, "server": server_report, "failed_checks": failed,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in out.items() if k != "server"} | {"server": {
        k: v for k, v in server_report.items() if k not in ("examples", "status")}}, indent=1, ensure_ascii=False)[:4000])
    print(f"wrote {args.output}; failed checks: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
