"""``anchoralign evaluate``: decode a split with a trained model and score it by the dataset's protocol."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InputError
from ..protocols import PROTOCOLS
from .common import add_data_arguments, decode_config, is_tty, read_file, read_split


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a model directory written by `anchoralign train`")
    add_data_arguments(p, split=True)
    p.add_argument("--input", help="own gold file instead of --dataset")
    p.add_argument("--format", default="jsonl", help="format of --input")
    p.add_argument("--protocol", choices=list(PROTOCOLS),
                   help="score by this protocol (default: the dataset's; micro for --input)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.add_argument("--predictions", help="write the predictions here as SpERT JSON (readable by `score`)")
    p.add_argument("--output", help="also write the JSON scores to this file")
    p.add_argument("--no-constraint", action="store_true", help="decode without the grammar constraint")
    p.add_argument("--beams", type=int, default=None, help="beam size (default: the model's config)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="decode.KEY=VALUE",
                   help="override a decode setting of the model's config, e.g. decode.tagger_spans=true (repeatable)")


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..data.registry import dataset_protocol
    from ..evaluation import evaluate_documents
    from ..metrics import format_table
    from ..model import load_model
    from ..protocols import get_protocol

    model = load_model(args.model)
    run_cfg = json.loads((Path(args.model) / "model_config.json").read_text()).get("run", {})
    decode = decode_config(args)  # as the model was evaluated, with the command line's changes
    if args.input:
        gold = read_file(args.input, args.format)
        name = args.input
        protocol = get_protocol(args.protocol or "micro")
    else:
        dataset = args.dataset or run_cfg.get("dataset")
        if not dataset:
            raise InputError("give --dataset NAME or --input FILE")
        protocol = get_protocol(args.protocol) if args.protocol else dataset_protocol(dataset)
        gold = read_split(dataset, args.split, args.data_dir)
        name = f"{dataset}/{args.split}"
    with tqdm(total=len(gold), desc="evaluate", disable=not is_tty()) as bar:
        scores, preds = evaluate_documents(model, gold, model.schema, decode, progress=bar.update,
                                           protocol=protocol)
    if args.predictions:
        Path(args.predictions).write_text(json.dumps([d.to_spert() for d in preds], ensure_ascii=False) + "\n",
                                          encoding="utf-8")
    text = json.dumps(scores, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    if args.json:
        print(text)
    else:
        title = f"{name} ({'constrained' if decode.constrained else 'unconstrained'} decoding)"
        print(protocol.format(scores["figures"], title))
        tasks = {t: scores[t] for t in ("ner", "re", "re_strict")}
        print(format_table(tasks, f"{title}; every token-span figure, micro, macro and per type"))
        print(f"malformed generated pieces: {scores['malformed']} {scores['malformed_by_kind'] or ''}")
        if decode.relation_threshold > 0:
            print(f"relations left out for scoring under decode.relation_threshold {decode.relation_threshold}: "
                  f"{scores['relations_below_threshold']}")
        if decode.pair_relations != "off":
            pair = scores.get("pair_relations", {"added": 0, "replaced": 0, "vetoed": 0})
            print(f"pair classifier (decode.pair_relations {decode.pair_relations}, threshold "
                  f"{decode.pair_threshold}): {pair['added']} relations added, {pair['replaced']} decoder "
                  "relations replaced" + (f", {pair['vetoed']} relations left out under "
                                          f"decode.pair_veto {decode.pair_veto}" if decode.pair_veto > 0 else ""))
        if decode.entity_threshold > 0:
            print(f"entities in no relation left out for scoring under decode.entity_threshold "
                  f"{decode.entity_threshold}: {scores['entities_below_threshold']}")
        print(f"constraint violations in the predictions: {scores['violations']}")
        if "anchor_scorer" in scores:
            a = scores["anchor_scorer"]
            print(f"anchor scorer vs gold anchors: P {a['precision']:.4f} R {a['recall']:.4f} F1 {a['f1']:.4f}; "
                  f"candidate-start recall {a['candidate_recall']:.4f} ({a['gold_anchors']} gold anchors)")
    return 0
