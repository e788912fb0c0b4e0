"""CLI for the registry and retraining (issue 9 part 6): diff, promote, delete-model, retrain
and `watch` (scheduled retraining; --once for cron/CI): the change check and its exit codes."""

from __future__ import annotations

import argparse
import json
import textwrap

import pytest
from graphtune.server.cli import main
from graphtune.server.cli_retrain import duration
from graphtune.server.settings import Settings
from graphtune.tools.dataset.extract import run_extract
from graphtune.tools.dataset.params import ExtractParams
from graphtune.tools.graph.ingest import IngestParams, run_ingest
from test_graph_versions import V2, write_shop
from test_model_registry import fake_model


def test_durations() -> None:
    assert [duration(t) for t in ("90", "30s", "15m", "1h", "1d")] == [90, 30, 900, 3600, 86400]
    with pytest.raises(argparse.ArgumentTypeError):
        duration("soon")


@pytest.fixture
def shop_model(tmp_path):
    """A code base `shop` ingested, its knowledge dataset, and a model on it that is `current`."""
    home = tmp_path / "home"
    settings = Settings(home=home)
    settings.ensure_dirs()
    root = write_shop(tmp_path / "shop")
    run_ingest(IngestParams(path=str(root), codebase="shop"), settings)
    run_extract(ExtractParams(dataset_name="shop-v1", objective="knowledge"), settings)
    fake_model(settings, "shop-m1", dataset="shop-v1")
    assert main(["--home", str(home), "promote", "shop-m1"]) == 0
    return home, root


def test_watch_once_does_nothing_while_the_code_is_what_the_model_learned(shop_model, capsys) -> None:
    home, root = shop_model
    capsys.readouterr()
    assert main(["--json", "--home", str(home), "watch", str(root), "--once"]) == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "unchanged"


def test_watch_once_retrains_when_the_code_changed(shop_model, capsys) -> None:
    home, root = shop_model
    (root / "cart.py").write_text(textwrap.dedent(V2))
    code = main(["--json", "--home", str(home), "watch", str(root), "--once", "--min-new-accuracy", "0.5"])
    # the change is seen and `retrain` is called; this fake model has no training recipe to continue
    assert code == 2 and "records no training config" in capsys.readouterr().err


def test_watch_leaves_out_what_the_last_ingest_excluded(shop_model, capsys) -> None:
    """A file under an excluded folder is not new code: watch compares the files the last ingest read."""
    home, root = shop_model
    run_ingest(IngestParams(path=str(root), codebase="shop", exclude=["*/tests/*"]), Settings(home=home))
    (root / "tests").mkdir()
    (root / "tests" / "test_cart.py").write_text("def test_total():\n    assert True\n")
    capsys.readouterr()
    assert main(["--json", "--home", str(home), "watch", str(root), "--once"]) == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "unchanged"


def test_watch_hashes_the_files_the_ingest_read(tmp_path) -> None:
    """disk_version and the ingest share one file-selection rule: exclude, languages and the size limit."""
    from graphtune.server.cli_retrain import disk_version
    from graphtune.tools.graph.versions import current_version, last_ingest

    settings = Settings(home=tmp_path / "home")
    settings.ensure_dirs()
    root = tmp_path / "tiny"
    (root / "gen").mkdir(parents=True)
    (root / "small.py").write_text("def f():\n    return 1\n")
    (root / "big.py").write_text("X = 1\n" * 400)  # over max_file_bytes: not read
    (root / "gen" / "made.py").write_text("def g():\n    return 2\n")  # excluded
    (root / "web.ts").write_text("export const x = 1;\n")  # not among `languages`
    run_ingest(IngestParams(path=str(root), codebase="tiny", exclude=["gen/*"], languages=["python"],
                            max_file_bytes=1000), settings)
    _, selection = last_ingest(settings, "embedded", "tiny")
    assert disk_version(root.resolve(), "tiny", selection) == current_version(settings, "embedded", "tiny")
    assert disk_version(root.resolve(), "tiny") != current_version(settings, "embedded", "tiny")


def test_watch_refuses_a_folder_that_was_never_ingested(tmp_path, capsys) -> None:
    folder = tmp_path / "fresh"
    folder.mkdir()
    (folder / "a.py").write_text("def f():\n    return 1\n")
    assert main(["--home", str(tmp_path / "home"), "watch", str(folder), "--once"]) == 2
    assert "graphtune ingest" in capsys.readouterr().err


def test_diff_promote_and_delete_commands(shop_model, capsys) -> None:
    home, root = shop_model
    (root / "cart.py").write_text(textwrap.dedent(V2))
    run_ingest(IngestParams(path=str(root), codebase="shop"), Settings(home=home))
    capsys.readouterr()
    assert main(["--json", "--home", str(home), "diff", "shop", "--since", "shop-v1", "--change", "added"]) == 0
    assert [c["entity"] for c in json.loads(capsys.readouterr().out)["changes"]] == ["shop.cart.fresh"]
    assert main(["--home", str(home), "delete-model", "shop-m1"]) == 2  # aliased: refused without --force
    assert "force" in capsys.readouterr().err
    assert main(["--json", "--home", str(home), "delete-model", "shop-m1", "--force"]) == 0
    assert json.loads(capsys.readouterr().out)["aliases_removed"] == ["current"]


def test_watch_does_not_retrain_code_the_policy_already_judged(shop_model, capsys) -> None:
    from graphtune.server.cli_retrain import disk_version

    home, root = shop_model
    (root / "cart.py").write_text(textwrap.dedent(V2))
    state = home / ".graphtune" / "watch" / "shop.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"version": disk_version(root, "shop"), "exit_code": 3}))  # kept last time
    capsys.readouterr()
    assert main(["--json", "--home", str(home), "watch", str(root), "--once"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["outcome"] == "unchanged" and out["last_attempt"]["exit_code"] == 3


def test_retrain_passes_the_continued_training_flags_to_the_tool(shop_model, capsys) -> None:
    home, _root = shop_model
    capsys.readouterr()
    code = main(["--json", "--home", str(home), "retrain", "shop", "--replay-fraction", "1.5"])
    assert code == 2 and "replay_fraction" in capsys.readouterr().err  # refused by the tool, nothing queued
