"""Issue 22 "done when": the `json` task with tools only, in at most 15 calls including polling and
no wasted run -- the call sequence of docs/walkthrough.md, driven through the in-memory MCP client.

The walkthrough trains the built-in smollm2-135m-instruct; here a tiny model built from the
dataset's own text stands in for it (test setup, not an agent call) and `max_steps` keeps the run
short. Every other call, argument and decision (wait by the ETA, read the verdict) is the same.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.anyio

MAX_CALLS = 15


class Agent:
    """Counts every tool call, as an agent's budget would."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls = client, []

    async def __call__(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(tool)
        result = await self.client.call_tool(tool, arguments)
        assert not result.is_error, (tool, result.content[0].text)
        return result.structured_content

    async def wait(self, job_id: str) -> dict[str, Any]:
        """Wait for a job with held polls (`wait_seconds`: the reply comes when the job ends, or
        after 50 s with its progress), one call each."""
        while True:
            view = await self("get_training_status", {"job_id": job_id, "wait_seconds": 50})
            if view["status"] not in ("queued", "running"):
                return view


async def test_the_json_task_takes_at_most_15_calls(client, services, tmp_path) -> None:
    agent = Agent(client)
    env = await agent("validate_environment", {})
    assert env["ok"]
    await agent("ingest_codebase", {"package": "json"})
    extract = await agent("extract_training_data", {"dataset_name": "json-facts", "objective": "knowledge"})
    done = await agent.wait(extract["job_id"])  # queued behind the ingest: one wait covers both
    assert done["status"] == "succeeded" and done["result"]["probes"] > 0, done["error"]

    from tiny_model import create_tiny_model, texts_from_jsonl

    folder = services.settings.datasets_dir / "json-facts"
    base = str(create_tiny_model(tmp_path / "tiny", texts_from_jsonl(folder / "train.jsonl"), vocab_size=600,
                                 hidden=64))
    started = time.perf_counter()
    plan = (await agent("start_fine_tuning", {"dataset_name": "json-facts", "base_model": base, "device": "cpu",
                                              "dry_run": True}))["result"]
    assert time.perf_counter() - started < 2.0
    assert plan["settings"]["lora_rank"] == {"value": 64, "source": "preset knowledge"}
    assert plan["optimizer_steps"] > 0 and plan["estimate"]["seconds"]["high"] >= plan["estimate"]["seconds"]["low"]

    job = await agent("start_fine_tuning", {"dataset_name": "json-facts", "base_model": base, "device": "cpu",
                                            "max_steps": 4, "max_probes": 20, "output_name": "json-lora"})
    trained = await agent.wait(job["job_id"])
    assert trained["status"] == "succeeded", trained["error"]
    assert trained["progress"]["message"] == "finished: the train job succeeded"
    verdict = trained["result"]["verdict"]
    assert verdict["accuracy"]["probes"] == 20 and verdict["next_steps"][0]["tool"] == "ask_model"

    where = await agent("ask_model", {"model": "json-lora", "prompt": "Where is `JSONDecoder` defined?",
                                      "compare": True, "max_new_tokens": 24})
    takes = await agent("ask_model", {"model": "json-lora", "prompt": "What parameters does `json.dumps` take?",
                                      "max_new_tokens": 24})
    everyday = await agent("ask_model", {"model": "json-lora", "prompt": "Give me one tip for writing clear emails.",
                                         "compare": True, "max_new_tokens": 24})
    for answer in (where, takes, everyday):
        assert answer["status"] == "succeeded" and answer["answers"]
    if verdict["trust"]["verdict"] == "trust":
        await agent("promote_model", {"model_name": "json-lora", "alias": "current"})
    assert len(agent.calls) <= MAX_CALLS, agent.calls
    assert agent.calls.count("start_fine_tuning") == 2  # one dry run, one run: no wasted run
    print("calls:", len(agent.calls), agent.calls, "trust:", verdict["trust"]["verdict"])
