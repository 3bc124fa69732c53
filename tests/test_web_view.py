"""The web view: render.page/read_results and `anchoralign render` (torch-free), and the page itself in a real
Chromium through Playwright (marked `browser`, skipped when /usr/bin/chromium or playwright is missing)."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from anchoralign.cli import main
from anchoralign.errors import InputError
from anchoralign.render import asset, page, parse_results, read_results

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def result(text: str, ents: list[tuple[str, str, float]], rels: list[tuple[int, int, str, float]], **extra) -> dict:
    """An extract result; each entity is found by its text, left to right, so offsets are code points."""
    entities, pos, used = [], 0, set()
    for surface, type_, score in ents:
        start = text.index(surface, pos)
        while (start, start + len(surface)) in used:  # the same surface again: its next occurrence
            start = text.index(surface, start + 1)
        used.add((start, start + len(surface)))
        entities.append({"id": len(entities), "start": start, "end": start + len(surface), "type": type_,
                         "text": surface, "score": score})
        pos = start  # a nested entity may start where the one before it starts
    relations = [{"head": h, "tail": t, "type": ty, "score": s} for h, t, ty, s in rels]
    return {"text": text, "entities": entities, "relations": relations, "errors": {}, "windows": 1, "cut": 0,
            "truncated": 0, **extra}


# Entity 3 ("Boston", 0.30) is kept only by relation 1 (0.60); entity 0 follows an astral emoji.
SENTENCE = result(
    "🙂🎉 John Smith works for Acme Corp in Boston .",
    [("John Smith", "Peop", 0.93), ("Acme Corp", "Org", 0.88), ("Acme", "Org", 0.52), ("Boston", "Loc", 0.30)],
    [(0, 1, "Work_For", 0.71), (1, 3, "OrgBased_In", 0.60)],
)

DEMO_TEXT = (
    "In 1998 , Jane Doe 🙂 moved from Boston to Seattle , where she joined Microsoft as a senior engineer . "
    "Her colleague Bill Gates , who founded Microsoft in Albuquerque , New Mexico , later hired Steve Ballmer . "
    "Meanwhile , the Boston Globe reported that Mayor Thomas Menino met executives of Raytheon , a defense "
    "contractor based in Waltham , Massachusetts , to discuss jobs in Boston . Reuters said Amazon , "
    "headquartered in Seattle , would open an office in Cambridge near Harvard University ."
)
DEMO = result(
    DEMO_TEXT,
    [("Jane Doe", "Peop", 0.97), ("Boston", "Loc", 0.91), ("Seattle", "Loc", 0.95), ("Microsoft", "Org", 0.96),
     ("Bill Gates", "Peop", 0.98), ("Microsoft", "Org", 0.94), ("Albuquerque", "Loc", 0.90),
     ("New Mexico", "Loc", 0.92), ("Steve Ballmer", "Peop", 0.89), ("Boston Globe", "Org", 0.81),
     ("Boston", "Loc", 0.35), ("Thomas Menino", "Peop", 0.93), ("Raytheon", "Org", 0.90), ("Waltham", "Loc", 0.86),
     ("Massachusetts", "Loc", 0.93), ("Boston", "Loc", 0.88), ("Reuters", "Org", 0.84), ("Amazon", "Org", 0.95),
     ("Seattle", "Loc", 0.94), ("Cambridge", "Loc", 0.87), ("Harvard University", "Org", 0.91)],
    [(0, 1, "Live_In", 0.55), (0, 2, "Live_In", 0.83), (0, 3, "Work_For", 0.92), (4, 5, "Work_For", 0.64),
     (5, 6, "OrgBased_In", 0.77), (6, 7, "Located_In", 0.90), (5, 8, "Work_For", 0.41), (9, 10, "OrgBased_In", 0.62),
     (12, 13, "OrgBased_In", 0.86), (13, 14, "Located_In", 0.88), (17, 18, "OrgBased_In", 0.93),
     (19, 20, "Located_In", 0.58), (11, 15, "Live_In", 0.47)],
)


def embedded(doc: str) -> dict:
    m = re.search(r'<script type="application/json" id="anchoralign-data">(.*?)</script>', doc, re.S)
    assert m, "no embedded data"
    return json.loads(m.group(1))


# ---- render.py ----


def test_served_page_loads_relative_assets():
    doc = page(None)
    assert doc == asset("index.html")
    assert 'href="static/view.css"' in doc and 'src="static/view.js"' in doc
    assert "anchoralign-data" not in doc
    for hook in ("aa-text", "aa-extract", "aa-threshold", "aa-error", "aa-results"):
        assert f'id="{hook}"' in doc


def test_static_page_is_self_contained():
    doc = page([SENTENCE], title="<My> & page")
    assert "static/view" not in doc and "http://" not in doc.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in doc
    assert "<title>&lt;My&gt; &amp; page</title>" in doc
    assert asset("view.js") in doc and asset("view.css") in doc
    assert embedded(doc) == {"results": [SENTENCE], "threshold": 0.0}


@pytest.mark.parametrize("text", [
    "a </script><script>alert(1)</script> b",
    "</SCRIPT> <!-- <script> x",
    "emoji 🙂👩‍👩‍👧 flag 🇩🇪",
    "עברית ועוד العربية mixed",
    "line\u2028separator\u2029paragraph",
    "quote \" backslash \\ & < > '",
])
def test_embedded_json_round_trips(text):
    res = {"text": text, "entities": [{"id": 0, "start": 0, "end": 1, "type": "T", "text": text[0], "score": 0.5}],
           "relations": []}
    doc = page([res])
    data_part = doc.split('id="anchoralign-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data_part and "\u2028" not in data_part and "\u2029" not in data_part
    assert embedded(doc)["results"] == [res]


def test_page_rejects_a_threshold_outside_0_1():
    with pytest.raises(ValueError, match="threshold"):
        page([SENTENCE], threshold=1.5)


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_read_results_round_trip(tmp_path):
    old = {"text": "a b", "entities": [{"id": 0, "start": 0, "end": 1, "type": "T", "text": "a"}], "relations": []}
    path = write_jsonl(tmp_path / "out.jsonl", [json.dumps(SENTENCE, ensure_ascii=False), json.dumps(old)])
    assert read_results(path) == [SENTENCE, old]  # a result without scores is fine


GOOD = json.dumps(SENTENCE, ensure_ascii=False)


def bad(**change) -> str:
    rec = json.loads(GOOD)
    rec.update(change)
    return json.dumps({k: v for k, v in rec.items() if v is not None}, ensure_ascii=False)


@pytest.mark.parametrize("line, message", [
    ('{"text": "a", ', "invalid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ("", "blank line"),
    (bad(text=None), 'string "text"'),
    (bad(entities=None), '"entities" list'),
    (bad(entities=[{"id": 0, "start": 40, "end": 99, "type": "T"}]), "outside the text"),
    (bad(entities=[{"id": 0, "start": 5, "end": 15, "type": "T", "text": "John Smith"}], relations=[]),
     "code points"),  # UTF-16 offsets, as JavaScript would count them
    (bad(relations=[{"head": 0, "tail": 7, "type": "R"}]), "tail 7, which is not an entity id"),
    (bad(relations=[{"head": 0, "tail": 1, "type": "R", "score": 1.5}]), "score 1.5"),
])
def test_read_results_names_the_bad_line(tmp_path, line, message):
    path = write_jsonl(tmp_path / "out.jsonl", [GOOD, line, GOOD])
    with pytest.raises(InputError, match=re.escape(message)) as info:
        read_results(path)
    assert str(info.value).startswith(f"{path}: record 1 (line 2): ")
    assert info.value.record == "1 (line 2)"


def test_read_results_empty_and_missing(tmp_path):
    with pytest.raises(InputError, match="empty"):
        parse_results("", "x.jsonl")
    with pytest.raises(InputError, match="cannot read"):
        read_results(tmp_path / "nope.jsonl")


def test_cli_render_writes_a_page(tmp_path, capsys):
    src = write_jsonl(tmp_path / "out.jsonl", [GOOD, json.dumps(DEMO, ensure_ascii=False)])
    out = tmp_path / "page.html"
    assert main(["render", "--input", str(src), "--output", str(out), "--title", "Demo"]) == 0
    doc = out.read_text(encoding="utf-8")
    assert "<title>Demo</title>" in doc
    assert embedded(doc)["results"] == [SENTENCE, DEMO]
    assert main(["render", "--input", str(src), "--output", str(out), "--threshold", "0.5"]) == 0
    assert embedded(out.read_text(encoding="utf-8"))["threshold"] == 0.5


def test_cli_render_bad_input_exits_2_with_one_line(tmp_path, capsys):
    src = write_jsonl(tmp_path / "out.jsonl", [GOOD, "not json"])
    out = tmp_path / "page.html"
    assert main(["render", "--input", str(src), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"anchoralign render: error: {src}: record 1 (line 2): invalid JSON")
    assert not out.exists()


# ---- the page in a real browser ----


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright module is missing (pip install playwright)"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def tab(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.problems = problems
    yield pg
    context.close()
    assert not problems, problems


def screenshot(pg, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    pg.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    if os.environ.get("ANCHORALIGN_SCREENSHOT_DIR"):
        target = Path(os.environ["ANCHORALIGN_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / name)
    return path


def spans(pg) -> list[tuple[str, str, str]]:
    """(text, type, score) of every highlighted span, in document order."""
    return [tuple(x) for x in pg.eval_on_selector_all(
        ".aa-ent", "els => els.map(e => [e.textContent, e.dataset.type, e.dataset.score])")]


def arcs(pg) -> list[tuple[str, str, str, str]]:
    """(head, tail, type, label) of every arc."""
    return [tuple(x) for x in pg.eval_on_selector_all(
        "g.aa-arc", "gs => gs.map(g => [g.dataset.head, g.dataset.tail, g.dataset.type, "
        "g.querySelector('text').textContent, g.querySelector('path') ? 'path' : ''])")]


def set_threshold(pg, value: float) -> None:
    pg.eval_on_selector("#aa-threshold", """(el, v) => { el.value = String(v);
        el.dispatchEvent(new Event('input', {bubbles: true})); }""", value)


def label_overlaps(pg) -> list[str]:
    """Pairs of arc labels (or an arc label and a highlighted span) whose boxes intersect."""
    return pg.evaluate("""() => {
        const boxes = [...document.querySelectorAll('g.aa-arc text')].map(t => [t.textContent, t.getBoundingClientRect()]);
        const ents = [...document.querySelectorAll('.aa-ent')].map(e => [e.textContent, e.getBoundingClientRect()]);
        const hit = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
        const out = [];
        boxes.forEach(([n, a], i) => {
            boxes.slice(i + 1).forEach(([m, b]) => { if (hit(a, b)) out.push(n + ' / ' + m); });
            ents.forEach(([m, b]) => { if (hit(a, b)) out.push(n + ' / span ' + m); });
        });
        return out;
    }""")


@pytest.mark.browser
def test_static_page_in_chromium(tab, tmp_path):
    path = tmp_path / "page.html"
    path.write_text(page([SENTENCE]), encoding="utf-8")
    tab.goto(path.as_uri())
    tab.wait_for_selector("g.aa-arc")
    assert tab.is_hidden("#aa-text")  # static: no text box
    assert spans(tab) == [("John Smith", "Peop", "0.93"), ("Acme Corp", "Org", "0.88"), ("Acme", "Org", "0.52"),
                          ("Boston", "Loc", "0.3")]
    starts = tab.eval_on_selector_all(".aa-ent", "els => els.map(e => [+e.dataset.start, +e.dataset.end])")
    assert starts == [[e["start"], e["end"]] for e in SENTENCE["entities"]]
    assert arcs(tab) == [("0", "1", "Work_For", "Work_For 0.71", "path"),
                         ("1", "3", "OrgBased_In", "OrgBased_In 0.60", "path")]
    assert tab.text_content("#aa-threshold-value") == "0.00"
    assert label_overlaps(tab) == []
    screenshot(tab, tmp_path, "static-sentence.png")

    set_threshold(tab, 0.65)  # above OrgBased_In: its arc goes, and Boston (0.30) with it
    assert tab.text_content("#aa-threshold-value") == "0.65"
    assert arcs(tab) == [("0", "1", "Work_For", "Work_For 0.71", "path")]
    assert [s[0] for s in spans(tab)] == ["John Smith", "Acme Corp"]
    set_threshold(tab, 0.6)  # a relation at exactly the threshold is shown
    assert [a[2] for a in arcs(tab)] == ["Work_For", "OrgBased_In"]
    assert [s[0] for s in spans(tab)] == ["John Smith", "Acme Corp", "Boston"]
    set_threshold(tab, 0.95)
    assert arcs(tab) == [] and spans(tab) == []


@pytest.mark.browser
def test_static_page_shows_counts_nesting_rtl_and_problems(tab, tmp_path):
    nested = result("New York City Council met .", [("New York City Council", "Org", 0.9), ("New York City", "Loc", 0.8),
                                                      ("York", "Loc", 0.2)], [(0, 1, "OrgBased_In", 0.7)],
                    errors={"unplaceable_mention": 2}, windows=3, cut=1, truncated=1)
    rtl = result("ביבי גר בירושלים .", [("ביבי", "Peop", 0.9), ("בירושלים", "Loc", 0.9)], [(0, 1, "Live_In", 0.8)])
    old = {"text": "Ann met Bob", "entities": [{"id": 0, "start": 0, "end": 3, "type": "Peop"},
                                                  {"id": 1, "start": 8, "end": 11, "type": "Peop"},
                                                  {"id": 2, "start": 8, "end": 99, "type": "Peop"}],
           "relations": [{"head": 0, "tail": 1, "type": "Knows"}, {"head": 0, "tail": 9, "type": "Ghost"}]}
    two_lines = result("Ann\nBob", [("Ann", "Peop", 0.9), ("Bob", "Peop", 0.9)], [(0, 1, "Meets", 0.9)])
    path = tmp_path / "page.html"
    path.write_text(page([nested, rtl, old, two_lines]), encoding="utf-8")
    tab.goto(path.as_uri())
    tab.wait_for_selector("g.aa-arc")
    cards = tab.query_selector_all(".aa-result")
    assert len(cards) == 4
    stats = cards[0].eval_on_selector_all(".aa-stat", "els => els.map(e => e.textContent)")
    assert "windows 3" in stats and "cut 1" in stats and "truncated 1" in stats
    assert "errors: unplaceable_mention 2" in stats
    # nested spans: all three drawn, the inner ones inside the outer
    assert [s[0] for s in spans(tab)[:3]] == ["New York City Council", "New York City", "York"]
    assert tab.eval_on_selector_all(".aa-result:nth-child(1) .aa-ent .aa-ent .aa-ent", "els => els.length") == 1
    assert [s[0] for s in spans(tab)[3:5]] == ["ביבי", "בירושלים"]
    # a result without scores: labels are the type alone; a relation to a missing entity is reported
    assert [a[3] for a in arcs(tab)][-1] == "Knows"
    warnings = cards[2].eval_on_selector_all(".aa-warn", "els => els.map(e => e.textContent)")
    assert len(warnings) == 2
    assert "entity 2" in warnings[0] and "outside the text" in warnings[0]
    assert "Ghost" in warnings[1] and "missing" in warnings[1]
    # a newline breaks the line; the relation across it is listed below the text
    assert len(cards[3].query_selector_all(".aa-line")) == 2
    assert cards[3].eval_on_selector_all(".aa-line-text", "els => els.map(e => e.textContent)") == ["Ann ", "Bob"]
    assert cards[3].eval_on_selector_all(".aa-rel-item", "els => els.map(e => e.textContent)") == [
        "Ann (Peop) → Meets 0.90 → Bob (Peop)"]
    assert tab.eval_on_selector_all("#aa-legend .aa-legend-item", "els => els.map(e => e.dataset.type)") == [
        "Loc", "Org", "Peop", "Ghost", "Knows", "Live_In", "Meets", "OrgBased_In"]
    screenshot(tab, tmp_path, "static-mixed.png")


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 700])
def test_demo_page_is_legible(tab, tmp_path, width):
    """About 20 entities and 13 relations over several lines: every span and relation drawn, no labels overlap."""
    tab.set_viewport_size({"width": width, "height": 400})  # the full-page screenshot grows to fit
    path = tmp_path / "demo.html"
    path.write_text(page([DEMO], title="anchoralign: demo"), encoding="utf-8")
    tab.goto(path.as_uri())
    tab.wait_for_selector("g.aa-arc")
    assert [s[0] for s in spans(tab)] == [e["text"] for e in DEMO["entities"]]
    listed = tab.eval_on_selector_all(".aa-rel-item", "els => els.map(e => e.dataset.type)")
    assert len(arcs(tab)) + len(listed) == len(DEMO["relations"])
    assert len(arcs(tab)) >= 8
    assert label_overlaps(tab) == []
    screenshot(tab, tmp_path, f"demo-{width}.png")
    lines = tab.eval_on_selector_all(".aa-line", "els => els.length")
    tab.set_viewport_size({"width": width - 300, "height": 400})  # narrower: laid out again, more lines
    tab.wait_for_function("n => document.querySelectorAll('.aa-line').length > n", arg=lines)
    assert label_overlaps(tab) == []


CANNED = SENTENCE


class _Stub(BaseHTTPRequestHandler):
    """The served page's side of the real server: /, /static/*, POST /v1/extract (422 for text "fail")."""

    requests: list[dict] = []

    def _send(self, status: int, body: str, kind: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        if self.path == "/":
            self._send(200, page(None), "text/html; charset=utf-8")
        elif self.path in ("/static/view.js", "/static/view.css"):
            name = self.path.rsplit("/", 1)[1]
            self._send(200, asset(name), "text/javascript" if name.endswith(".js") else "text/css")
        elif self.path == "/v1/model":
            self._send(200, json.dumps({"model_dir": "/models/conll04-base", "schema": {
                "entity_types": ["Loc", "Org", "Peop"], "relation_types": ["OrgBased_In", "Work_For"]}}),
                "application/json")
        else:
            self._send(404, json.dumps({"error": {"message": "not found"}}), "application/json")

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if self.path != "/v1/extract":
            self._send(404, json.dumps({"error": {"message": "not found"}}), "application/json")
        elif body["texts"] == ["fail"]:
            self._send(422, json.dumps({"error": {"message": "texts[0] is too long <b>x</b>", "field": "texts"}}),
                       "application/json")
        else:
            self._send(200, json.dumps({"results": [dict(CANNED, text=body["texts"][0])]}), "application/json")

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def stub_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Stub.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.mark.browser
def test_served_page_extracts_and_shows_errors(tab, tmp_path, stub_server):
    tab.goto(stub_server)
    tab.wait_for_selector("#aa-model:not([hidden])")
    assert "conll04-base" in tab.text_content("#aa-model") and "Work_For" in tab.text_content("#aa-model")
    assert tab.is_hidden("#aa-error")
    tab.fill("#aa-text", CANNED["text"])
    tab.click("#aa-extract")
    tab.wait_for_selector("g.aa-arc")
    assert _Stub.requests == [{"texts": [CANNED["text"]], "threshold": 0}]
    assert [s[0] for s in spans(tab)] == ["John Smith", "Acme Corp", "Acme", "Boston"]
    assert [a[3] for a in arcs(tab)] == ["Work_For 0.71", "OrgBased_In 0.60"]
    set_threshold(tab, 0.65)  # filters on the client, no new request
    assert [a[3] for a in arcs(tab)] == ["Work_For 0.71"] and len(_Stub.requests) == 1
    screenshot(tab, tmp_path, "served.png")

    tab.fill("#aa-text", "fail")
    tab.click("#aa-extract")
    tab.wait_for_selector("#aa-error:not([hidden])")
    assert tab.text_content("#aa-error") == "HTTP 422: texts[0] is too long <b>x</b>"  # shown as text, not HTML
    assert tab.query_selector("#aa-error b") is None
    assert spans(tab) == []
    tab.problems[:] = [p for p in tab.problems if "422" not in p]  # the browser logs the failed request

