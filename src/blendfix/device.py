"""`--device auto` and `--precision auto` resolution, shared by every command."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU; ``cuda``/``cuda:N``/``cpu``/``mps`` are checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"--device {name}: MPS is not available; use --device cpu or auto")
    return dev


#: Set to 0 or 1 to override :func:`cpu_bf16_native` (e.g. ``BLENDFIX_CPU_BF16=0``: fp32 by default on AMX CPUs).
CPU_BF16_ENV = "BLENDFIX_CPU_BF16"


def cpu_bf16_native() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (Intel AMX-BF16: Sapphire Rapids and later).

    There oneDNN runs bf16 convolutions several times faster than fp32 (MAResU-Net at 1024²: 4x
    eager fp32, BENCHMARKS.md); without it bf16 is emulated and no faster. Read from the CPU flags
    (``/proc/cpuinfo``) and, where PyTorch offers it, its own check that the OS lets it use the AMX
    tiles; False where the flags cannot be read (not Linux) or PyTorch lacks oneDNN.
    ``BLENDFIX_CPU_BF16=0`` or ``1`` overrides the answer.
    """
    forced = os.environ.get(CPU_BF16_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return _cpu_flags_have_amx_bf16()


@functools.cache
def _cpu_flags_have_amx_bf16() -> bool:
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    if "amx_bf16" not in flags:
        return False
    # the kernel must also grant the AMX tile state (Linux >= 5.16); PyTorch asks for it, where it can
    init_amx = getattr(torch.cpu, "_init_amx", None)
    return bool(init_amx()) if callable(init_amx) else True


def resolve_precision(precision: str, device: torch.device, *, cpu_bf16: bool = False) -> torch.dtype:
    """``auto`` is fp16 on CUDA; on a CPU it is bf16 when ``cpu_bf16`` (the caller's network was measured
    to lose nothing in bf16: the cleaner) and the CPU has AMX-BF16 (:func:`cpu_bf16_native`), else fp32.
    fp16 is refused off CUDA (too slow / unsupported)."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if cpu_bf16 and device.type == "cpu" and cpu_bf16_native() else torch.float32
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 needs a CUDA device; use fp32 (or bf16) on CPU")
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
