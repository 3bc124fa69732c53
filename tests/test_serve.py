"""``anchoralign serve``: the HTTP app over a fake extractor (every limit, error shape and status; batching across
concurrent requests; a worker failure), the CLI's limits and errors, then a tiny real model in-process and
behind a real ``python -m anchoralign serve`` that is stopped with SIGTERM while a request is in flight."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from anchoralign.cli import main  # noqa: E402
from anchoralign.errors import InputError  # noqa: E402
from anchoralign.extraction import ExtractedEntity, ExtractedRelation, Extraction  # noqa: E402
from anchoralign.serve import ServeLimits, create_app  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


class FakeExtractor:
    """Deterministic: each capitalised word is an entity (score 0.9 for the first, 0.4 after it), and the
    first two are related (score 0.6). Records each call's batch size and the threads that called it."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None, gate: threading.Event | None = None) -> None:
        self.delay, self.fail_on, self.gate = delay, fail_on, gate  # with a gate, each call waits for it
        self.calls: list[int] = []
        self.threads: set[int] = set()
        self.active = self.max_active = 0
        self._lock = threading.Lock()

    def extract(self, texts: list[str], threshold: float = 0.0, batch_size: int | None = None) -> list[Extraction]:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.threads.add(threading.get_ident())
            self.calls.append(len(texts))
            time.sleep(self.delay)
            if self.gate is not None:
                assert self.gate.wait(30), "the test never opened the gate"
            if self.fail_on is not None and any(self.fail_on in t for t in texts):
                raise RuntimeError("the fake extractor failed on purpose")
            return [self._one(t).filtered(threshold) for t in texts]
        finally:
            with self._lock:
                self.active -= 1

    @staticmethod
    def _one(text: str) -> Extraction:
        spans = [m.span() for m in re.finditer(r"\b[A-Z]\w*", text)]
        ents = [ExtractedEntity(i, s, e, "Peop" if i == 0 else "Org", text[s:e], 0.9 if i == 0 else 0.4)
                for i, (s, e) in enumerate(spans)]
        rels = [ExtractedRelation(0, 1, "Work_For", 0.6)] if len(ents) >= 2 else []
        return Extraction(text, ents, rels, windows=1 if text.strip() else 0)

    def info(self) -> dict:
        return {"model_dir": "fake", "schema": {"entity_types": ["Peop", "Org"], "relation_types": ["Work_For"]},
                "protocol": None, "precision": "fp32", "device": "cpu"}


@pytest.fixture
def fake() -> FakeExtractor:
    return FakeExtractor()


@pytest.fixture
def client(fake):
    with TestClient(create_app(fake, ServeLimits(max_texts=8, max_chars=60_000, max_body_bytes=300_000))) as c:
        yield c


def _error(response, status: int, limit: str | None = None, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert error.get("limit") == limit
    assert error.get("field") == field
    return error


def run_async(app, scenario):
    """Run ``scenario(client)`` against ``app`` on one event loop, with the app's lifespan around it."""

    async def go():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                return await scenario(c)

    return asyncio.run(go())


# ---------------------------------------------------------------------------------------------- happy path


def test_extract_returns_one_result_per_text_in_order(client, fake) -> None:
    texts = ["John works for Acme .", "", "nothing here", "Mary Jones"]
    r = client.post("/v1/extract", json={"texts": texts})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["text"] for x in results] == texts
    first = results[0]
    assert set(first) == {"text", "entities", "relations", "errors", "windows", "cut", "truncated"}
    assert [(e["text"], e["score"]) for e in first["entities"]] == [("John", 0.9), ("Acme", 0.4)]
    for e in first["entities"]:
        assert texts[0][e["start"] : e["end"]] == e["text"]
    assert first["relations"] == [{"head": 0, "tail": 1, "type": "Work_For", "score": 0.6}]
    assert results[1]["entities"] == [] and results[2]["entities"] == []
    assert sum(fake.calls) == 4


