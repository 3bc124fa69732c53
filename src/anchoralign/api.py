"""Extraction from raw text: the library face that ``extract`` and ``serve`` sit on.

    >>> import anchoralign
    >>> ex = anchoralign.load("runs/demo")
    >>> [r.to_dict() for r in ex.extract(["John Smith works for Acme Corp in Boston ."], threshold=0.5)]

A text is split into tokens (CJK characters one each, letter/digit runs, other symbols), the tokens into
overlapping windows of whole sentences (``windows.py``), each window is decoded as a ``Document`` whose tokens
carry offsets into the whole text, and the windows' results are merged (``extraction.merge``), so every
entity's ``start``/``end`` are character offsets into the original text. A call shares no state with any other
call: results, scores and error counts are its own.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from .data.tokenize import tokenize_text
from .decode import DecodeConfig, predict
from .errors import InputError
from .extraction import Extraction, merge
from .scripts import ScriptCheck
from .types import Document
from .windows import SENTENCE_END_TOKENS, Windows, windows

log = logging.getLogger(__name__)

__all__ = ["Extractor", "load", "saved_decode_config", "SENTENCE_END_TOKENS"]

CALIBRATION_FILE = "calibration.json"


def saved_decode_config(path: str | Path) -> DecodeConfig:
    """The decode settings saved with a model directory (``run.decode`` of model_config.json), else defaults."""
    run = _run_config(path)
    saved = run.get("decode") or {}
    if not isinstance(saved, dict):
        raise InputError(f"model_config.json: run.decode is not an object but {type(saved).__name__}", path=path)
    fields = DecodeConfig.__dataclass_fields__
    return DecodeConfig(**{k: v for k, v in saved.items() if k in fields})


def _run_config(path: str | Path) -> dict:
    from .model import read_model_config

    run = read_model_config(path).get("run", {})
    if not isinstance(run, dict):
        raise InputError(f"model_config.json: \"run\" is not an object but {type(run).__name__}", path=path)
    return run


def saved_metadata(path: str | Path) -> dict:
    """The model directory's metadata.json (what training recorded), {} where there is none; one that cannot be
    read is a warning, and the model reads text as a model saved without it does."""
    file = Path(path) / "metadata.json"
    if not file.is_file():
        return {}
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # ValueError: not JSON, not UTF-8
        log.warning("%s: cannot read (%s); reading text as a model saved without it", file, e)
        return {}
    return meta if isinstance(meta, dict) else {}


def saved_scripts(path: str | Path) -> ScriptCheck | None:
    """The letters per script of the model's training documents (metadata.json's ``"scripts"``), as the check
    extraction applies; None for a model saved without them (nothing is checked)."""
    return ScriptCheck.from_metadata(saved_metadata(path))


def saved_temperature(path: str | Path) -> dict[str, float]:
    """The score temperatures fitted on a dev split by ``anchoralign calibrate --save``: ``{"entity": T,
    "relation": T}`` (1.0 each when none were; a single number applies to both)."""
    f = Path(path) / CALIBRATION_FILE
    if not f.is_file():
        return {"entity": 1.0, "relation": 1.0}
    try:
        raw = json.loads(f.read_text(encoding="utf-8"))["temperature"]
        temps = ({"entity": float(raw), "relation": float(raw)} if isinstance(raw, int | float)
                 else {k: float(raw[k]) for k in ("entity", "relation")})
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"cannot read the temperature: {e!r}", path=f) from None
    for kind, t in temps.items():
        if not (math.isfinite(t) and t > 0):
            raise InputError(f"the {kind} temperature must be a positive number, got {t}", path=f)
    return temps


def resolve_device(device: str) -> str:
    """``auto``: the first CUDA device when there is one, else the CPU; anything else as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load(path: str | Path, device: str = "auto", decode: DecodeConfig | None = None, **kwargs) -> Extractor:
    """An extractor for a model directory written by ``anchoralign train``, or a Hugging Face hub repository
    holding one (downloaded on first use, then read from the cache). Decoded as the model was evaluated (its
    saved decode settings) unless ``decode`` is given."""
    return Extractor.load(_local(path), device=device, decode=decode, **kwargs)


