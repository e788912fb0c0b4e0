"""Issue 10 part 5: the CLI prints readable lines by default and today's JSON with `--json`;
waits show one line per change (or a progress bar on a terminal); hints name CLI commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _queued_job(home: Path) -> str:
    from graphtune.server.services import Services
    from graphtune.server.settings import Settings

    services = Services.open(Settings(home=home))
    try:
        return services.store.create("sleep", {"steps": 1}, heavy=False).id
    finally:
        services.store.close()


def _run(capsys: pytest.CaptureFixture[str], home: Path, *argv: str) -> tuple[int, str, str]:
    from graphtune.server.cli import main

    code = main(["--home", str(home), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("argv", [["--json", "jobs"], ["jobs", "--json"]])
def test_json_flag_prints_the_tool_result_as_json(argv, tmp_path, capsys) -> None:
    job_id = _queued_job(tmp_path)
    code, out, _ = _run(capsys, tmp_path, *argv)
    listed = json.loads(out)
    assert code == 0 and listed["total"] == 1 and listed["jobs"][0]["job_id"] == job_id
    assert listed["jobs"][0]["status"] == "queued" and out.startswith("{\n  ")  # indented, as before


def test_an_error_with_json_is_json_too(tmp_path, capsys) -> None:
    """A script that asked for --json reads the error's code, field and hint, not a line of prose."""
    code, out, err = _run(capsys, tmp_path, "--json", "status", "job_0123456789ab")
    error = json.loads(err)["error"]
    assert code == 2 and out == "" and error["code"] == "job_not_found" and error["field"] == "job_id"
    assert "list_jobs" not in (error["hint"] or "")  # hints name CLI commands, as the human line does
    code, _, err = _run(capsys, tmp_path, "status", "job_0123456789ab")
    assert code == 2 and err.startswith("error: [job_not_found]")


def test_human_output_is_one_line_per_job(tmp_path, capsys) -> None:
    first, second = _queued_job(tmp_path), _queued_job(tmp_path)
    code, out, _ = _run(capsys, tmp_path, "jobs")
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "jobs:" and lines[-1] == "total: 2"
    assert [line.split()[0] for line in lines[1:3]] == [second, first]  # newest first
    assert all(line.split()[1:3] == ["sleep", "queued"] for line in lines[1:3])


def test_human_job_view_says_how_to_follow_it(tmp_path, capsys) -> None:
    job_id = _queued_job(tmp_path)
    code, out, _ = _run(capsys, tmp_path, "status", job_id)
    assert code == 0 and out.splitlines()[0] == f"sleep job {job_id}: queued"
    assert f"graphtune status {job_id} --follow" in out
    code, out, _ = _run(capsys, tmp_path, "status", job_id, "--json")
    assert json.loads(out)["job_id"] == job_id


def test_ingest_wait_human_and_json(tmp_path, capsys) -> None:
    code, out, err = _run(capsys, tmp_path, "ingest", "--package", "json", "--wait")
    assert code == 0, err
    assert out.splitlines()[0].startswith("ingest job job_") and out.splitlines()[0].endswith(": succeeded")
    assert "  codebase: json" in out and "  files_parsed: " in out
    progress = err.splitlines()
    assert progress and all(line.startswith("[ingest job_") for line in progress)
    assert len(progress) == len(set(progress))  # one line per change, never the same line twice in a row
    code, out, _ = _run(capsys, tmp_path, "--json", "ingest", "--package", "json", "--wait")
    final = json.loads(out)
    assert code == 0 and final["status"] == "succeeded" and final["result"]["codebase"] == "json"


def test_line_reporter_prints_only_changes(capsys) -> None:
    from graphtune.server.cli_progress import reporter

    view = {"kind": "train", "job_id": "job_1", "status": "running", "progress": {"current": 1, "total": 4,
                                                                                   "unit": "steps"}}
    with reporter() as shown:  # not a terminal under pytest: plain lines
        shown.update(view)
        shown.update(view)
        shown.update({**view, "progress": {"current": 2, "total": 4, "unit": "steps"}})
    assert capsys.readouterr().err.splitlines() == ["[train job_1] running  1/4 steps", "[train job_1] running  2/4 steps"]


def test_bar_reporter_runs(monkeypatch) -> None:
    from graphtune.server.cli_progress import BarReporter

    view = {"kind": "train", "job_id": "job_1", "status": "running", "progress": {"current": 1, "total": 4},
            "latest_metrics": {"loss": 1.5}}
    with BarReporter() as bar:
        bar.update(view)
        bar.update({**view, "status": "succeeded", "progress": {"current": 4, "total": 4}})
    assert bar.stage.startswith("[train job_1] succeeded")


@pytest.mark.parametrize(("hint", "cli"), [
    ("Call list_datasets.", "Call graphtune datasets."),
    ("poll get_training_status(job_id='job_1a') until", "poll graphtune status job_1a until"),
    ("Use device='auto' (or 'cpu').", "Use --device auto (or 'cpu')."),
    ("e.g. path='/src/app' or package='json'.", "e.g. /src/app or --package json."),
    ("Start with dry_run=true; set compare=false.", "Start with --dry-run; set no --compare."),
    ("`lora_rank`=1000 is outside 4..64.", "`lora_rank`=1000 is outside 4..64."),
])
def test_hints_name_cli_commands_and_flags(hint, cli) -> None:
    from graphtune.server.cli_output import cli_wording

    assert cli_wording(hint) == cli


def test_cli_starts_without_rich_or_the_server(tmp_path) -> None:
    import subprocess
    import sys

    code = ("import sys; from graphtune.server.cli import build_parser; build_parser();"
            "loaded = [m for m in ('rich', 'torch', 'mcp.server.mcpserver') if m in sys.modules];"
            "print(loaded); sys.exit(1 if loaded else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_line_progress_prints_when_the_job_moves_not_when_its_eta_ticks(capsys) -> None:
    from graphtune.server.cli_progress import LineReporter

    def view(step: int, eta: float) -> dict:
        return {"kind": "train", "job_id": "job_1", "status": "running", "eta_seconds": eta,
                "progress": {"current": step, "total": 48, "unit": "steps", "message": "loss 1.0343"},
                "latest_metrics": {"loss": 1.0343}}

    reporter = LineReporter()
    for step, eta in [(5, 2282), (5, 2291), (5, 2299), (6, 1979), (6, 1986)]:
        reporter.update(view(step, eta))
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["[train job_1] running  5/48 steps  loss 1.0343  eta=2282s",
                     "[train job_1] running  6/48 steps  loss 1.0343  eta=1979s"]


def test_output_into_a_closed_pipe_is_no_traceback(tmp_path) -> None:
    """`graphtune --json jobs | head -1`: the reader leaves early; the CLI stops quietly, as `cat` does."""
    import os
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "graphtune.server.cli", "--home", str(tmp_path), "--json", "jobs"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    proc.stdout.close()  # the reader is gone before the CLI writes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and "Traceback" not in err and "BrokenPipe" not in err, err
