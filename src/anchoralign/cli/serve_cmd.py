"""``anchoralign serve``: a model directory served over HTTP (``POST /v1/extract``, a web view at ``/``).

Limits come from the defaults, then a ``--config`` file's ``serve:`` section, then the flags. Needs the
``serve`` extra (fastapi, uvicorn)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InputError

EXTRA_HINT = "install the serve extra: pip install 'anchoralign[serve]'"

# ServeLimits field -> (type, help); kept here so that `--help` works without the extra installed
LIMIT_FLAGS: dict[str, tuple[type, str]] = {
    "max_body_bytes": (int, "largest request body in bytes (default 1 MiB); over it: 413"),
    "max_texts": (int, "most texts in one request (default 64); over it: 413"),
    "max_chars": (int, "most characters in one text (default 100000); over it: 413"),
    "max_queue": (int, "most texts waiting for the model, all requests together (default 1024); over it: 503"),
    "max_batch_texts": (int, "most texts decoded together (default 32)"),
    "batch_wait_ms": (float, "how long the worker waits to fill a batch once it has a text (default 5)"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a model directory written by `anchoralign train`")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument("--config", help="a YAML or JSON file whose `serve:` section sets the limits (flags override)")
    for name, (kind, help_text) in LIMIT_FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None, help=help_text)


def config_limits(path: str) -> dict:
    """The ``serve:`` section of a YAML or JSON file (empty when the file has none); unknown keys are errors."""
    import yaml

    try:
        raw = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path=path) from None
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 (byte {e.start})", path=path) from None
    try:
        data = json.loads(raw) if path.endswith(".json") else yaml.safe_load(raw)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg} (line {e.lineno})", path=path) from None
    except yaml.YAMLError as e:
        raise InputError(f"invalid YAML: {str(e).splitlines()[0]}", path=path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("expected a mapping with a `serve:` section", path=path)
    section = data.get("serve") or {}
    if not isinstance(section, dict):
        raise InputError(f"`serve` must be a mapping, got {type(section).__name__}", path=path)
    unknown = sorted(set(section) - set(LIMIT_FLAGS))
    if unknown:
        raise InputError(f"unknown key serve.{unknown[0]}; known: {', '.join(LIMIT_FLAGS)}", path=path)
    return dict(section)


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise InputError(EXTRA_HINT) from None
    from ..serve import ServeLimits, serve

    values = config_limits(args.config) if args.config else {}
    values.update({name: getattr(args, name) for name in LIMIT_FLAGS if getattr(args, name) is not None})
    limits = ServeLimits(**values)  # checks each value, naming the field
    serve(args.model, host=args.host, port=args.port, limits=limits, device=args.device)
    return 0
