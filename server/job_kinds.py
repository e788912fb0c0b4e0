"""Job kinds, as the runner and the worker look them up.

Each job kind is declared by the tool module that queues it (graphtune.tools.tool_registry:
`@mcp_tool(..., jobs=(JobKind(...),))`, with its handler string, heaviness and resources); this
module walks that registry once and adds the test-only kinds. Handlers are imported only inside
the worker process, so registering a training kind never imports torch into the server.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from graphtune.tools.errors import ConfigError
from graphtune.tools.tool_registry import JobKind, Resources, job_kinds

__all__ = ["KINDS", "TEST_KINDS", "JobKind", "Resources", "get_kind", "run_sleep_job"]


def sleep_resources(params: dict[str, Any], settings: Any) -> Resources:
    """The sleep kinds take their resources from their params (tests of the claims)."""
    return Resources(writes=tuple(params.get("writes", ())), reads=tuple(params.get("reads", ())),
                     creates=tuple(params.get("creates", ())))


# Registered only when settings.enable_test_job_kinds is on: a controllable job for the
# runner's own tests (kill, cancel, queueing) that needs no graph or model.
TEST_KINDS: dict[str, JobKind] = {
    "sleep": JobKind("sleep", "graphtune.server.job_kinds:run_sleep_job", False, "Test only: sleep in steps.",
                     sleep_resources),
    "sleep_heavy": JobKind("sleep_heavy", "graphtune.server.job_kinds:run_sleep_job", True, "Test only.",
                           sleep_resources),
    "sleep_restartable": JobKind("sleep_restartable", "graphtune.server.job_kinds:run_sleep_job", False, "Test only.",
                                 sleep_resources, restart_when_lost=True),
}


@functools.cache
def _kinds() -> dict[str, JobKind]:
    return job_kinds()


def __getattr__(name: str) -> Any:
    """`KINDS` (every kind the tools declare) is built on first use: a worker running a test kind
    does not import the tool modules."""
    if name == "KINDS":
        return _kinds()
    raise AttributeError(name)


def get_kind(name: str, *, include_test_kinds: bool) -> JobKind:
    if include_test_kinds and name in TEST_KINDS:
        return TEST_KINDS[name]
    table = {**_kinds(), **(TEST_KINDS if include_test_kinds else {})}
    if name not in table:
        raise ConfigError(f"unknown job kind `{name}`.", field="kind", hint=f"Known kinds: {sorted(table)}.")
    return table[name]


def run_sleep_job(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Test-only job: `steps` steps of `step_s` seconds, a safe point after each."""
    steps, step_s = int(params.get("steps", 10)), float(params.get("step_s", 0.1))
    for step in range(steps):
        ctx.progress(step, steps, "steps", f"step {step}")
        time.sleep(step_s)
        ctx.event("metrics", {"step": step + 1})
    if params.get("fail"):
        raise ConfigError("this test job was told to fail.", field="fail")
    ctx.progress(steps, steps, "steps", "done")
    return {"steps": steps, "parent_result": ctx.parent_result()} if params.get("echo_parent") else {"steps": steps}