def _local(path: str | Path) -> Path:
    p = Path(path)
    if p.exists() or str(path).count("/") != 1 or str(path).startswith((".", "/")):
        return p
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(path)))
    except Exception as e:  # noqa: BLE001 - offline, unknown repository, no access: one message for all
        raise InputError(f"not a local model directory, and the hub could not provide it: {e}", path=path) from None


class Extractor:
    """A loaded model plus decoding settings: texts in, entities and relations with offsets and scores out."""

    def __init__(self, model, decode: DecodeConfig | None = None, passage_tokens: int | None = None,
                 passage_sentences: int | None = 1, temperature: dict[str, float] | float = 1.0,
                 model_dir: str | Path | None = None, scripts: ScriptCheck | None = None) -> None:
        self.model = model
        self.decode = decode or DecodeConfig()
        self.decode.validate()
        self.passage_tokens = passage_tokens  # None: as many as the encoder's input holds
        self.passage_sentences = passage_sentences  # None: as many as fit
        if isinstance(temperature, int | float):
            temperature = {"entity": float(temperature), "relation": float(temperature)}
        self.temperature = dict(temperature)  # scores are raised to 1/T (calibration.py)
        self.model_dir = None if model_dir is None else str(model_dir)
        self.scripts = scripts  # the training data's scripts: a text mostly in others is refused (scripts.py)
        self._lock = threading.Lock()  # one decode at a time: a fast tokenizer must not be entered twice

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", decode: DecodeConfig | None = None, **kwargs) -> Extractor:
        """A model directory, decoded as it was evaluated (its saved decode settings) unless ``decode`` is given."""
        from .model import load_model

        model = load_model(path, resolve_device(str(device)))  # a path that is not a model directory fails here
        meta = saved_metadata(path)
        # read text the way the model read its training passages (windows.passage_shape); a model saved before
        # the shape was recorded reads one sentence at a time, as many tokens as its input holds
        shape = meta.get("passage") if isinstance(meta.get("passage"), dict) else {}
        kwargs.setdefault("passage_tokens", shape.get("tokens") or None)
        kwargs.setdefault("passage_sentences", shape.get("sentences", 1))
        kwargs.setdefault("temperature", saved_temperature(path))
        kwargs.setdefault("scripts", ScriptCheck.from_metadata(meta))
        return cls(model, decode=decode or saved_decode_config(path), model_dir=path, **kwargs)

    def extract(
        self, texts: Sequence[str | Document], threshold: float = 0.0, batch_size: int | None = None,
        progress: Callable[[int], None] | None = None, any_script: bool = False,
    ) -> list[Extraction]:
        """One ``Extraction`` per text (or ``Document``: its own tokens are used), in input order; entities and
        relations scoring under ``threshold`` are left out (``Extraction.filtered``). A text whose letters are
        mostly in scripts the model's training data did not hold is an ``InputError`` naming it, before anything
        is decoded, unless ``any_script`` (``scripts.py``)."""
        if not 0.0 <= threshold <= 1.0:
            raise InputError(f"threshold must be in [0, 1], got {threshold}")
        texts = list(texts)  # read twice below (the script check, then the windows): a generator must not run dry
        if not any_script:
            for i, problem in self.script_problems(texts):
                raise InputError(f"{problem} (any_script=True reads it anyway)", record=i)
        cfg = self.decode if batch_size is None else replace(self.decode, batch_size=batch_size)
        cfg.validate()
        docs: list[Document] = []
        owner: list[int] = []
        plans: list[tuple[str, int]] = []  # per text: its string, sentences cut
        for i, item in enumerate(texts):
            if isinstance(item, Document):
                text, tokens = item.text, item.tokens
            elif isinstance(item, str):
                text, tokens = item, tokenize_text(item)
            else:
                raise InputError(f"expected a string or a Document, got {type(item).__name__}", record=i)
            plan = self.plan(tokens, text)
            plans.append((text, plan.cut))
            for a, b in plan.ranges:
                docs.append(Document(f"{i}:{a}", text, list(tokens[a:b])))
                owner.append(i)
        decoded: list[Document] = []
        truncated: list[int] = []
        doc_errors: list[dict[str, int]] = []
        if docs:
            with self._lock:
                result = predict(self.model, docs, cfg, progress=progress)
            decoded, truncated, doc_errors = result.documents, result.truncated, result.document_errors
        per_text: list[list[Document]] = [[] for _ in plans]
        out_errors: list[dict[str, int]] = [{} for _ in plans]
        unread = [0] * len(plans)
        for i, doc, lost, errs in zip(owner, decoded, truncated, doc_errors, strict=True):
            per_text[i].append(self._tempered(doc))
            unread[i] += lost
            for kind, n in errs.items():
                out_errors[i][kind] = out_errors[i].get(kind, 0) + n
        out = []
        for i, (text, cut) in enumerate(plans):
            ex = merge(text, per_text[i])
            ex.windows, ex.cut, ex.truncated, ex.errors = len(per_text[i]), cut, unread[i], out_errors[i]
            out.append(ex.filtered(threshold))
        return out

    def script_problems(self, texts: Sequence[str | Document]) -> Iterator[tuple[int, str]]:
        """``(index, why)`` for each text whose letters are mostly in scripts the model's training data did not
        hold (none for a model saved without its training scripts)."""
        if self.scripts is not None:
            yield from self.scripts.problems(texts)

    def plan(self, tokens, text: str | None = None) -> Windows:
        """The windows ``extract`` reads ``tokens`` in: token ranges shaped like the training passages, each
        within the encoder's input (two pieces left for its special pieces)."""
        return windows(tokens, self.passage_tokens, self._piece_counts(tokens), self.model.config.max_source_length - 2,
                       self.passage_sentences, text)

    def _piece_counts(self, tokens) -> list[int]:
        """How many encoder pieces each token becomes (as ``encoding.encode_source`` tokenizes them)."""
        if not tokens:
            return []
        with self._lock:
            # a long text is counted, not encoded, here: no "sequence longer than the maximum" warning
            enc = self.model.tokenizer([t.text for t in tokens], is_split_into_words=True, add_special_tokens=False,
                                       verbose=False)
        counts = [0] * len(tokens)
        for w in enc.word_ids():
            if w is not None:
                counts[w] += 1
        return counts

    def _tempered(self, doc: Document) -> Document:
        """Scores raised to the power 1/T (temperature scaling of the log-probability a score came from)."""
        te, tr = self.temperature["entity"], self.temperature["relation"]
        if te == tr == 1.0:
            return doc
        ents = [replace(e, score=None if e.score is None else e.score ** (1 / te)) for e in doc.entities]
        rels = [replace(r, score=None if r.score is None else r.score ** (1 / tr)) for r in doc.relations]
        return doc.with_annotations(ents, rels)

    def info(self) -> dict:
        """What a client needs to know about the model: schema, protocol, versions, precision, settings."""
        import torch
        import transformers

        from . import __version__
        from .precision import resolve_precision

        schema = self.model.schema
        run = _run_config(self.model_dir) if self.model_dir else {}
        return {
            "model_dir": self.model_dir,
            "dataset": run.get("dataset"),
            "protocol": run.get("protocol"),
            "schema": {"entity_types": list(schema.entity_types), "relation_types": list(schema.relation_types)},
            "versions": {"anchoralign": __version__, "torch": torch.__version__, "transformers": transformers.__version__},
            "device": str(self.model.device),
            "precision": resolve_precision(self.decode.precision, self.model.device, "decode.precision"),
            "passage": {"tokens": self.passage_tokens, "sentences": self.passage_sentences,
                        "pieces": self.model.config.max_source_length - 2},
            "temperature": self.temperature,
            "scripts": None if self.scripts is None else dict(self.scripts.counts),
            "decode": dict(vars(self.decode)),
        }
