"""Long documents read in overlapping windows vs the same sentences read one by one (issue 10, English part).

CoNLL04 test sentences are joined (in order, with a space or a line break) into long texts of 10-30 sentences (seeded). Each
long text goes through ``Extractor.extract`` as one text; the same sentences also go through it one per text.
Both outputs are mapped back to (sentence, token span) and scored against gold (NER strict and RE+ strict,
micro), and compared with each other: what the sentence-by-sentence run finds and the long-text run does not is
what was lost at the cuts (or changed by the wider context).

    python benchmarks/long_documents.py --model runs/demo --output results/long_documents_conll04.json
    python benchmarks/long_documents.py --model runs/demo --joiner newline --output results/long_documents_conll04_lines.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import time
from datetime import date
from pathlib import Path


def _spans(doc_text_offset: int, tokens, extraction, sent_of_char) -> tuple[set, set]:
    """Entities (sentence, token start, token end, type) and relations of one extraction."""
    ents, rels = set(), set()
    keys = []
    for e in extraction.entities:
        key = sent_of_char(e.start, e.end)
        keys.append(None if key is None else (*key, e.type))
        if key is not None:
            ents.add((*key, e.type))
    for r in extraction.relations:
        h, t = keys[r.head], keys[r.tail]
        if h is not None and t is not None:
            rels.add((h, t, r.type))
    return ents, rels


def _prf(gold: set, pred: set) -> dict:
    tp = len(gold & pred)
    p = tp / len(pred) if pred else 0.0
    r = tp / len(gold) if gold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "tp": tp,
            "pred": len(pred), "gold": len(gold)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="runs/demo")
    ap.add_argument("--data-dir", default=os.environ.get("ANCHORALIGN_DATA", "../shared/data"))
    ap.add_argument("--min-sentences", type=int, default=10)
    ap.add_argument("--max-sentences", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--joiner", default="space", choices=["space", "newline"],
                    help="what joins the sentences (space: the splitter must find every sentence end itself)")
    ap.add_argument("--passage-sentences", type=int, default=None,
                    help="sentences per window (default: what the model was trained on)")
    ap.add_argument("--output", help="write the figures here as JSON")
    args = ap.parse_args()

    import torch

    import anchoralign
    from anchoralign.cli.common import read_split

    gold = read_split("conll04", "test", args.data_dir)
    rng = random.Random(args.seed)
    groups: list[list[int]] = []
    i = 0
    while i < len(gold):
        n = rng.randint(args.min_sentences, args.max_sentences)
        groups.append(list(range(i, min(i + n, len(gold)))))
        i += n
    ex = anchoralign.load(args.model, device="cpu")
    if args.passage_sentences:
        ex.passage_sentences = args.passage_sentences

    def gold_sets(k: int) -> tuple[set, set]:
        d = gold[k]
        ents = {(k, e.start, e.end, e.type) for e in d.entities}
        rels = {((k, d.entities[r.head].start, d.entities[r.head].end, d.entities[r.head].type),
                 (k, d.entities[r.tail].start, d.entities[r.tail].end, d.entities[r.tail].type), r.type)
                for r in d.relations}
        return ents, rels

    # sentence by sentence: each sentence's own tokens (a Document), one text each
    t0 = time.perf_counter()
    single = ex.extract(gold)
    t_single = time.perf_counter() - t0
    s_ents, s_rels = set(), set()
    for k, (d, out) in enumerate(zip(gold, single, strict=True)):
        def locate(a: int, b: int, d=d, k=k):
            toks = [i for i, t in enumerate(d.tokens) if t.start < b and t.end > a]
            return (k, toks[0], toks[-1] + 1) if toks else None
        e, r = _spans(0, d.tokens, out, locate)
        s_ents |= e
        s_rels |= r

    # long texts: the group's sentences joined with a space, token offsets shifted
    from anchoralign.types import Document, Token

    long_docs, where = [], []
    sep = " " if args.joiner == "space" else "\n"
    for g in groups:
        tokens, text, owner = [], "", []
        for k in g:
            base = len(text) + (1 if text else 0)
            text = f"{text}{sep}{gold[k].text}" if text else gold[k].text
            for j, t in enumerate(gold[k].tokens):
                tokens.append(Token(t.text, t.start + base, t.end + base))
                owner.append((k, j))
        long_docs.append(Document(f"long{len(long_docs)}", text, tokens))
        where.append(owner)
    t0 = time.perf_counter()
    joined = ex.extract(long_docs)
    t_long = time.perf_counter() - t0
    l_ents, l_rels = set(), set()
    windows = cut = truncated = 0
    for d, owner, out in zip(long_docs, where, joined, strict=True):
        windows += out.windows
        cut += out.cut
        truncated += out.truncated

        def locate(a: int, b: int, d=d, owner=owner):
            toks = [i for i, t in enumerate(d.tokens) if t.start < b and t.end > a]
            if not toks or owner[toks[0]][0] != owner[toks[-1]][0]:
                return None  # a span across two sentences: no gold can match it
            return (owner[toks[0]][0], owner[toks[0]][1], owner[toks[-1]][1] + 1)
        e, r = _spans(0, d.tokens, out, locate)
        l_ents |= e
        l_rels |= r

    g_ents, g_rels = set(), set()
    for k in range(len(gold)):
        e, r = gold_sets(k)
        g_ents |= e
        g_rels |= r
    cross = sum(1 for h, t, _ in l_rels if h[0] != t[0])
    report = {
        "what": "CoNLL04 test: long texts of joined sentences read in overlapping windows vs one sentence at a time",
        "model": args.model, "joiner": args.joiner,
        "texts": len(groups), "sentences": len(gold), "sentences_per_text": [len(g) for g in groups],
        "passage": {"tokens": ex.passage_tokens, "sentences": ex.passage_sentences}, "windows": windows, "cut_sentences": cut,
        "truncated_tokens": truncated,
        "sentence_by_sentence": {"ner": _prf(g_ents, s_ents), "re_strict": _prf(g_rels, s_rels), "seconds": t_single},
        "long_texts": {"ner": _prf(g_ents, l_ents), "re_strict": _prf(g_rels, l_rels), "seconds": t_long,
                       "relations_across_sentences": cross},
        "agreement": {
            "entities_only_sentence_by_sentence": len(s_ents - l_ents),
            "entities_only_long": len(l_ents - s_ents),
            "relations_only_sentence_by_sentence": len(s_rels - l_rels),
            "relations_only_long": len(l_rels - s_rels),
            "correct_relations_lost": len((s_rels - l_rels) & g_rels),
            "correct_relations_gained": len((l_rels - s_rels) & g_rels),
        },
        "machine": {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
                    "platform": platform.platform()},
        "date": date.today().isoformat(), "seed": args.seed,
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
