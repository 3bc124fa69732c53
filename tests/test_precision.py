"""Precision by capability: the whole decision table without the hardware, the machine reader, the config
field (and the old ``train.bf16``), and a bf16 run that leaves the model as it found it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
import torch

from anchoralign.config import load_config
from anchoralign.errors import InputError
from anchoralign.precision import PrecisionChoice, choose_precision, decide, native_bf16, resolve_precision

# (requested, device type, CUDA native bf16, CPU capability, CPU bf16 flag) -> precision, warned
TABLE = [
    ("auto", "cpu", False, "AVX512", True, "bf16", False),  # Sapphire Rapids, Zen 4
    ("auto", "cpu", False, "AVX512", False, "fp32", False),  # Skylake-X: AVX-512 without bf16
    ("auto", "cpu", False, "AVX2", False, "fp32", False),
    ("auto", "cpu", False, "AVX2", True, "fp32", False),  # ATEN_CPU_CAPABILITY=avx2 on a bf16 CPU
    ("auto", "cpu", False, "DEFAULT", False, "fp32", False),  # ARM, or no SIMD dispatch
    ("auto", "cuda", True, "", False, "bf16", False),  # Ampere and later
    ("auto", "cuda", False, "", False, "fp32", False),  # V100, T4
    ("auto", "mps", False, "", False, "fp32", False),
    ("fp32", "cpu", False, "AVX512", True, "fp32", False),
    ("fp32", "cuda", True, "", False, "fp32", False),
    ("bf16", "cpu", False, "AVX512", True, "bf16", False),
    ("bf16", "cpu", False, "AVX2", False, "bf16", True),  # honoured, emulated: warned
    ("bf16", "cpu", False, "AVX2", True, "bf16", True),
    ("bf16", "cuda", False, "", False, "bf16", True),
    ("bf16", "cuda", True, "", False, "bf16", False),
    ("fp16", "cuda", True, "", False, "fp16", False),
    ("fp16", "cuda", False, "", False, "fp16", False),
]


@pytest.mark.parametrize(("requested", "device", "cuda_bf16", "capability", "flag", "expected", "warned"), TABLE)
def test_decision_table(requested, device, cuda_bf16, capability, flag, expected, warned) -> None:
    choice = decide(requested, device, cuda_bf16, capability, flag)
    assert choice.precision == expected
    assert bool(choice.warning) == warned
    assert choice.reason.startswith("auto: " if requested == "auto" else "requested: ")
    if warned:
        assert "emulated" in choice.warning


def test_reason_names_the_capability() -> None:
    assert decide("auto", "cpu", False, "AVX2", False).reason == "auto: CPU capability AVX2, no native bf16"
    assert "native bf16" in decide("auto", "cpu", False, "AVX512", True).reason


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_fp16_off_cuda_is_an_input_error(device) -> None:
    with pytest.raises(InputError, match=r"train.precision=fp16 needs a CUDA device"):
        decide("fp16", device, False, "AVX512", True, field="train.precision")


@pytest.mark.parametrize("value", ["fp8", "BF16", "", "float32"])
def test_unknown_precision_names_the_field(value) -> None:
    with pytest.raises(InputError, match=r"decode.precision must be one of auto, fp32, bf16, fp16"):
        decide(value, "cpu", False, "AVX2", False, field="decode.precision")


def test_this_machine_agrees_with_the_table() -> None:
    cpu = torch.device("cpu")
    choice = choose_precision("auto", cpu)
    assert isinstance(choice, PrecisionChoice)
    assert choice.precision == ("bf16" if native_bf16(cpu) else "fp32") == resolve_precision("auto", cpu)
    assert resolve_precision("fp32", cpu) == "fp32"
    with pytest.raises(InputError):
        resolve_precision("fp16", cpu)


def test_aten_cpu_capability_avx2_means_fp32() -> None:
    """A user who caps torch's kernels at AVX2 gets fp32 even on a bf16 CPU (torch reads the variable at start)."""
    code = ("import torch; from anchoralign.precision import native_bf16, resolve_precision; "
            "c = torch.device('cpu'); print(native_bf16(c), resolve_precision('auto', c))")
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "fp32"]


def test_the_wrapper_reads_the_machine_and_logs_an_emulated_request(monkeypatch, caplog) -> None:
    from anchoralign import precision

    monkeypatch.setattr(precision, "cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(precision, "cpu_bf16_flag", lambda: False)
    caplog.set_level(logging.WARNING, logger="anchoralign.precision")
    cpu = torch.device("cpu")
    assert not precision.native_bf16(cpu)
    assert precision.resolve_precision("auto", cpu) == "fp32" and caplog.text == ""
    assert precision.resolve_precision("bf16", cpu, "train.precision") == "bf16"
    assert "train.precision=bf16 without native bf16" in caplog.text and "emulated" in caplog.text


def test_config_field_and_the_old_bf16(caplog) -> None:
    assert load_config(None).train.precision == "auto"
    assert load_config(None, ["train.precision=bf16"]).train.precision == "bf16"
    with pytest.raises(InputError, match="train.precision must be one of"):
        load_config(None, ["train.precision=half"])
    caplog.set_level(logging.WARNING, logger="anchoralign.config")
    assert load_config(None, ["train.bf16=true"]).train.precision == "auto"
    assert load_config(None, ["train={bf16: false}"]).train.precision == "fp32"
    assert "train.bf16 is deprecated" in caplog.text and "train.precision=fp32" in caplog.text
    with pytest.raises(InputError, match="train.bf16"):
        load_config(None, ["train.bf16=maybe"])


def test_old_yaml_config_with_bf16_still_loads(tmp_path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text("train:\n  epochs: 2\n  bf16: false\n", encoding="utf-8")
    cfg = load_config(path)
    assert cfg.train.precision == "fp32" and cfg.train.epochs == 2


def test_bf16_training_records_the_precision_and_restores_forward(tmp_path) -> None:
    """Accelerate wraps forward in autocast for the run; afterwards the model is the plain module again."""
    from anchoralign.config import RunConfig
    from anchoralign.model import ModelConfig
    from anchoralign.train import train

    from .tiny import tiny_model, toy_docs, toy_schema

    torch.manual_seed(0)
    cfg = RunConfig()
    cfg.model = ModelConfig(backbone="tiny", max_source_length=64, max_target_length=96)
    cfg.train.epochs, cfg.train.batch_size, cfg.train.precision, cfg.train.threads = 2, 3, "bf16", 1
    cfg.decode.max_new_tokens = 16
    model = tiny_model(tmp_path)
    result = train(cfg, toy_docs(), toy_docs(), toy_schema(), tmp_path / "run", model=model, progress=False)
    assert result.precision == "bf16"
    assert not {"forward", "_original_forward", "_is_accelerate_prepared"} & set(vars(model))
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["precision"] for r in records] == ["bf16", "bf16"]
    assert json.loads((tmp_path / "run" / "metadata.json").read_text())["precision"] == "bf16"
