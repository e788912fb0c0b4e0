"""train_job._smaller_after_oom: what an out-of-memory error leads to (no GPU needed)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from graphtune.tools.errors import OutOfMemory
from graphtune.tools.training import train_job
from graphtune.tools.training.distributed import RankInfo


class _Ctx:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append((kind, data))


def _retry(plan: Any, attempt: int = 0, ranks: RankInfo = RankInfo(), **kw: Any) -> tuple[tuple[int, int, int], _Ctx]:
    ctx = _Ctx()
    return train_job._smaller_after_oom(RuntimeError("oom"), None, ctx, "cuda", "base", {}, plan, ranks,  # type: ignore[arg-type]
                                        attempt), ctx


def test_a_retry_halves_the_micro_batch_and_doubles_the_accumulation() -> None:
    plan = SimpleNamespace(tokens_per_batch=4096, batch_size=4, grad_accum=2)
    (budget, bsz, accum), ctx = _retry(plan)
    assert (budget, bsz, accum) == (2048, 2, 4)
    assert ctx.events == [("oom_retry", {"tokens_per_batch": 2048, "batch_size": 2, "gradient_accumulation_steps": 4})]


def test_no_retry_under_torchrun_nor_once_the_retries_are_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = SimpleNamespace(tokens_per_batch=4096, batch_size=4, grad_accum=2)
    with pytest.raises(OutOfMemory, match="rank 1 ran out") as info:
        _retry(plan, ranks=RankInfo(rank=1, world_size=2, local_rank=1))
    assert info.value.field == "tokens_per_batch"
    monkeypatch.setattr(train_job, "_dry_run", lambda *a: {"estimate": "about 9 GiB"})
    with pytest.raises(OutOfMemory, match="even at 4096 tokens .*about 9 GiB"):
        _retry(plan, attempt=train_job.MAX_OOM_RETRIES)
    with pytest.raises(OutOfMemory, match="even at 256 tokens"):
        _retry(SimpleNamespace(tokens_per_batch=256, batch_size=1, grad_accum=8))


def test_an_out_of_memory_retry_lets_the_failed_attempt_be_collected() -> None:
    """The error's traceback holds the frames it unwound; cleared, the attempt's objects can go."""
    import gc
    import weakref

    torch = pytest.importorskip("torch")

    class Model:
        pass

    def forward(model: Model) -> None:
        activations = [model]  # noqa: F841 - a frame local, like a forward's saved tensors
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    def attempt(released: bool) -> weakref.ref:
        model = Model()
        ref = weakref.ref(model)
        try:
            forward(model)
        except torch.OutOfMemoryError as exc:
            del model
            if released:
                train_job.release_failed_attempt(exc)
            gc.collect()
            assert (ref() is None) is released  # without the release the traceback keeps the model alive
        return ref

    attempt(released=False)
    attempt(released=True)
