"""Run configuration: dataclasses read from YAML files with ``--set key=value`` overrides, validated with
messages that name the field and the value. The resolved config is saved beside every run."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .anchor_heads import AnchorConfig
from .decode import DecodeConfig
from .errors import InputError
from .model import ModelConfig
from .negatives import KINDS as NEGATIVE_KINDS
from .precision import PRECISIONS

__all__ = ["TrainConfig", "AnchorConfig", "RunConfig", "load_config", "apply_overrides", "DEPRECATED"]

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 1e-4  # pretrained weights (the encoder; all of an HF seq2seq model)
    lr_new: float = 5e-4  # weights trained from scratch (copy decoder, heads)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    grad_clip: float = 1.0
    label_smoothing: float = 0.0  # of the generation loss
    # dropout on attention probabilities while training (-1: the backbone's own). Their masks were 4 % of
    # a CPU training step's time (benchmarks/profile_train_step.py); 0 removes them.
    attention_dropout: float = -1.0
    # copy backbone: "seen" trains only the word-embedding rows of pieces in the training data and the generation
    # vocabulary (the others never get a gradient; skipping their dense gradient saves about 7 % of a CPU step); "all": every row
    embedding_rows: str = "seen"
    # copy backbone: the encoder's embedding layer and its first N layers stay as pretrained (no gradient through
    # them: a step skips their backward pass; freezing.py); 0: the whole encoder trains
    freeze_layers: int = 0
    ema_decay: float = 0.0  # exponential moving average of the weights, used for evaluation and saving (0: off)
    # the order of each training target: "text" (groups, relations and entities in text order) or "shuffled"
    # (a new random valid order every epoch, from the seed and the epoch: the same document, written otherwise)
    target_order: str = "text"
    # checkpoint averaging: the mean of the weights at the ends of the last N epochs is scored on dev after the
    # final epoch and kept if it beats the best single epoch (with select: last, always); 0 or 1: off
    average_last: int = 0
    # sentences that name entities and state no relation, added to the training set (a fraction of its size;
    # English only): negated rewrites of training sentences, then training sentences wrapped in a denial and
    # frames around a relation's arguments, in turn (negatives.py, docs/probe.md); 0: none
    negatives: float = 0.0
    # which kinds of negatives (comma-separated, from rewrites, wrapped, frames)
    negative_kinds: str = "rewrites,wrapped,frames"
    # false: the negatives train the encoder and the heads (tagger, anchor scorer, pair classifier), not the
    # generator (their targets are ignored); with decode.pair_veto the pair classifier then checks the decoder
    negatives_generate: bool = True
    # mention replacement: this fraction of the training documents, drawn anew every epoch, get every mention of a
    # relation-argument type replaced by another training mention of its type, relations kept (augment.py): the
    # model learns names from their context, not by heart; 0: off
    mention_swap: float = 0.0
    precision: str = "auto"  # auto (bf16 where the hardware has it natively, else fp32) | fp32 | bf16 | fp16 (CUDA)
    seed: int = 13
    eval_from_epoch: int = 1  # dev evaluation (and best-epoch selection) starts at this epoch
    # which epoch is kept: "best" (by the dataset protocol's main figure on dev) or "last" (a fixed schedule, as
    # when training on train+dev: dev is then scored once, at the end, for the record only)
    select: str = "best"
    max_minutes: float = 0.0  # stop after this much training time (0: no limit); the best dev epoch is kept
    # also write the resumable checkpoint inside an epoch, at the first optimizer step after this many minutes
    # since the last one (long epochs: a kill loses at most this much); 0: at the ends of epochs only
    checkpoint_minutes: float = 0.0
    dev_split: str = "dev"
    train_split: str = "train"
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch threads (0: torch's default)

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "lr_new"):
            if not getattr(self, name) > 0:
                raise ValueError(f"train.{name} must be > 0, got {getattr(self, name)}")
        if not (self.attention_dropout == -1.0 or 0 <= self.attention_dropout < 1):
            raise ValueError(f"train.attention_dropout must be -1 (backbone's own) or in [0, 1), got {self.attention_dropout}")
        if self.freeze_layers < 0:
            raise ValueError(f"train.freeze_layers must be >= 0, got {self.freeze_layers}")
        if self.embedding_rows not in ("seen", "all"):
            raise ValueError(f"train.embedding_rows must be seen or all, got {self.embedding_rows!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"train.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"train.device must be auto, cpu or cuda, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.max_minutes < 0:
            raise ValueError(f"train.max_minutes must be >= 0, got {self.max_minutes}")
        if self.checkpoint_minutes < 0:
            raise ValueError(f"train.checkpoint_minutes must be >= 0, got {self.checkpoint_minutes}")
        if self.average_last < 0:
            raise ValueError(f"train.average_last must be >= 0, got {self.average_last}")
        if self.average_last > 1 and self.ema_decay > 0:
            raise ValueError("train.average_last and train.ema_decay both average the weights; use one")
        if self.target_order not in ("text", "shuffled"):
            raise ValueError(f"train.target_order must be text or shuffled, got {self.target_order!r}")
        if self.select not in ("best", "last"):
            raise ValueError(f"train.select must be best or last, got {self.select!r}")
        if not 0 <= self.negatives <= 1:
            raise ValueError(f"train.negatives must be in [0, 1] (a fraction of the training set), got {self.negatives}")
        if not 0 <= self.mention_swap <= 1:
            raise ValueError(f"train.mention_swap must be in [0, 1] (a fraction of the training set), "
                             f"got {self.mention_swap}")
        kinds = self.negative_kind_list
        if not kinds or any(k not in NEGATIVE_KINDS for k in kinds) or len(set(kinds)) != len(kinds):
            raise ValueError(f"train.negative_kinds must be a comma-separated list of {', '.join(NEGATIVE_KINDS)} "
                             f"(each at most once), got {self.negative_kinds!r}")

    @property
    def negative_kind_list(self) -> list[str]:
        """``negative_kinds`` as a list of names."""
        return [k.strip() for k in self.negative_kinds.split(",")]


@dataclass
class RunConfig:
    dataset: str = "conll04"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    anchor: AnchorConfig = field(default_factory=AnchorConfig)

    def validate(self) -> None:
        try:
            self.model.validate()
            self.train.validate()
            self.decode.validate()
            self.anchor.validate()
            if self.anchor.veto_classifier or self.anchor.veto_members != 1:
                raise ValueError("anchor.veto_classifier and anchor.veto_members are set by `anchoralign veto`, which fits the veto on a trained "
                                 "model; a training config cannot turn it on")
        except ValueError as e:
            raise InputError(f"invalid config: {e}") from None

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")


def _coerce(value: Any, current: Any, key: str) -> Any:
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise InputError(f"config field {key}: expected true or false, got {value!r}")
    if isinstance(current, int) and not isinstance(current, bool):
        # int(1.5) and int(True) would pass silently: a fractional or boolean value is a mistake
        if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
            raise InputError(f"config field {key}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise InputError(f"config field {key}: expected an integer, got {value!r}") from None
    if isinstance(current, float):
        if isinstance(value, bool):
            raise InputError(f"config field {key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InputError(f"config field {key}: expected a number, got {value!r}") from None
    if isinstance(current, list):
        return list(value) if isinstance(value, list) else [v for v in str(value).split(",") if v]
    return value if isinstance(value, str) else str(value) if not isinstance(value, dict) else value


def _bf16_to_precision(value: Any, key: str) -> str:
    return "auto" if _coerce(value, True, key) else "fp32"


# Renamed fields that old configs (and saved runs) still use: old dotted name -> (new field of the same
# section, converter of the old value). They are read with a deprecation warning.
DEPRECATED: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "train.bf16": ("precision", _bf16_to_precision),  # true -> auto, false -> fp32
}


def _set(obj: Any, key: str, value: Any, prefix: str = "") -> None:
    head, _, rest = key.partition(".")
    names = {f.name for f in dataclasses.fields(obj)}
    full = f"{prefix}{head}"
    if full in DEPRECATED and not rest:
        new, convert = DEPRECATED[full]
        converted = convert(value, full)
        log.warning("config field %s is deprecated: read as %s%s=%s", full, prefix, new, converted)
        setattr(obj, new, converted)
        return
    if head not in names:
        raise InputError(f"unknown config field {full!r} (known: {', '.join(sorted(names))})")
    current = getattr(obj, head)
    if dataclasses.is_dataclass(current):
        if rest:
            _set(current, rest, value, full + ".")
        elif isinstance(value, dict):
            for k, v in value.items():
                _set(current, k, v, full + ".")
        else:
            raise InputError(f"config field {full!r} is a section; give its fields")
    else:
        if rest:
            raise InputError(f"config field {full!r} has no field {rest!r}")
        setattr(obj, head, _coerce(value, current, full))


class _Loader(yaml.SafeLoader):
    """YAML with YAML 1.2's booleans: only true and false (any case). YAML 1.1 also reads yes/no/on/off as
    booleans, which turned `pair_relations: off` into False; boolean fields still accept those words
    (``_coerce``), string fields now keep them as written."""


_Loader.yaml_implicit_resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:bool"]
                                   for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def load_yaml(text: str):
    """Parse a config's YAML (YAML 1.2 booleans: see ``_Loader``)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``key=value`` strings (dotted keys, YAML values) to ``cfg``."""
    for item in overrides:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise InputError(f"--set expects key=value, got {item!r}")
        _set(cfg, key.strip(), load_yaml(raw) if raw else "")
    return cfg


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Defaults, then the YAML file, then the overrides; validated."""
    cfg = RunConfig()
    if path is not None:
        path = Path(path)
        try:
            raw = load_yaml(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise InputError(f"cannot read config: {e}", path=path) from None
        if not isinstance(raw, dict):
            raise InputError("a config file must be a mapping of sections", path=path)
        for k, v in raw.items():
            _set(cfg, str(k), v)
    apply_overrides(cfg, overrides or [])
    cfg.validate()
    return cfg
