"""The web view against the real server and a real (tiny, trained) model, in Chromium: typing a sentence and
pressing Extract shows its entities highlighted and its relations as arcs (issue 10)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from .test_api import _train_tiny
from .test_web_view import arcs, browser, screenshot, spans, tab  # noqa: F401 - fixtures

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    import uvicorn

    import anchoralign
    from anchoralign.serve import ServeLimits, create_app

    model = _train_tiny(tmp_path_factory.mktemp("served") / "run")
    app = create_app(anchoralign.load(model, device="cpu"), ServeLimits())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


def test_typed_sentence_shows_spans_and_arcs(server_url, tab, tmp_path) -> None:  # noqa: F811
    tab.goto(server_url)
    tab.fill("#aa-text", "John Smith works for Acme Corp in Boston .")
    tab.click("#aa-extract")
    tab.wait_for_selector("g.aa-arc", timeout=20_000)
    got = [(text, type_) for text, type_, _ in spans(tab)]
    assert got == [("John Smith", "Peop"), ("Acme Corp", "Org"), ("Boston", "Loc")], got
    labels = sorted(a[2] for a in arcs(tab))
    assert labels == ["OrgBased_In", "Work_For"]
    assert all(a[4] == "path" for a in arcs(tab))
    assert tab.text_content("#aa-error").strip() == ""
    screenshot(tab, tmp_path, "served-extract.png")
