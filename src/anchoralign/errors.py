"""The one exception type for bad user input; the CLI (and every script under benchmarks/, through
``run_main``) prints its message on one line and exits 2."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

__all__ = ["InputError", "run_main"]


class InputError(ValueError):
    """A user's file or argument is wrong: the message names the file, the record and what is wrong."""

    def __init__(self, message: str, *, path: object | None = None, record: object | None = None) -> None:
        where = []
        if path is not None:
            where.append(str(path))
        if record is not None:
            where.append(f"record {record}")
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.path = path
        self.record = record


def run_main(main: Callable[[], int | None], prog: str | None = None) -> int:
    """Run a command-line entry point: its exit status, or, for an ``InputError`` it raises, the message on one
    line of stderr (``prog: error: ...``, as argparse words its own errors) and exit status 2; Ctrl-C: 130.
    ``prog``: the script's file name by default."""
    prog = prog or os.path.basename(sys.argv[0]) or "anchoralign"
    try:
        return int(main() or 0)
    except InputError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
