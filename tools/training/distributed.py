"""Rank-side helpers for a training job that runs on several ranks under torchrun.

torchrun sets RANK / LOCAL_RANK / WORLD_SIZE for every rank; a job that runs on one device
has none of them and every helper here degrades to the single-process answer, so the train
job has one code path. Collectives are only called where every rank reaches the same line
in the same step (the Trainer callbacks), never from rank-0-only code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

RANK_JOB_ENV = "GRAPHTUNE_RANK_JOB"  # set by the launcher: this process is one rank of that job
STOP_FILE = "stop"  # written by the job's worker into the job folder: "cancel" or "interrupt"
OUTCOME_FILE = "rank0-outcome.json"
STOP_CODES = {None: 0, "cancel": 1, "interrupt": 2}


@dataclass(frozen=True)
class RankInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def rank_info() -> RankInfo:
    """This process's place in the job (rank 0 of 1 outside torchrun)."""
    if RANK_JOB_ENV not in os.environ:
        return RankInfo()
    return RankInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                    int(os.environ.get("WORLD_SIZE", 1)))


def init_process_group(device: str) -> None:
    """NCCL between GPUs, gloo on CPU; each rank owns the GPU of its local rank."""
    import datetime

    import torch
    import torch.distributed as dist

    info = rank_info()
    if not info.distributed or dist.is_initialized():
        return
    if device == "cuda":
        torch.cuda.set_device(info.local_rank)
    timeout = datetime.timedelta(seconds=float(os.environ.get("GRAPHTUNE_COLLECTIVE_TIMEOUT_S", "1800")))
    dist.init_process_group("nccl" if device == "cuda" else "gloo", timeout=timeout,
                            **({"device_id": torch.device("cuda", info.local_rank)} if device == "cuda" else {}))


def _active() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _device() -> Any:
    import torch
    import torch.distributed as dist

    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def agree_on_stop(local: str | None) -> str | None:
    """Every rank stops at the same step: the strongest request seen by any rank wins
    (interrupt > cancel), so all ranks save the same checkpoint and none waits forever."""
    if not _active():
        return local
    import torch
    import torch.distributed as dist

    flag = torch.tensor([STOP_CODES[local]], device=_device())
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return {v: k for k, v in STOP_CODES.items()}[int(flag.item())]


def sum_over_ranks(value: float) -> float:
    """A per-rank count (tokens trained) summed over the job: tokens/s is the job's, not one GPU's."""
    if not _active():
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64, device=_device())
    dist.all_reduce(t)
    return float(t.item())


def gather_floats(value: float) -> list[float]:
    """One value per rank, in rank order (per-GPU peak memory)."""
    if not _active():
        return [value]
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64, device=_device())
    out = [torch.zeros_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t)
    return [float(x.item()) for x in out]


def barrier() -> None:
    if _active():
        import torch.distributed as dist

        dist.barrier()


def shutdown() -> None:
    """Leave the process group cleanly (NCCL warns about leaked communicators otherwise)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
