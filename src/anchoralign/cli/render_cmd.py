"""``anchoralign render``: ``extract`` output (JSON Lines) in, one self-contained HTML page out.

The page highlights the entities, draws the relations as arcs and has a threshold slider; it needs no
network. See docs/web-view.md."""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", help="JSON Lines written by `anchoralign extract` (default: stdin)")
    p.add_argument("--output", help="the HTML page to write (default: stdout)")
    p.add_argument("--title", default="anchoralign", help="the page's title (default: %(default)s)")
    p.add_argument("--threshold", type=float, default=0.0,
                   help="where the page's threshold slider starts, in [0, 1] (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from ..render import page, parse_results, read_results

    if not 0.0 <= args.threshold <= 1.0:
        raise InputError(f"--threshold must be in [0, 1], got {args.threshold}")
    if args.input:
        results = read_results(args.input)
    else:
        results = parse_results(sys.stdin.read(), "<stdin>")
    text = page(results, args.title, threshold=args.threshold)
    if not args.output:
        sys.stdout.write(text)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise InputError(f"cannot write: {e.strerror}", path=args.output) from None
    print(f"anchoralign render: wrote {len(results)} result(s) to {args.output}", file=sys.stderr)
    return 0
