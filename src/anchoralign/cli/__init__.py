"""The ``anchoralign`` command: a thin face over the library.

Each subcommand lives in its own module with ``add_arguments(parser)`` and ``run(args) -> int``; modules are
imported only when their command runs, so ``anchoralign score`` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys

from ..distributed import launched_rank
from ..errors import run_main

__all__ = ["main"]

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "datasets": ("anchoralign.cli.datasets_cmd", "list the benchmarks with their counts and reader warnings"),
    "validate": ("anchoralign.cli.validate_cmd", "check a data file and print a summary or its first problems"),
    "score": ("anchoralign.cli.score_cmd", "score SpERT-JSON predictions against gold (NER, RE, RE+)"),
    "train": ("anchoralign.cli.train_cmd", "train a model on a dataset"),
    "evaluate": ("anchoralign.cli.evaluate_cmd", "evaluate a trained model on a dataset split"),
    "extract": ("anchoralign.cli.extract_cmd", "extract entities and relations from raw text lines"),
    "experiment": ("anchoralign.cli.experiment_cmd", "run the ablation experiment (variants x seeds)"),
    "benchmark": ("anchoralign.cli.benchmark_cmd", "train and evaluate the benchmark suite; writes results/benchmarks.json"),
    "calibrate": ("anchoralign.cli.calibrate_cmd", "check a model's score calibration on dev; fit and save a temperature"),
    "probe": ("anchoralign.cli.probe_cmd", "how often a model outputs relations in sentences that state none"),
    "veto": ("anchoralign.cli.veto_cmd", "fit a trained model's statement veto on sentences that state no relation"),
    "render": ("anchoralign.cli.render_cmd", "write an HTML page showing extract output (entities, relation arcs, scores)"),
    "serve": ("anchoralign.cli.serve_cmd", "serve extraction over HTTP (POST /v1/extract) with a web view at /"),
}


def _available() -> dict[str, tuple[str, str]]:
    return {n: v for n, v in COMMANDS.items() if importlib.util.find_spec(v[0]) is not None}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run one subcommand; user errors print one line and exit 2."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="anchoralign", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    available = _available()
    for name, (_, help_text) in available.items():
        sub.add_parser(name, help=help_text, add_help=False)  # the command's own parser answers --help
    # Parse the command name first, then let its module add its own arguments.
    known, _ = parser.parse_known_args(argv)
    if known.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(available[known.command][0])
    full = argparse.ArgumentParser(prog=f"anchoralign {known.command}", description=available[known.command][1])
    full.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    module.add_arguments(full)
    cmd_index = argv.index(known.command)
    args = full.parse_args(argv[:cmd_index] + argv[cmd_index + 1 :])
    args.argv = list(argv)  # the command line as given: `train --processes N` runs it again in N processes
    level = logging.DEBUG if args.verbose else logging.INFO
    if launched_rank() > 0:
        level = logging.ERROR  # under a distributed launch the main process alone reports
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    return run_main(lambda: module.run(args), f"anchoralign {known.command}")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
