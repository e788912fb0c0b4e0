"""Server benchmarks: cold start to the first `tools/list` (graphtune vs a minimal one-tool
MCPServer, measured alternately in the same run) and `get_training_status` latency while a
real training job runs (tiny model on CPU). Usage: python bench/server_latency.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tiny_model (a test helper)

MINIMAL = """
from mcp.server.mcpserver import MCPServer
app = MCPServer("minimal")
@app.tool()
def ping() -> str:
    return "pong"
app.run("stdio")
"""


async def first_list(command: list[str], env: dict[str, str]) -> float:
    from mcp.client import Client
    from mcp.client.stdio import StdioServerParameters

    started = time.perf_counter()
    async with Client(StdioServerParameters(command=command[0], args=command[1:], env=env), mode="legacy") as client:
        await client.list_tools()
        return time.perf_counter() - started


def compile_sources(before: str | None = None) -> None:
    """Bytecode for graphtune's modules (and the `before` checkout's), as an installed wheel has
    (scripts/setup.sh does the same): the SDK's modules have theirs from pip, so without this the
    comparison would charge graphtune for compiling ~90 source files at every start wherever
    PYTHONDONTWRITEBYTECODE is set."""
    import compileall

    root = Path(__file__).resolve().parent.parent
    for folder in (root / "server", root / "tools", *([Path(before)] if before else [])):
        compileall.compile_dir(folder, quiet=1)


async def cold_start(runs: int, home: str, before: str | None = None) -> dict:
    """`before`: a folder holding graphtune/{server,tools} of another checkout, started in the same
    alternation (through PYTHONPATH) so that a change is compared with what it replaced."""
    compile_sources(before)
    env = {**os.environ, "GRAPHTUNE_HOME": home}
    minimal_script = Path(home) / "minimal_server.py"
    minimal_script.write_text(MINIMAL)
    ours, base, old = [], [], []
    for _ in range(runs):  # alternate so machine noise hits all alike
        base.append(await first_list([sys.executable, str(minimal_script)], env))
        ours.append(await first_list([sys.executable, "-m", "graphtune.server", "serve"], env))
        if before:
            old.append(await first_list([sys.executable, "-m", "graphtune.server", "serve"],
                                        {**env, "PYTHONPATH": before}))
    m_ours, m_base = statistics.median(ours), statistics.median(base)
    result = {"graphtune_first_tools_list_s": round(m_ours, 3), "minimal_mcpserver_s": round(m_base, 3),
              "ratio": round(m_ours / m_base, 3), "runs": runs}
    if old:
        result |= {"before_s": round(statistics.median(old), 3), "before_ratio": round(statistics.median(old) / m_base, 3)}
    return result


async def status_latency(home: str, polls: int) -> dict:
    from graphtune.server.app import create_app
    from graphtune.server.settings import Settings
    from tiny_model import create_tiny_model
    from mcp.client import Client

    settings = Settings(home=Path(home) / "status")
    app = create_app(settings)
    data = settings.datasets_dir / "memo"
    data.mkdir(parents=True)
    rows = [{"messages": [{"role": "user", "content": f"question {i}?"}, {"role": "assistant", "content": f"answer {i}."}]}
            for i in range(64)]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tiny = create_tiny_model(Path(home) / "tiny", [m["content"] for r in rows for m in r["messages"]])
    async with Client(app) as client:
        started = await client.call_tool("start_fine_tuning", {"dataset_name": "memo", "base_model": str(tiny),
                                                               "num_epochs": 10, "batch_size": 1, "device": "cpu"})
        job_id = started.structured_content["job_id"]
        while (await client.call_tool("get_training_status", {"job_id": job_id})).structured_content["status"] != "running" \
                or not app.services.store.get(job_id).progress_current:
            await anyio.sleep(0.2)
        samples = []
        for _ in range(polls):
            t0 = time.perf_counter()
            await client.call_tool("get_training_status", {"job_id": job_id})
            samples.append(time.perf_counter() - t0)
        status = app.services.store.get(job_id).status.value
        await client.call_tool("cancel_job", {"job_id": job_id, "force": True})
    samples.sort()
    return {"status_polls": polls, "job_status_during_polls": status,
            "p50_ms": round(1000 * samples[len(samples) // 2], 2), "p99_ms": round(1000 * samples[int(len(samples) * 0.99)], 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--polls", type=int, default=300, help="0: cold start only")
    parser.add_argument("--before", help="folder with graphtune/{server,tools} of another checkout, "
                        "started alternately with this one (compiled first)")
    args = parser.parse_args()
    home = tempfile.mkdtemp()
    result = anyio.run(cold_start, args.runs, home, args.before)
    if args.polls:
        result.update(anyio.run(status_latency, home, args.polls))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
