"""benchmarks/split_overlap.py: the shares worked out by hand, and bad input is one line with exit 2."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_split_overlap_counts_by_hand() -> None:
    """Two hand-made splits, the shares worked out here."""
    from anchoralign.types import Document, Entity, Relation, Token

    def doc(words: list[str], ents: list[tuple[int, int, str]], rels: list[tuple[int, int, str]]) -> Document:
        tokens, at = [], 0
        for w in words:
            tokens.append(Token(w, at, at + len(w)))
            at += len(w) + 1
        entities = [Entity(a, b, t, tokens[a].start, tokens[b - 1].end) for a, b, t in ents]
        return Document("d", " ".join(words), tokens, entities, [Relation(h, t, r) for h, t, r in rels])

    train = [doc(["Ann", "works", "for", "Acme"], [(0, 1, "Peop"), (3, 4, "Org")], [(0, 1, "Work_For")]),
             doc(["Bob", "lives", "in", "Rome"], [(0, 1, "Peop"), (3, 4, "Loc")], [(0, 1, "Live_In")])]
    test = [doc(["ann", "works", "for", "Acme"], [(0, 1, "Peop"), (3, 4, "Org")], [(0, 1, "Work_For")]),  # all seen
            doc(["Ann", "lives", "in", "Rome"], [(0, 1, "Peop"), (3, 4, "Org")], [(0, 1, "Live_In")]),  # Rome/Org new
            doc(["Cy", "lives", "in", "Oslo"], [(0, 1, "Peop"), (3, 4, "Loc")], [(0, 1, "Live_In")])]
    spec = importlib.util.spec_from_file_location("split_overlap", REPO / "benchmarks" / "split_overlap.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    r = mod.overlap(train, test)
    assert (r["mentions"], r["relations"]) == (6, 3)
    assert r["mentions_in_train"] == 3 / 6  # ann/Peop, Acme/Org, Ann/Peop; not Rome/Org, Cy, Oslo
    assert r["argument_pairs_in_train"] == 2 / 3  # (ann, acme), (ann, rome): strings regardless of type
    assert r["triples_in_train"] == 1 / 3  # (ann, Work_For, acme)


def test_a_missing_data_dir_is_one_line_and_exit_2(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "split_overlap.py"), "--dataset", "conll04",
         "--data-dir", str(tmp_path / "nowhere")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
