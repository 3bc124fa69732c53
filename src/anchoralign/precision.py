"""Which numeric precision to train (and decode) in, chosen by what the hardware computes natively.

bf16 autocast pays only where the hardware has bf16 arithmetic: CUDA GPUs from Ampere on, and CPUs with
AVX512_BF16 or AMX whose AVX-512 kernels torch actually dispatches to. Elsewhere bf16 is emulated and slower
than fp32 (on an AVX2 CPU, several times slower), so ``auto`` picks fp32 there.

``decide`` is the whole decision as a pure function of the request and the capability facts (a test covers
its table without the hardware); ``choose_precision`` and ``resolve_precision`` read the real machine.
torch is imported only by the functions that read the machine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["PRECISIONS", "MIXED_PRECISION", "PrecisionChoice", "decide", "native_bf16", "choose_precision",
           "resolve_precision", "cpu_capability", "cpu_bf16_flag"]

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MIXED_PRECISION = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}  # -> accelerate's ``mixed_precision``


@dataclass(frozen=True)
class PrecisionChoice:
    """The resolved precision, why, and a warning to log when the choice will be slow ("" if none)."""

    precision: str  # fp32 | bf16 | fp16
    reason: str
    warning: str = ""


def decide(
    requested: str, device_type: str, cuda_bf16: bool, cpu_capability: str, cpu_bf16_flag: bool,
    field: str = "precision",
) -> PrecisionChoice:
    """The precision for ``requested`` (auto | fp32 | bf16 | fp16) on a ``device_type`` device, given whether
    the GPU has native bf16, torch's CPU dispatch level (``AVX2``, ``AVX512``, ...) and whether the CPU has
    AVX512_BF16 or AMX; ``field`` names the config field in error messages."""
    if requested not in PRECISIONS:
        raise InputError(f"{field} must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if device_type == "cuda":
        native, what = cuda_bf16, "CUDA " + ("with native bf16" if cuda_bf16 else "without native bf16")
    elif device_type == "cpu":
        avx512 = cpu_capability.upper().startswith("AVX512")
        native = avx512 and cpu_bf16_flag
        if native:
            what = f"CPU capability {cpu_capability}, native bf16"
        elif cpu_bf16_flag:  # e.g. ATEN_CPU_CAPABILITY=avx2 on a bf16 CPU: torch's kernels ignore the instructions
            what = f"CPU capability {cpu_capability}, bf16 instructions unused, no native bf16"
        else:
            what = f"CPU capability {cpu_capability}, no native bf16"
    else:
        native, what = False, f"device {device_type}, no native bf16 known"
    if requested == "auto":
        return PrecisionChoice("bf16" if native else "fp32", f"auto: {what}")
    if requested == "fp16":
        if device_type != "cuda":
            raise InputError(f"{field}=fp16 needs a CUDA device (this run is on {device_type}); "
                             "use auto, bf16 or fp32")
        return PrecisionChoice("fp16", f"requested: {what}")
    if requested == "bf16" and not native:
        return PrecisionChoice("bf16", f"requested: {what}",
                               f"{field}=bf16 without native bf16 ({what}): emulated, likely slower than fp32")
    return PrecisionChoice(requested, f"requested: {what}")


def cpu_capability() -> str:
    """The instruction set torch's ATen kernels dispatch to (``AVX2``, ``AVX512``, ...; honours
    ``ATEN_CPU_CAPABILITY``)."""
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "unknown"


def cpu_bf16_flag() -> bool:
    """Whether the CPU has bf16 arithmetic (AVX512_BF16 or AMX), from torch when it can tell, else /proc/cpuinfo."""
    import torch

    for module in (getattr(torch, "cpu", None), getattr(getattr(torch, "_C", None), "_cpu", None)):
        bf16 = getattr(module, "_is_avx512_bf16_supported", None)
        amx = getattr(module, "_is_amx_tile_supported", None)
        if bf16 is not None and amx is not None:
            try:
                return bool(bf16()) or bool(amx())
            except RuntimeError:
                break
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[-1].split()}
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 natively (not by emulation)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return cpu_capability().upper().startswith("AVX512") and cpu_bf16_flag()
    return False


def choose_precision(requested: str, device: torch.device, field: str = "precision") -> PrecisionChoice:
    """``decide`` on this machine's facts for ``device``; logs the warning of an emulated bf16 request."""
    cuda_bf16 = device.type == "cuda" and native_bf16(device)
    is_cpu = device.type == "cpu"
    choice = decide(requested, device.type, cuda_bf16, cpu_capability() if is_cpu else "",
                    cpu_bf16_flag() if is_cpu else False, field)
    if choice.warning:
        log.warning("%s", choice.warning)
    return choice


def resolve_precision(requested: str, device: torch.device, field: str = "precision") -> str:
    """"fp32", "bf16" or "fp16" for ``requested`` on ``device`` (``auto``: bf16 where native, else fp32)."""
    return choose_precision(requested, device, field).precision
