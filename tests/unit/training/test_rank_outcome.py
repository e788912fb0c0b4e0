"""The outcome of a multi-rank job from the files its ranks leave (launch._outcome): a rank's own
error is the reason when nobody asked the ranks to stop, not rank 0's "interrupted" (CI once showed
only "stopped by SIGTERM": torchrun had stopped rank 0 because rank 1 had failed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graphtune.tools.errors import GraphtuneError, JobCancelled
from graphtune.tools.training.distributed import OUTCOME_FILE
from graphtune.tools.training.launch import _outcome

INTERRUPTED = {"status": "interrupted", "message": "stopped by SIGTERM; resumable"}
RANK1_ERROR = {"status": "failed", "error": {"code": "internal_error", "field": None,
                                             "message": "rank 1: JSONDecodeError: Expecting value"}}


def _leave(folder: Path, outcome: dict | None, rank_error: dict | None) -> Path:
    if outcome:
        (folder / OUTCOME_FILE).write_text(json.dumps(outcome))
    if rank_error:
        (folder / "rank1-error.json").write_text(json.dumps(rank_error))
    (folder / "ranks.log").write_text("Traceback ...\nJSONDecodeError: Expecting value\n")
    return folder


def test_a_failed_rank_is_the_reason_when_no_stop_was_asked(tmp_path: Path) -> None:
    with pytest.raises(GraphtuneError, match="rank 1: JSONDecodeError"):
        _outcome(_leave(tmp_path, INTERRUPTED, RANK1_ERROR), 1, stop_asked=False)


def test_a_stop_this_job_asked_for_stays_an_interruption(tmp_path: Path) -> None:
    with pytest.raises(JobCancelled) as caught:
        _outcome(_leave(tmp_path, INTERRUPTED, RANK1_ERROR), 1, stop_asked=True)
    assert caught.value.interrupted


def test_an_unexplained_interruption_carries_the_log_tail(tmp_path: Path) -> None:
    with pytest.raises(JobCancelled) as caught:
        _outcome(_leave(tmp_path, INTERRUPTED, None), -9, stop_asked=False)
    assert caught.value.interrupted and "another rank" in caught.value.message
    assert "JSONDecodeError" in caught.value.message  # the ranks.log tail