def test_threshold_filters_each_request_by_its_own_value(client) -> None:
    text = "John works for Acme and Initech ."
    at = {t: client.post("/v1/extract", json={"texts": [text], "threshold": t}).json()["results"][0]
          for t in (0.0, 0.5, 0.7)}
    assert [e["text"] for e in at[0.0]["entities"]] == ["John", "Acme", "Initech"]
    # 0.5: the relation (0.6) stays, so Acme (0.4) stays as its tail; Initech (0.4) goes
    assert [e["text"] for e in at[0.5]["entities"]] == ["John", "Acme"] and len(at[0.5]["relations"]) == 1
    assert [e["text"] for e in at[0.7]["entities"]] == ["John"] and at[0.7]["relations"] == []


def test_inputs_that_are_odd_but_valid_all_answer_200(client) -> None:
    texts = ["", "   \t\n ", "\x00\x01\x1f\x7f", "\u200b\u200d\ufeff", "e\u0301\u0301 👩‍👩‍👧 مرحبا שלום 中文",
             "Ab " * 16_000 + "end"]  # one 48k-character line
    r = client.post("/v1/extract", json={"texts": texts})
    assert r.status_code == 200, r.text
    assert [x["text"] for x in r.json()["results"]] == texts


def test_an_empty_list_answers_no_results_without_decoding(client, fake) -> None:
    r = client.post("/v1/extract", json={"texts": []})
    assert r.status_code == 200 and r.json() == {"results": []}
    assert fake.calls == []


def test_health_model_docs_and_unknown_routes(client, fake) -> None:
    assert client.get("/v1/health").json() == {"status": "ok", "queue": 0}
    assert client.get("/v1/model").json() == fake.info()
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/extract", "/v1/health", "/v1/model"} <= set(paths)
    _error(client.get("/nowhere"), 404)
    _error(client.get("/v1/extract"), 405)


def test_web_view_page_and_assets(client) -> None:
    pytest.importorskip("anchoralign.render", reason="render.py not yet")
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text.lower()
    for name, media in (("view.js", "text/javascript"), ("view.css", "text/css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(media)
        assert r.content
    for bad in ("nope.js", "..%2Fserve.py", ".hidden.css", "index.html", "__init__.py"):
        _error(client.get(f"/static/{bad}"), 404)


# ---------------------------------------------------------------------------------------------- bad requests


def test_malformed_json_is_400(client) -> None:
    for body in (b'{"texts": [', b"not json", b'{"texts": ["a"]}}', b'\xff\xfe{"texts": []}'):
        r = client.post("/v1/extract", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"texts": "John"}, "texts"),
    ({"texts": ["ok", 3]}, "texts.1"),
    ({"texts": [None]}, "texts.0"),
    ({"texts": [["nested"]]}, "texts.0"),
    ({}, "texts"),
    ({"texts": ["a"], "threshold": 1.5}, "threshold"),
    ({"texts": ["a"], "threshold": -0.1}, "threshold"),
    ({"texts": ["a"], "threshold": "0.5"}, "threshold"),
    ({"texts": ["a"], "threshold": True}, "threshold"),
    ({"texts": ["a"], "mode": "fast"}, "mode"),
])
def test_wrong_types_and_extra_fields_are_422_naming_the_field(client, body, field) -> None:
    error = _error(client.post("/v1/extract", json=body), 422, field=field)
    assert error["message"].startswith(field)
    assert error["details"] and all({"loc", "msg", "type"} == set(d) for d in error["details"])


def test_a_body_that_is_not_an_object_is_422(client) -> None:
    for body in ([], ["a"], "a", 3, None):
        r = client.post("/v1/extract", json=body)
        assert r.status_code == 422, (body, r.text)


def test_nan_threshold_is_422(client) -> None:
    r = client.post("/v1/extract", content=b'{"texts": ["a"], "threshold": NaN}',
                    headers={"content-type": "application/json"})
    _error(r, 422, field="threshold")


