"""Several processes: which batches each rank trains on, and starting N local processes (``--processes``).

Training runs under Accelerate (DDP); a process group is set up from the environment that a launcher
(``torchrun``, ``accelerate launch``, ``mpirun``) gives each process. This module needs no torch import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TypeVar

__all__ = ["shard", "launched_world_size", "launched_rank", "launch_local", "accelerate_cpu_processes"]

T = TypeVar("T")

_WORLD_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")


def _env_int(names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = os.environ.get(name, "")
        if value.strip().isdigit():
            return int(value)
    return default


def launched_world_size() -> int:
    """The number of processes a launcher started this one among (1 outside a distributed launch)."""
    return _env_int(_WORLD_VARS, 1)


def launched_rank() -> int:
    """This process's rank as the launcher set it (0 outside a distributed launch)."""
    return _env_int(_RANK_VARS, 0)


def shard(items: list[T], rank: int, world: int) -> list[T]:
    """Rank ``rank``'s share of one epoch's batches: every ``world``-th one, starting at ``rank``.

    The list is first extended by cycling from its start to a multiple of ``world`` (as Accelerate's
    ``even_batches``), because under DDP every rank must run the same number of steps. Interleaving keeps the
    batches of one optimizer step those a single process with ``world`` times the accumulation would see.
    """
    if world <= 1 or not items:
        return list(items)
    per_rank = -(-len(items) // world)
    padded = [items[i % len(items)] for i in range(per_rank * world)]
    return padded[rank::world]


def accelerate_cpu_processes(parent_cmdline: list[str] | None = None) -> int:
    """N when this process is the one that ``accelerate launch --cpu --num_processes N`` started, else 1.

    Accelerate starts several CPU processes only through mpirun; without it, it starts this command once, with
    ``ACCELERATE_USE_CPU`` and a ``MASTER_ADDR`` but no rank. N is read off the launcher's own command line
    (the parent process; ``parent_cmdline`` for tests) so the command can start the N processes itself."""
    if launched_world_size() > 1 or "MASTER_ADDR" not in os.environ:
        return 1
    if os.environ.get("ACCELERATE_USE_CPU", "").lower() not in ("1", "true", "yes"):
        return 1
    if parent_cmdline is None:
        try:
            with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
                parent_cmdline = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            return 1
    args = list(parent_cmdline)
    if "launch" not in args:
        return 1
    for i in range(args.index("launch") + 1, len(args)):
        arg = args[i]
        if arg == "-m" or arg.endswith(".py"):
            break  # the launched program's own arguments start here
        for flag in ("--num_processes", "--num-processes"):
            if arg == flag and i + 1 < len(args) and args[i + 1].isdigit():
                return int(args[i + 1])
            if arg.startswith(flag + "=") and arg.split("=", 1)[1].isdigit():
                return int(arg.split("=", 1)[1])
    return 1


def launch_local(argv: list[str], processes: int) -> int:
    """Run ``python -m anchoralign ARGV`` in ``processes`` local processes (``torch.distributed.run``, a free
    port on this host) and return the launcher's exit status. Each CPU process gets cores / processes threads
    unless ``OMP_NUM_THREADS`` is set."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
           f"--nproc-per-node={processes}", "-m", "anchoralign", *argv]
    return subprocess.run(cmd, env=env, check=False).returncode
