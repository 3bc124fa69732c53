"""The one exception type for bad user input; the CLI prints its message on one line and exits 2."""

from __future__ import annotations

__all__ = ["InputError"]


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