def test_a_lone_surrogate_is_422_naming_the_text(client, fake) -> None:
    r = client.post("/v1/extract", content=b'{"texts": ["fine", "a\\ud800b"]}',
                    headers={"content-type": "application/json"})
    error = _error(r, 422, field="texts.1")
    assert "text 1" in error["message"] and "surrogate" in error["message"]
    assert fake.calls == []
    # a surrogate pair is one character, not an error
    r = client.post("/v1/extract", content=b'{"texts": ["\\ud83d\\ude00 ok"]}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["results"][0]["text"] == "😀 ok"


# ---------------------------------------------------------------------------------------------- limits


def test_too_many_texts_is_413(client, fake) -> None:
    error = _error(client.post("/v1/extract", json={"texts": ["a"] * 9}), 413, limit="max_texts", field="texts")
    assert "9" in error["message"] and "8" in error["message"]
    assert client.post("/v1/extract", json={"texts": ["a"] * 8}).status_code == 200


def test_a_text_over_max_chars_is_413_naming_its_index(client) -> None:
    error = _error(client.post("/v1/extract", json={"texts": ["ok", "x" * 60_001]}), 413, limit="max_chars",
                   field="texts.1")
    assert "text 1" in error["message"]
    assert client.post("/v1/extract", json={"texts": ["ok", "x" * 60_000]}).status_code == 200


def test_a_body_over_max_body_bytes_is_413_with_or_without_content_length(client, fake) -> None:
    big = json.dumps({"texts": ["x" * 50_000] * 7}).encode()  # 350 kB: every text within max_chars
    error = _error(client.post("/v1/extract", content=big, headers={"content-type": "application/json"}), 413,
                   limit="max_body_bytes")
    assert "300000" in error["message"]
    # chunked: no Content-Length, so only the bytes as they arrive can be counted
    chunks = [big[i : i + 65_536] for i in range(0, len(big), 65_536)]
    r = client.post("/v1/extract", content=iter(chunks), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    _error(r, 413, limit="max_body_bytes")
    assert fake.calls == []
    small = json.dumps({"texts": ["John"]}).encode()
    r = client.post("/v1/extract", content=iter([small[:5], small[5:]]), headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["results"][0]["entities"][0]["text"] == "John"


def test_a_full_queue_is_503_with_retry_after() -> None:
    fake = FakeExtractor(gate=threading.Event())  # the first batch holds the worker until the 503 is seen
    app = create_app(fake, ServeLimits(max_texts=2, max_queue=2, max_batch_texts=2, batch_wait_ms=0))

    async def scenario(c):
        first = asyncio.create_task(c.post("/v1/extract", json={"texts": ["A a", "B b"]}))
        while not fake.calls:  # the worker has taken the first request's texts: the queue is empty again
            await asyncio.sleep(0.01)
        second = asyncio.create_task(c.post("/v1/extract", json={"texts": ["C c", "D d"]}))
        while (await c.get("/v1/health")).json()["queue"] < 2:
            await asyncio.sleep(0.01)
        third = await c.post("/v1/extract", json={"texts": ["E e"]})
        fake.gate.set()
        return await first, await second, third

    first, second, third = run_async(app, scenario)
    assert first.status_code == 200 and second.status_code == 200
    _error(third, 503, limit="max_queue")
    assert third.headers["retry-after"] == "1"


def test_limits_are_checked_when_made() -> None:
    with pytest.raises(InputError, match="serve.max_texts must be a positive integer, got 0"):
        ServeLimits(max_texts=0)
    with pytest.raises(InputError, match="max_queue"):
        ServeLimits(max_texts=10, max_queue=5)
    with pytest.raises(InputError, match="batch_wait_ms"):
        ServeLimits(batch_wait_ms=-1)


# ---------------------------------------------------------------------------------------------- batching


def test_concurrent_requests_share_batches_and_keep_their_own_results() -> None:
    fake = FakeExtractor(delay=0.05)
    app = create_app(fake, ServeLimits(max_batch_texts=8, batch_wait_ms=20))
    texts = [f"Name{i} works for Firm{i} ." for i in range(20)]

    async def scenario(c):
        return await asyncio.gather(*(c.post("/v1/extract", json={"texts": [t]}) for t in texts))

    responses = run_async(app, scenario)
    for t, r in zip(texts, responses, strict=True):
        assert r.status_code == 200
        [result] = r.json()["results"]
        assert result["text"] == t and [e["text"] for e in result["entities"]] == t.split()[0:4:3]
    assert sum(fake.calls) == 20 and max(fake.calls) <= 8
    assert len(fake.calls) < 20, fake.calls
    assert len(fake.threads) == 1 and fake.max_active == 1  # one worker thread, never two calls at once


def test_a_request_split_across_batches_keeps_input_order() -> None:
    fake = FakeExtractor()
    texts = [f"T{i} and U{i}" for i in range(7)]

    with TestClient(create_app(fake, ServeLimits(max_batch_texts=3, batch_wait_ms=0))) as c:
        r = c.post("/v1/extract", json={"texts": texts})
    assert [x["text"] for x in r.json()["results"]] == texts
    assert fake.calls == [3, 3, 1]


def test_a_worker_failure_is_500_for_its_batch_and_the_server_keeps_serving(caplog) -> None:
    fake = FakeExtractor(fail_on="BOOM")
    with TestClient(create_app(fake, ServeLimits(batch_wait_ms=0))) as c, caplog.at_level(logging.ERROR):
        r = c.post("/v1/extract", json={"texts": ["fine", "BOOM here"]})
        error = _error(r, 500)
        assert "log" in error["message"]
        assert "RuntimeError: the fake extractor failed on purpose" in caplog.text  # the traceback is logged
        r = c.post("/v1/extract", json={"texts": ["John and Acme"]})
        assert r.status_code == 200 and len(r.json()["results"][0]["entities"]) == 2


def test_a_failing_request_does_not_fail_the_requests_that_shared_its_batch() -> None:
    fake = FakeExtractor(fail_on="BOOM")
    app = create_app(fake, ServeLimits(max_batch_texts=4, batch_wait_ms=2000))  # waits until all 4 are queued

    async def scenario(c):
        bodies = [{"texts": ["John and Acme", "Mary"]}, {"texts": ["BOOM"]}, {"texts": ["Paris"]}]
        return await asyncio.gather(*(c.post("/v1/extract", json=b) for b in bodies))

    ok, failed, ok_too = run_async(app, scenario)
    assert fake.calls[0] == 4  # one shared batch, then each request's share alone
    assert sorted(fake.calls[1:]) == [1, 1, 2]
    _error(failed, 500)
    assert ok.status_code == 200 and [len(r["entities"]) for r in ok.json()["results"]] == [2, 1]
    assert ok_too.status_code == 200 and ok_too.json()["results"][0]["text"] == "Paris"


# ---------------------------------------------------------------------------------------------- the command


def test_serve_without_the_extra_is_one_line_and_exit_2(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve", "--model", "nowhere"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "anchoralign serve: error: install the serve extra: pip install 'anchoralign[serve]'"


def test_serve_limits_from_config_then_flags(monkeypatch, tmp_path) -> None:
    import anchoralign.serve

    seen = {}
    monkeypatch.setattr(anchoralign.serve, "serve", lambda model, **kw: seen.update(kw, model=model))
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("serve:\n  max_texts: 5\n  max_queue: 50\n  batch_wait_ms: 2\n", encoding="utf-8")
    argv = ["serve", "--model", "m", "--config", str(cfg), "--max-queue", "70", "--port", "9001"]
    assert main(argv) == 0
    assert seen["limits"] == ServeLimits(max_texts=5, max_queue=70, batch_wait_ms=2)
    assert (seen["model"], seen["port"], seen["host"], seen["device"]) == ("m", 9001, "127.0.0.1", "auto")
    from anchoralign.cli.serve_cmd import LIMIT_FLAGS

    assert set(LIMIT_FLAGS) == set(ServeLimits.__dataclass_fields__)  # a flag for every limit


@pytest.mark.parametrize(("text", "message"), [
    ("serve:\n  max_textz: 5\n", "unknown key serve.max_textz"),
    ("serve:\n  max_texts: 0\n", "serve.max_texts must be a positive integer"),
    ("serve: [1]\n", "`serve` must be a mapping"),
    ("serve: {max_texts: [\n", "invalid YAML"),
])
def test_a_bad_config_is_one_line_and_exit_2(tmp_path, capsys, text, message) -> None:
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(text, encoding="utf-8")
    assert main(["serve", "--model", "m", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_missing_model_dir_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    assert main(["serve", "--model", str(tmp_path / "nowhere"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("anchoralign serve: error:") and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------- a real model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny full-AnchorAlign model trained for a few seconds, saved as a run directory."""
    import torch

    from anchoralign.anchor_heads import AnchorConfig
    from anchoralign.config import RunConfig
    from anchoralign.model import ModelConfig
    from anchoralign.train import train

    from .tiny import tiny_model, toy_docs, toy_schema

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("serve_model") / "run"
    cfg = RunConfig()
    cfg.model = ModelConfig(backbone="tiny", max_source_length=64, max_target_length=96)
    cfg.train.epochs, cfg.train.batch_size, cfg.train.precision, cfg.train.threads = 10, 3, "fp32", 1
    cfg.train.lr = cfg.train.lr_new = 3e-3
    cfg.train.warmup_ratio, cfg.train.eval_from_epoch = 0.0, 10
    torch.manual_seed(0)
    docs = toy_docs()
    train(cfg, docs, docs, toy_schema(), out, model=tiny_model(None, anchor=AnchorConfig()), progress=False)
    return out


def _needs_api() -> None:
    import anchoralign

    try:
        anchoralign.load  # noqa: B018
    except AttributeError:
        pytest.skip("api not yet")


def _check_offsets(result: dict) -> None:
    ids = [e["id"] for e in result["entities"]]
    assert ids == list(range(len(ids)))
    for e in result["entities"]:
        assert 0 <= e["start"] < e["end"] <= len(result["text"])
        assert result["text"][e["start"] : e["end"]] == e["text"] and 0 <= e["score"] <= 1
    for rel in result["relations"]:
        assert rel["head"] in ids and rel["tail"] in ids and 0 <= rel["score"] <= 1


def test_a_real_tiny_model_behind_the_app(model_dir) -> None:
    _needs_api()
    import anchoralign

    ex = anchoralign.load(model_dir, device="cpu")
    texts = ["John Smith works for Acme Corp in Boston .", "", "Mary 😀 lives in Paris .", "约翰在波士顿工作。"]
    with TestClient(create_app(ex, ServeLimits())) as c:
        r = c.post("/v1/extract", json={"texts": texts, "any_script": True})  # the Chinese text: a Latin model
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [x["text"] for x in results] == texts
        for result in results:
            _check_offsets(result)
        assert results[1]["entities"] == []
        assert results == [x.to_dict() for x in ex.extract(texts, any_script=True)]  # the same as the library
        info = c.get("/v1/model").json()
        assert "Peop" in info["schema"]["entity_types"]
        assert set(info["scripts"]) == {"Latin"}  # the toy training documents'


def test_a_text_mostly_in_a_script_the_model_never_read_is_a_422_naming_it(model_dir) -> None:
    """The tiny model trained on Latin letters only: a Chinese text is refused, by index and script, before
    anything is decoded; a Latin text with a Chinese name in it is read; ``any_script`` reads anything."""
    _needs_api()
    import anchoralign

    ex = anchoralign.load(model_dir, device="cpu")
    with TestClient(create_app(ex, ServeLimits())) as c:
        r = c.post("/v1/extract", json={"texts": ["Mary lives in Paris .", "约翰在波士顿工作。"]})
        assert r.status_code == 422
        error = r.json()["error"]
        assert error["field"] == "texts.1" and "Han (8)" in error["message"] and "Latin 100 %" in error["message"]
        assert "any_script" in error["message"]
        ok = c.post("/v1/extract", json={"texts": ["Mary met 约翰 in Paris ."]})  # 8 Latin letters of 10
        assert ok.status_code == 200, ok.text
        assert c.post("/v1/extract", json={"texts": ["约翰"], "any_script": True}).status_code == 200
        assert c.post("/v1/extract", json={"texts": ["约翰"], "any_script": 1}).status_code == 422  # strict


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(model_dir) -> None:
    _needs_api()
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "anchoralign", "serve", "--model", str(model_dir), "--port", str(port),
           "--device", "cpu", "--max-batch-texts", "1"]  # one text per batch: the request stays in flight
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1]
                time.sleep(0.1)
        texts = [" ".join(["John Smith works for Acme Corp in Boston ."] * 8)] * 24
        answer: dict = {}
        sender = threading.Thread(target=lambda: answer.update(
            r=httpx.post(f"{url}/v1/extract", json={"texts": texts}, timeout=120)))
        sender.start()
        while httpx.get(f"{url}/v1/health", timeout=5).json()["queue"] == 0:
            assert sender.is_alive(), "the request finished before it could be seen in flight"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        sender.join(120)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert answer["r"].status_code == 200, answer["r"].text
    results = answer["r"].json()["results"]
    assert len(results) == 24
    for result in results:
        _check_offsets(result)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in err and "precision" in err
