"""Chinese Literature test as whole documents: overlapping windows vs cut-and-concatenate (issue 10, part 2).

Each test file is read whole (``read_brat`` with no passage limit), so gold holds every entity and relation of
the file, including the relations whose arguments the benchmark's 250-character passages put in different
passages (``cross_passage_relation``: the reader drops those from the passage-level benchmark). The model then
reads each file two ways:

- ``cut``: today's cut-and-concatenate: the file cut into the benchmark's passages (``read_brat`` default,
  ``pack_passages``: at most 250 characters, never inside an entity), each passage extracted on its own, the
  results shifted to file offsets and concatenated. A relation across two passages cannot be found.
- ``windows``: the whole file as one text through ``Extractor.extract``: windows of whole sentences shaped like
  the training passages, neighbouring windows sharing a sentence, merged by character span.

Both are scored at document level against the whole-file gold (NER strict and RE+ strict, micro, on character
spans), and the gold cross-passage relations each recovers are counted.

    python benchmarks/long_documents_zh.py --model runs/benchmarks/chinese_literature \\
        --output results/long_documents_chinese_literature.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from datetime import date
from pathlib import Path

from long_documents import _prf  # the English benchmark's P/R/F1 over sets (this directory)


def _doc_sets(name: str, doc, offset: int = 0) -> tuple[set, set]:
    """Gold (or predicted Document) entities and relations keyed by file and character span."""
    ents = [(name, e.char_start + offset, e.char_end + offset, e.type) for e in doc.entities]
    rels = {(ents[r.head], ents[r.tail], r.type) for r in doc.relations}
    return set(ents), rels


def _extraction_sets(name: str, ex, offset: int = 0) -> tuple[set, set]:
    ents = [(name, e.start + offset, e.end + offset, e.type) for e in ex.entities]
    rels = {(ents[r.head], ents[r.tail], r.type) for r in ex.relations}
    return set(ents), rels


def _reachable(ex, docs, cross: set) -> int:
    """How many of the ``cross`` relations have both arguments inside one of the windows ``Extractor.extract``
    reads (``Extractor.plan``), without decoding."""
    from anchoralign.data.tokenize import tokenize_text

    spans: dict[str, list[tuple[int, int]]] = {}
    for d in docs:
        tokens = tokenize_text(d.text)  # as extract() tokenizes a string
        spans[d.meta["doc_id"]] = [(tokens[a].start, tokens[b - 1].end) for a, b in ex.plan(tokens, d.text).ranges]
    n = 0
    for (h, t, _) in cross:  # ((file, start, end, type), (file, start, end, type), relation)
        lo, hi = min(h[1], t[1]), max(h[2], t[2])
        n += any(a <= lo and hi <= b for a, b in spans[h[0]])
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="runs/benchmarks/chinese_literature")
    ap.add_argument("--data-dir", default=os.environ.get("ANCHORALIGN_DATA", "../shared/data"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None, help="only the first N files (a smoke run)")
    ap.add_argument("--output", help="write the figures here as JSON")
    args = ap.parse_args()

    import torch

    import anchoralign
    from anchoralign.data.brat import read_brat

    folder = Path(args.data_dir) / "chinese_literature" / args.split
    whole = read_brat(folder, max_chars=10**9)  # one document per file
    cut = read_brat(folder)  # the benchmark's passages
    files = sorted({d.meta["doc_id"] for d in whole.documents})
    if args.limit:
        files = files[: args.limit]
    keep = set(files)
    whole_docs = [d for d in whole.documents if d.meta["doc_id"] in keep]
    passages = [d for d in cut.documents if d.meta["doc_id"] in keep]

    g_ents, g_rels = set(), set()
    for d in whole_docs:
        e, r = _doc_sets(d.meta["doc_id"], d)
        g_ents |= e
        g_rels |= r
    # gold relations whose arguments lie in different benchmark passages
    passage_of: dict[tuple, int] = {}
    for k, p in enumerate(passages):
        for e in p.entities:
            passage_of[(p.meta["doc_id"], e.char_start + p.meta["offset"], e.char_end + p.meta["offset"], e.type)] = k
    cross = {r for r in g_rels if passage_of.get(r[0]) is not None and passage_of.get(r[1]) is not None
             and passage_of[r[0]] != passage_of[r[1]]}
    unplaced = {r for r in g_rels if r[0] not in passage_of or r[1] not in passage_of}

    ex = anchoralign.load(args.model, device="cpu")
    reachable = _reachable(ex, whole_docs, cross)

    t0 = time.perf_counter()
    out_cut = ex.extract(passages)
    t_cut = time.perf_counter() - t0
    c_ents, c_rels = set(), set()
    for p, out in zip(passages, out_cut, strict=True):
        e, r = _extraction_sets(p.meta["doc_id"], out, p.meta["offset"])
        c_ents |= e
        c_rels |= r

    t0 = time.perf_counter()
    out_win = ex.extract([d.text for d in whole_docs])
    t_win = time.perf_counter() - t0
    w_ents, w_rels = set(), set()
    windows = cut_sentences = truncated = 0
    errors: dict[str, int] = {}
    for d, out in zip(whole_docs, out_win, strict=True):
        e, r = _extraction_sets(d.meta["doc_id"], out)
        w_ents |= e
        w_rels |= r
        windows += out.windows
        cut_sentences += out.cut
        truncated += out.truncated
        for k, n in out.errors.items():
            errors[k] = errors.get(k, 0) + n

    def commit() -> str:
        try:
            return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    result = {
        "benchmark": "long_documents_chinese_literature",
        "model": args.model,
        "split": args.split,
        "files": len(whole_docs),
        "characters": sum(len(d.text) for d in whole_docs),
        "gold": {"entities": len(g_ents), "relations": len(g_rels), "cross_passage_relations": len(cross),
                 "relations_with_an_argument_no_passage_holds": len(unplaced)},
        "reader_warnings": {"whole_files": dict(whole.warnings), "passages": dict(cut.warnings)},
        "cut_and_concatenate": {
            "passages": len(passages), "seconds": round(t_cut, 1),
            "ner": _prf(g_ents, c_ents), "re_strict": _prf(g_rels, c_rels),
            "cross_passage_relations_found": len(cross & c_rels),
        },
        "windows": {
            "windows": windows, "sentences_cut": cut_sentences, "tokens_truncated": truncated, "errors": errors,
            "seconds": round(t_win, 1),
            "ner": _prf(g_ents, w_ents), "re_strict": _prf(g_rels, w_rels),
            "cross_passage_relations_found": len(cross & w_rels),
            # cross-passage gold relations with both arguments inside one window (readable by the windows)
            "cross_passage_relations_in_one_window": reachable,
        },
        "passage": {"tokens": ex.passage_tokens, "sentences": ex.passage_sentences},
        "commit": commit(),
        "date": date.today().isoformat(),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()},
    }
    for name in ("cut_and_concatenate", "windows"):
        r = result[name]
        print(f"{name:20s} NER {100 * r['ner']['f1']:6.2f}  RE+ {100 * r['re_strict']['f1']:6.2f} "
              f"(P {100 * r['re_strict']['precision']:.2f} R {100 * r['re_strict']['recall']:.2f})  "
              f"cross-passage found {r['cross_passage_relations_found']} of {len(cross)}  {r['seconds']} s")
    print(f"cross-passage relations with both arguments in one window: {reachable} of {len(cross)}")
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
