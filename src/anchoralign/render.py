"""The web view of extraction results: one self-contained HTML page, offline, no framework.

``page(results)`` embeds ``extract`` results with the page's script and style inlined (static mode, what
``anchoralign render`` writes); ``page(None)`` is the served page, which loads ``static/view.js`` and
``static/view.css`` and posts its text to ``v1/extract``. The assets live in ``anchoralign/web/``; what the
page shows is described in docs/web-view.md. Torch-free.
"""

from __future__ import annotations

import html
import json
import math
from importlib.resources import files
from pathlib import Path

from .errors import InputError

__all__ = ["asset", "check_result", "page", "parse_results", "read_results"]

_STYLE_LINK = '<link rel="stylesheet" href="static/view.css">'
_SCRIPT_TAG = '<script src="static/view.js"></script>'
_TITLE = "<title>anchoralign</title>"
_HEADING = '<h1 id="aa-title">anchoralign</h1>'


def asset(name: str) -> str:
    """The text of one file of the web view: ``index.html``, ``view.js`` or ``view.css``."""
    return (files("anchoralign") / "web" / name).read_text(encoding="utf-8")


def _embed_json(value: object) -> str:
    """JSON that is safe inside a ``<script>`` element: no ``<`` can open ``</script>`` or ``<!--``, and
    U+2028/U+2029 are escaped (older JavaScript parsers end a line there)."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    # "<" only occurs inside JSON strings, where \u003c means the same character.
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise RuntimeError(f"web/index.html should contain {old!r} exactly once")
    return text.replace(old, new)


def page(results: list[dict] | None, title: str = "anchoralign", *, threshold: float = 0.0) -> str:
    """The HTML page: ``results`` embedded with everything inlined, or with ``None`` the served page.

    ``threshold`` is where the slider starts in a static page (it still moves from 0 to 1)."""
    doc = asset("index.html")
    if title != "anchoralign":
        doc = _replace_once(doc, _TITLE, f"<title>{html.escape(title)}</title>")
        doc = _replace_once(doc, _HEADING, f'<h1 id="aa-title">{html.escape(title)}</h1>')
    if results is None:
        return doc
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    script, style = asset("view.js"), asset("view.css")
    # An inlined asset must not close its own element early.
    if "</script" in script.lower() or "</style" in style.lower():
        raise RuntimeError("web/view.js or web/view.css contains a closing tag and cannot be inlined")
    data = _embed_json({"results": results, "threshold": threshold})
    doc = _replace_once(doc, _STYLE_LINK, f"<style>\n{style}</style>")
    return _replace_once(
        doc,
        _SCRIPT_TAG,
        f'<script type="application/json" id="anchoralign-data">{data}</script>\n<script>\n{script}</script>',
    )


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_score(x: dict, what: str) -> str | None:
    if "score" not in x:
        return None
    s = x["score"]
    if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s) or not 0 <= s <= 1:
        return f"{what} has score {s!r}, expected a number in [0, 1]"
    return None


def check_result(rec: object) -> str | None:
    """What is wrong with one ``extract`` result, or None: the checks ``read_results`` makes."""
    if not isinstance(rec, dict):
        return f"expected a JSON object, got {type(rec).__name__}"
    text = rec.get("text")
    if not isinstance(text, str):
        return 'missing a string "text" field'
    ents = rec.get("entities")
    if not isinstance(ents, list):
        return 'missing an "entities" list'
    rels = rec.get("relations", [])
    if not isinstance(rels, list):
        return '"relations" is not a list'
    for key in ("windows", "cut", "truncated"):
        if key in rec and (not _is_int(rec[key]) or rec[key] < 0):
            return f'"{key}" is {rec[key]!r}, expected a count'
    if "errors" in rec and not isinstance(rec["errors"], dict):
        return f'"errors" is {rec["errors"]!r}, expected an object of counts'
    for i, e in enumerate(ents):
        if not isinstance(e, dict):
            return f"entity {i} is not an object"
        if "id" in e and e["id"] != i:
            return f"entity {i} has id {e['id']!r}; ids must be 0, 1, 2, ... in order"
        start, end = e.get("start"), e.get("end")
        if not (_is_int(start) and _is_int(end)):
            return f'entity {i} needs integer "start" and "end", got {start!r} and {end!r}'
        if not 0 <= start < end <= len(text):
            return f"entity {i} has offsets [{start}, {end}) outside the text of {len(text)} characters"
        if not isinstance(e.get("type"), str):
            return f'entity {i} has no string "type"'
        if "text" in e and e["text"] != text[start:end]:
            return (f"entity {i} has text {e['text']!r} but the text at [{start}, {end}) is "
                    f"{text[start:end]!r} (offsets must count code points)")
        if problem := _check_score(e, f"entity {i}"):
            return problem
    for i, r in enumerate(rels):
        if not isinstance(r, dict):
            return f"relation {i} is not an object"
        for end in ("head", "tail"):
            k = r.get(end)
            if not _is_int(k) or not 0 <= k < len(ents):
                return f"relation {i} has {end} {k!r}, which is not an entity id (there are {len(ents)} entities)"
        if not isinstance(r.get("type"), str):
            return f'relation {i} has no string "type"'
        if problem := _check_score(r, f"relation {i}"):
            return problem
    return None


def parse_results(raw: str, path: object = "<input>") -> list[dict]:
    """``extract`` output (JSON Lines, one result per line) -> the results; any bad line is an InputError."""
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start another
    if not lines:
        raise InputError("no results: the input is empty", path=path)
    results = []
    for i, line in enumerate(lines):
        record = f"{i} (line {i + 1})"
        line = line.rstrip("\r")
        if not line.strip():
            raise InputError("blank line; every line must hold one extract result", path=path, record=record)
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, record=record) from None
        if problem := check_result(rec):
            raise InputError(problem, path=path, record=record)
        results.append(rec)
    return results


def read_results(path: str | Path) -> list[dict]:
    """Read ``anchoralign extract`` output from a JSON Lines file, checking every line."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path=path) from None
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 (byte {e.start})", path=path) from None
    return parse_results(raw, path)
