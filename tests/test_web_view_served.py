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


def test_a_text_in_a_script_the_model_never_read_says_so_and_the_box_reads_it(server_url, tab) -> None:  # noqa: F811
    """The tiny model read Latin letters only: a Chinese text is refused with the server's message and how to
    read it anyway from the page; ticking "read any script" reads it."""
    tab.goto(server_url)
    tab.wait_for_selector("#aa-model:not([hidden])", timeout=20_000)
    assert "trained on: Latin script" in tab.text_content("#aa-model")
    tab.fill("#aa-text", "约翰在波士顿工作。")
    tab.click("#aa-extract")
    tab.wait_for_selector("#aa-error:not([hidden])", timeout=20_000)
    error = tab.text_content("#aa-error")
    assert error.startswith("HTTP 422: text 0: 8 of its 8 letters") and "Han (8)" in error
    assert error.endswith('read it anyway. On this page: tick "read any script".')
    tab.check("#aa-any-script")
    tab.click("#aa-extract")
    tab.wait_for_selector("#aa-error[hidden]", state="attached", timeout=20_000)
    tab.wait_for_function("!document.querySelector('#aa-extract').disabled", timeout=20_000)
    assert tab.text_content("#aa-error").strip() == ""
    # the one console error expected: the browser's own line for the 422 answer (the tab fixture checks the rest)
    expected = [p for p in tab.problems if "status of 422" in p]
    assert len(expected) == 1
    tab.problems[:] = [p for p in tab.problems if p not in expected]
