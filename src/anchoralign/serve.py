"""Extraction over HTTP: a thin FastAPI app over a loaded extractor (the ``serve`` extra).

``POST /v1/extract`` takes ``{"texts": [...], "threshold": t}`` and answers ``{"results": [...]}`` in the
extract format. Texts from concurrent requests are decoded together: one worker thread owns the extractor (it
is never called concurrently) and takes up to ``max_batch_texts`` queued texts at a time, from as many requests
as fit; each request awaits its own future on the event loop. Every limit answers JSON
``{"error": {"message", "limit", "field"}}`` with a 4xx status; only a failure inside the extractor is a 500.
When a batch shared by several requests fails, each request's share is decoded again alone, so only the
request whose texts fail again gets the 500.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import InputError

__all__ = ["ServeLimits", "Batcher", "create_app", "serve"]

log = logging.getLogger(__name__)

# Web view assets live in the package's web/ folder; only plain file names with these suffixes are served.
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
               ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon"}
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class ServeLimits:
    """What one server accepts; each limit's name appears in the error a request over it gets."""

    max_body_bytes: int = 1 << 20  # request body, counted as read (a chunked body cannot bypass it)
    max_texts: int = 64  # texts per request
    max_chars: int = 100_000  # characters per text
    max_queue: int = 1024  # texts waiting for the worker, all requests together
    max_batch_texts: int = 32  # texts decoded together in one ``extract`` call
    batch_wait_ms: float = 5.0  # once the worker has some texts, how long it waits for more

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "batch_wait_ms":
                ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 60_000
                if not ok:
                    raise InputError(f"serve.{f.name} must be milliseconds in [0, 60000), got {value!r}")
            elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"serve.{f.name} must be a positive integer, got {value!r}")
        if self.max_texts > self.max_queue:
            raise InputError(f"serve.max_texts ({self.max_texts}) must not exceed "
                             f"serve.max_queue ({self.max_queue})")


class SupportsExtract(Protocol):
    """What the server needs of an extractor (``anchoralign.api.Extractor`` is one). One that checks the
    scripts of a text (``script_problems(texts)``) also takes ``extract(..., any_script=True)``: the server
    checks each request's texts itself, and a batch mixes requests."""

    def extract(self, texts: list[str], threshold: float = 0.0) -> list[Any]: ...

    def info(self) -> dict: ...


# ---------------------------------------------------------------------------------------------- batching


class QueueFull(Exception):
    """The queue has no room for a request's texts."""


class ShuttingDown(Exception):
    """The batcher was closed: no new work is taken."""


class WorkerError(Exception):
    """``extract`` raised on a batch holding some of this request's texts."""


class _Job:
    """One request's texts: results fill in by index as batches finish; the future resolves once all have."""

    def __init__(self, n: int, loop: asyncio.AbstractEventLoop) -> None:
        self.results: list[Any] = [None] * n
        self.left = n
        self.loop = loop
        self.future: asyncio.Future = loop.create_future()
        self.finished = False  # resolved, failed or cancelled: its queued texts are skipped

    def _settle(self, result: Any = None, error: BaseException | None = None) -> None:
        def apply() -> None:
            if self.future.done():
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        try:
            self.loop.call_soon_threadsafe(apply)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


