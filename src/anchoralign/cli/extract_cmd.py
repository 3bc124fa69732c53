"""``anchoralign extract``: text lines (or JSON Lines with "text") in, one JSON object per line out.

Under ``torchrun``/``accelerate launch`` each process extracts its share of the lines and the main process
writes the one output, in input order."""

from __future__ import annotations

import argparse
import json
import sys

from ..distributed import launched_world_size
from ..errors import InputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a model directory written by `anchoralign train`")
    p.add_argument("--input", help="text lines or JSON Lines with a \"text\" field (default: stdin)")
    p.add_argument("--output", help="JSON Lines output (default: stdout)")
    p.add_argument("--jsonl", action="store_true", help="input is JSON Lines (default: guess from the first line)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the model's config")
    p.add_argument("--threshold", type=float, default=0.0,
                   help="leave out relations scoring under this, and entities that do unless a kept relation "
                        "needs them (0-1, default 0: keep everything)")
    p.add_argument("--beams", type=int, default=None, help="beam size (default: the model's config)")
    p.add_argument("--no-constraint", action="store_true", help="decode without the grammar constraint")
    p.add_argument("--any-script", action="store_true",
                   help="read lines whose letters are mostly in scripts the model's training data does not hold "
                        "(default: refuse them, naming the line)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="decode.KEY=VALUE",
                   help="override a decode setting of the model's config (repeatable)")


def _texts(lines: list[str], jsonl: bool | None, path: str) -> list[str]:
    if jsonl is None:
        first = next((ln for ln in lines if ln.strip()), "")
        jsonl = first.lstrip().startswith("{")
    if not jsonl:
        return lines
    texts = []
    for i, line in enumerate(lines):
        if not line.strip():
            texts.append("")
            continue
        record = f"{i} (line {i + 1})"  # every line is a record, blank ones included (each gets an output line)
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, record=record) from None
        if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
            raise InputError('expected an object with a string "text" field', path=path, record=record)
        texts.append(rec["text"])
    return texts


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..api import Extractor
    from .common import decode_config

    path = args.input or "<stdin>"
    if launched_world_size() > 1 and not args.input:
        raise InputError("under a distributed launch give --input (standard input reaches one process only)")
    try:
        raw = open(args.input, encoding="utf-8").read() if args.input else sys.stdin.read()  # noqa: SIM115
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path=path) from None
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 (byte {e.start})", path=path) from None
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start another
    lines = [ln.rstrip("\r") for ln in lines]
    texts = _texts(lines, True if args.jsonl else None, path)
    if not 0.0 <= args.threshold <= 1.0:
        raise InputError(f"--threshold must be in [0, 1], got {args.threshold}")
    decode = decode_config(args)  # as the model was evaluated, with the command line's changes
    if not args.any_script:
        _check_scripts(args.model, texts, path)  # before the model loads
    if launched_world_size() > 1:
        results = _extract_sharded(args.model, decode, texts, args.threshold)
        if results is None:
            return 0  # not the main process: it wrote nothing
    else:
        extractor = Extractor.load(args.model, decode=decode)
        with tqdm(desc="extract", unit="passage", disable=not sys.stderr.isatty()) as bar:
            results = extractor.extract(texts, threshold=args.threshold, progress=bar.update, any_script=True)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        for r in results:
            out.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
    finally:
        if args.output:
            out.close()
    _report(results)
    return 0


def _check_scripts(model: str, texts: list[str], path: str) -> None:
    """Refuse the input when a line's letters are mostly in scripts the model's training data does not hold:
    the first such line named, and how many there are."""
    from ..api import saved_scripts

    check = saved_scripts(model)  # decode_config has read the model's config: a missing model is named already
    bad = list(check.problems(texts)) if check is not None else []
    if bad:
        i, why = bad[0]
        more = f"; {len(bad) - 1} more line(s) like it" if len(bad) > 1 else ""
        raise InputError(f"{why}{more} (--any-script reads them anyway)", path=path, record=f"{i} (line {i + 1})")


def _report(results) -> None:
    """What could not be read, summed over the texts, on stderr (each text's own counts are in its line)."""
    errors: dict[str, int] = {}
    for r in results:
        for kind, n in r.errors.items():
            errors[kind] = errors.get(kind, 0) + n
    if errors:
        print(f"anchoralign extract: malformed generated pieces: {errors}", file=sys.stderr)
    cut = sum(r.cut for r in results)
    truncated = sum(r.truncated for r in results)
    if cut or truncated:
        print(f"anchoralign extract: {cut} sentence(s) longer than a passage read in overlapping pieces; "
              f"{truncated} token(s) past the encoder's input not read", file=sys.stderr)


def _extract_sharded(model: str, decode, texts: list[str], threshold: float) -> list | None:
    """Under a distributed launch: each process extracts a contiguous share of the texts on its own device;
    the main process gets every result in input order (the others get None)."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object
    from tqdm.auto import tqdm

    from ..api import Extractor

    state = PartialState(cpu=not torch.cuda.is_available())
    extractor = Extractor.load(model, device=state.device, decode=decode)
    with state.split_between_processes(list(range(len(texts)))) as mine:
        show = state.is_main_process and sys.stderr.isatty()
        with tqdm(desc="extract", unit="passage", disable=not show) as bar:
            results = extractor.extract([texts[i] for i in mine], threshold=threshold, progress=bar.update,
                                        any_script=True)  # run() checked the scripts
    results = gather_object(results)  # rank order: the shares are contiguous, so this is input order
    return results if state.is_main_process else None
