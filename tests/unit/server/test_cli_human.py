"""What the CLI prints for people (graphtune.server.cli_output.human): each listed item says
what it is, not only its kind."""

from __future__ import annotations

from graphtune.server.cli_output import cli_wording, human


def test_diff_changes_name_the_entity_and_the_change() -> None:
    text = human({"codebase": "p", "changes": [
        {"entity": "p.Store", "kind": "class", "change": "added", "file": "p/__init__.py"}],
        "versions": [{"version": "0718", "created_at": "2026-12-05T02:47:29Z", "entities": 3}]})
    lines = text.splitlines()
    assert lines[2] == "  added  class  p.Store  p/__init__.py"
    assert lines[4] == "  0718  2026-12-05T02:47:29Z"


def test_a_base_model_that_does_not_load_offline_says_so() -> None:
    text = human({"base_models": [
        {"base_model": "a", "kind": "builtin", "usable_offline": True},
        {"base_model": "b", "kind": "builtin", "usable_offline": False}]})
    assert text.splitlines()[1:] == ["  builtin  a", "  builtin  b  (not usable offline)"]


def test_a_chat_record_shows_its_messages_as_written() -> None:
    """Records are the user's data: the CLI's rewording of hints (tool names to commands, name=value to
    flags) must not touch them; code holds `lo=0` and names like list_datasets."""
    text = cli_wording(human({"name": "d", "records": [{"messages": [
        {"role": "user", "content": "What is `load` for?"},
        {"role": "assistant", "content": "It loads.\ndef bisect(a, x, lo=0, hi=None): list_datasets()"}],
        "meta": {"task": "summary"}}], "hint": "Call list_datasets with limit=5."}))
    assert text.splitlines()[1:4] == ["records:", "  user: What is `load` for? | assistant: It loads.",
                                      "def bisect(a, x, lo=0, hi=None): list_datasets()"]
    assert "graphtune datasets with --limit 5" in text  # the tool's own hint is still reworded


def test_an_item_without_known_keys_is_never_an_empty_line() -> None:
    assert human({"rows": [{"a": {"b": 1}}]}).splitlines()[1].strip() == '{"a": {"b": 1}}'


def test_a_dry_run_reads_as_a_plan_one_setting_a_line() -> None:
    """A dry run has no job id; its plan (30+ settings, each with its source) was one JSON line."""
    view = {"kind": "train", "status": "dry_run", "cancel_requested": False,
            "progress": {"message": "dry run: nothing was queued"},
            "result": {"dry_run": True, "device": "cpu", "optimizer_steps": 12,
                       "settings": {name: {"value": i, "source": "default"} for i, name in enumerate("abcdefghijklmn")}}}
    lines = human(view).splitlines()
    assert lines[0] == "train dry run (dry run: nothing was queued)"
    assert "  optimizer_steps: 12" in lines and "  settings.a: 0  (default)" in lines
    assert all(len(line) < 200 for line in lines) and not any("follow it" in line for line in lines)