class Batcher:
    """A bounded queue of texts and the one worker thread that decodes them in batches."""

    def __init__(self, extractor: SupportsExtract, limits: ServeLimits) -> None:
        self.extractor = extractor
        self.limits = limits
        self._any_script = {"any_script": True} if hasattr(extractor, "script_problems") else {}
        self._items: deque[tuple[_Job, int, str]] = deque()  # (job, index in its request, text)
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None

    @property
    def queued(self) -> int:
        """Texts waiting for the worker (not counting the batch being decoded)."""
        return len(self._items)

    def start(self) -> None:
        with self._cond:
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(target=self._run, name="anchoralign-serve-worker", daemon=True)
                self._thread.start()

    def submit(self, texts: Sequence[str]) -> _Job:
        """Queue a request's texts; await ``job.future`` (on the running loop) for its results, input order."""
        job = _Job(len(texts), asyncio.get_running_loop())
        self.start()
        with self._cond:
            if self._closing:
                raise ShuttingDown()
            if len(self._items) + len(texts) > self.limits.max_queue:
                raise QueueFull()
            self._items.extend((job, i, t) for i, t in enumerate(texts))
            self._cond.notify_all()
        return job

    def cancel(self, job: _Job) -> None:
        """The request went away: drop its texts that are still queued."""
        with self._cond:
            job.finished = True
            self._items = deque(it for it in self._items if it[0] is not job)

    def close(self, timeout: float | None = None) -> None:
        """Take no more work, let the worker finish what is queued, and wait for it."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _take(self) -> list[tuple[_Job, int, str]] | None:
        """The next batch: block for a first text, then gather more for at most ``batch_wait_ms``."""
        limit = self.limits.max_batch_texts
        with self._cond:
            while not self._items and not self._closing:
                self._cond.wait()
            if not self._items:
                return None  # closing and drained
            deadline = time.monotonic() + self.limits.batch_wait_ms / 1000
            while len(self._items) < limit and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch = []
            while self._items and len(batch) < limit:
                item = self._items.popleft()
                if not item[0].finished:
                    batch.append(item)
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            if batch:
                self._decode(batch)

    def _decode(self, batch: list[tuple[_Job, int, str]], retry: bool = True) -> None:
        texts = [text for _, _, text in batch]
        jobs = list({id(job): job for job, _, _ in batch}.values())
        log.debug("batch of %d texts from %d requests, %d queued", len(texts), len(jobs), len(self._items))
        try:
            results = self.extractor.extract(texts, threshold=0.0, **self._any_script)
            if len(results) != len(texts):
                raise RuntimeError(f"extract returned {len(results)} results for {len(texts)} texts")
        except Exception as e:
            log.exception("extract failed on a batch of %d texts from %d requests", len(texts), len(jobs))
            if retry and len(jobs) > 1:  # decode each request's share alone: only the one that fails again fails
                for job in jobs:
                    self._decode([it for it in batch if it[0] is job], retry=False)
                return
            with self._cond:
                for job in jobs:
                    job.finished = True
            for job in jobs:
                job._settle(error=WorkerError(f"{type(e).__name__}: {e}"))
            return
        done = []
        with self._cond:
            for (job, i, _), result in zip(batch, results, strict=True):
                if job.finished:
                    continue
                job.results[i] = result
                job.left -= 1
                if job.left == 0:
                    job.finished = True
                    done.append(job)
        for job in done:
            job._settle(result=job.results)


# ---------------------------------------------------------------------------------------------- the API


class ExtractRequest(BaseModel):
    """Texts to extract from, and the score a relation (or a lone entity) needs to be returned."""

    model_config = ConfigDict(extra="forbid", strict=True)

    texts: list[str] = Field(description="raw texts, one result each, in this order")
    threshold: float = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False,
                             description="keep relations scoring at least this, and entities that do or are "
                                         "in a kept relation")
    any_script: bool = Field(False, description="read texts whose letters are mostly in scripts the model's "
                                                "training data does not hold (default: such a text is a 422)")


class EntityOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    start: int = Field(description="character offset into the text")
    end: int = Field(description="character offset into the text, exclusive")
    type: str
    text: str = Field(description="text[start:end]")
    score: float


class RelationOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    head: int = Field(description="an entity id")
    tail: int = Field(description="an entity id")
    type: str
    score: float


class ExtractionOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str
    entities: list[EntityOut]
    relations: list[RelationOut]
    errors: dict[str, int] = Field(description="malformed generated pieces, by kind")
    windows: int = Field(description="passages the text was decoded in")
    cut: int
    truncated: int


class ExtractResponse(BaseModel):
    results: list[ExtractionOut]


class HealthResponse(BaseModel):
    status: str
    queue: int = Field(description="texts waiting for the worker")


class ErrorDetail(BaseModel):
    message: str
    limit: str | None = Field(None, description="the ServeLimits field that was exceeded")
    field: str | None = Field(None, description="where in the request, e.g. texts.3")
    details: list[dict] | None = Field(None, description="every validation error, when there were some")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class APIError(Exception):
    """An error answered as ``{"error": {...}}`` with ``status``."""

    def __init__(self, status: int, message: str, *, limit: str | None = None, field: str | None = None,
                 details: list[dict] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.limit, self.field = status, message, limit, field
        self.details, self.headers = details, headers

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"message": self.message}
        for key in ("limit", "field", "details"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        return JSONResponse({"error": body}, status_code=self.status, headers=self.headers)


ERRORS = {code: {"model": ErrorResponse} for code in (400, 413, 422, 500, 503)}


class _BodyLimit:
    """ASGI middleware: read the whole body, counting bytes as they arrive, and answer 413 once it passes the
    limit (a Content-Length over it is refused before reading); the app then gets the buffered body."""

    def __init__(self, app, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await APIError(400, "invalid Content-Length header").response()(scope, receive, send)
                return
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope, receive, send) -> None:
        error = APIError(413, f"request body over the limit of {self.max_body_bytes} bytes",
                         limit="max_body_bytes", headers={"Connection": "close"})
        await error.response()(scope, receive, send)


def _field(loc: Sequence[Any]) -> str | None:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or None


def _validation_error(exc: RequestValidationError) -> APIError:
    errors = exc.errors()
    details = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
               for e in errors]  # without "input": it may be megabytes, or not encodable
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "invalid JSON")
        return APIError(400, f"malformed JSON: {reason} (character {first['loc'][-1]})", details=details)
    field = _field(first.get("loc", ()))
    message = f"{field}: {first.get('msg')}" if field else str(first.get("msg", "invalid request"))
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return APIError(422, message, field=field, details=details)


def _check_texts(texts: list[str], limits: ServeLimits) -> None:
    if len(texts) > limits.max_texts:
        raise APIError(413, f"{len(texts)} texts in one request, over the limit of {limits.max_texts}",
                       limit="max_texts", field="texts")
    for i, text in enumerate(texts):
        if len(text) > limits.max_chars:
            raise APIError(413, f"text {i} has {len(text)} characters, over the limit of {limits.max_chars}",
                           limit="max_chars", field=f"texts.{i}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate ("\ud800" in the JSON): not a character at all
            raise APIError(422, f"text {i} holds a lone surrogate (U+{ord(text[e.start]):04X} at character "
                                f"{e.start}), which is not valid Unicode", field=f"texts.{i}") from None


def _script_problems(extractor: SupportsExtract, texts: list[str]):
    """``Extractor.script_problems`` where the extractor has one (a model saved with its training scripts)."""
    problems = getattr(extractor, "script_problems", None)
    return problems(texts) if problems is not None else ()


def create_app(extractor: SupportsExtract, limits: ServeLimits | None = None) -> FastAPI:
    """The HTTP app over ``extractor``; its worker thread starts with the app (or the first request) and, on
    shutdown, finishes what is queued before the app exits."""
    from . import __version__

    limits = limits or ServeLimits()
    batcher = Batcher(extractor, limits)
    info = extractor.info()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        try:
            yield
        finally:
            await asyncio.to_thread(batcher.close)  # uvicorn has let in-flight requests finish by now

    app = FastAPI(title="anchoralign", version=__version__, lifespan=lifespan,
                  description="Joint named-entity and relation extraction. Limits: "
                              + ", ".join(f"{k}={v}" for k, v in asdict(limits).items()))
    app.state.batcher = batcher
    app.state.limits = limits
    app.add_middleware(_BodyLimit, max_body_bytes=limits.max_body_bytes)

    @app.exception_handler(APIError)
    async def _api_error(request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, exc: StarletteHTTPException) -> JSONResponse:
        return APIError(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None)).response()

    @app.exception_handler(Exception)
    async def _unexpected(request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return APIError(500, "internal error; the server log has the traceback").response()

    @app.post("/v1/extract", response_model=ExtractResponse, responses=ERRORS)
    async def extract(request: ExtractRequest) -> JSONResponse:
        """Entities (with character offsets) and relations for each text, in input order."""
        _check_texts(request.texts, limits)
        if not request.any_script:
            for i, problem in _script_problems(extractor, request.texts):
                raise APIError(422, f"text {i}: {problem}; send \"any_script\": true to read it anyway",
                               field=f"texts.{i}")
        if not request.texts:
            return JSONResponse({"results": []})
        try:
            job = batcher.submit(request.texts)
        except QueueFull:
            raise APIError(503, f"the queue is full ({limits.max_queue} texts); retry shortly",
                           limit="max_queue", headers={"Retry-After": "1"}) from None
        except ShuttingDown:
            raise APIError(503, "the server is shutting down", headers={"Retry-After": "5"}) from None
        try:
            results = await job.future
        except asyncio.CancelledError:
            batcher.cancel(job)
            raise
        except WorkerError:
            raise APIError(500, "extraction failed on this request's batch; the server log has the "
                                "traceback") from None
        return JSONResponse({"results": [r.filtered(request.threshold).to_dict() for r in results]})

    @app.get("/v1/health", response_model=HealthResponse)
    async def health() -> dict:
        """Liveness, and how many texts are waiting."""
        return {"status": "ok", "queue": batcher.queued}

    @app.get("/v1/model")
    async def model() -> dict:
        """The loaded model: its schema, versions, precision, device and decode settings."""
        return info

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        try:
            from . import render
        except ImportError:
            raise APIError(404, "the web view is not installed") from None
        return HTMLResponse(render.page(None))

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        media = ASSET_TYPES.get(Path(name).suffix)
        asset = resources.files("anchoralign").joinpath("web", name)
        if media is None or not ASSET_NAME.match(name) or not asset.is_file():
            raise APIError(404, f"no such asset: {name}")
        return Response(asset.read_bytes(), media_type=media)

    return app


def serve(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, limits: ServeLimits | None = None,
          device: str = "auto") -> None:
    """Load ``model_dir`` and serve it until SIGTERM or SIGINT; in-flight requests finish, then it returns."""
    import uvicorn

    import anchoralign

    extractor = anchoralign.load(model_dir, device=device)
    app = create_app(extractor, limits)
    info = extractor.info()
    config = uvicorn.Config(app, host=host, port=port, lifespan="on", timeout_graceful_shutdown=None,
                            log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower())
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    log.info("serving %s (precision %s, device %s) at http://%s:%d/ (POST /v1/extract, docs at /docs)",
             model_dir, info.get("precision"), info.get("device"), shown, port)
    # uvicorn re-raises the signal it stopped on once it has shut down gracefully; a handler that does nothing
    # receives it, so a clean shutdown returns here (exit 0) rather than dying of the signal.
    on_main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)} if on_main else {}
    try:
        server.run()
    except SystemExit:
        if server.started:
            raise
        raise InputError(f"cannot listen on {shown}:{port} (the reason is logged above)") from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    log.info("stopped")
