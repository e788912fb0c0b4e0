"""Ingest real code nobody here wrote and compare with an independent ast count."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from graph_truth import count_definitions
from graphtune.server.settings import Settings
from graphtune.tools.errors import ConfigError
from graphtune.tools.graph.embedded import EmbeddedGraph
from graphtune.tools.graph.ingest import IngestParams, run_ingest


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0])


@pytest.mark.parametrize("package", ["json", "email", "sqlite_utils"])
def test_counts_match_independent_ast_count(settings: Settings, package: str) -> None:
    settings.ensure_dirs()
    result = run_ingest(IngestParams(package=package), settings)
    truth = count_definitions(_package_dir(package))
    counts = result["graph_counts"]
    assert result["files_failed"] == 0
    assert counts["CodeFile"] == truth["files"]
    assert (counts["Class"], counts["Function"], counts["Method"]) == (
        truth["classes"], truth["functions"], truth["methods"])
    assert counts["HAS_METHOD"] == counts["Method"]
    assert counts["CALLS"] > 0 and counts["IMPORTS"] > 0 and counts["Parameter"] > counts["Function"]


def test_relationships_are_resolved(settings: Settings) -> None:
    settings.ensure_dirs()
    run_ingest(IngestParams(package="email"), settings)
    with EmbeddedGraph(settings.graph_dir, read_only=True) as g:
        bases = [tuple(r) for r in g.rows("MATCH (a:Class)-[:INHERITS]->(b:Class) RETURN a.name, b.name")]
        assert ("HeaderParseError", "MessageParseError") in bases and ("MessageParseError", "MessageError") in bases
        calls = {tuple(r) for r in g.rows("MATCH (a)-[:CALLS]->(b) RETURN a.qualified_name, b.qualified_name")}
        assert ("email.message_from_string", "email.parser.Parser.__init__") in calls  # via a local import
        params = list(g.rows("MATCH (f:Function {qualified_name: 'email.message_from_string'})-[:HAS_PARAMETER]->(p) "
                             "RETURN p.name, p.`order`, p.kind ORDER BY p.`order`"))
        assert params[0][:2] == ["s", 0] and params[-1][2] == "var_keyword"


def test_reingest_is_incremental_and_idempotent(settings: Settings, tmp_path: Path) -> None:
    settings.ensure_dirs()
    code = tmp_path / "proj"
    shutil.copytree(_package_dir("json"), code / "jsonpkg")
    first = run_ingest(IngestParams(path=str(code)), settings)
    again = run_ingest(IngestParams(path=str(code)), settings)
    assert again["files_parsed"] == 0 and again["files_unchanged"] == first["files_parsed"]
    assert again["graph_counts"] == first["graph_counts"]
    (code / "jsonpkg" / "decoder.py").write_text((code / "jsonpkg" / "decoder.py").read_text() +
                                                 "\n\ndef added(x):\n    return x\n")
    (code / "jsonpkg" / "tool.py").unlink()
    third = run_ingest(IngestParams(path=str(code)), settings)
    assert (third["files_parsed"], third["files_changed"], third["files_removed"]) == (1, 1, 1)
    assert third["graph_counts"]["Function"] == first["graph_counts"]["Function"] + 1 - 1  # +added, -tool.main
    assert third["graph_counts"]["CodeFile"] == first["graph_counts"]["CodeFile"] - 1


def test_hostile_files_are_reported_not_fatal(settings: Settings, tmp_path: Path) -> None:
    settings.ensure_dirs()
    code = tmp_path / "hostile"
    code.mkdir()
    (code / "ok.py").write_text('def fine(a: int) -> int:\n    """Return a."""\n    return a\n')
    (code / "broken.py").write_text("def broken(:\n")
    (code / "binary.py").write_bytes(b"\x00\xff\xfe\x89PNG" * 100)
    (code / "deep.py").write_text("x = " + "(" * 5000 + ")" * 5000 + "\n")
    (code / "big.py").write_text("x = 1\n" * 400_000)
    (code / "loop").symlink_to(code, target_is_directory=True)
    result = run_ingest(IngestParams(path=str(code), max_file_bytes=1_000_000), settings)
    failed = {f["path"] for f in result["failures"]}
    assert failed == {"broken.py", "binary.py", "deep.py", "big.py"}
    assert result["files_parsed"] == 1 and result["graph_counts"]["Function"] == 1


def test_bad_roots_are_clear_errors(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        run_ingest(IngestParams(path=str(tmp_path / "nope")), settings)
    with pytest.raises(ConfigError, match="relative path is read from the server's working folder") as caught:
        run_ingest(IngestParams(path="surely/not/here"), settings)
    assert str(Path.cwd()) in str(caught.value)
    with pytest.raises(ConfigError, match="not installed"):
        run_ingest(IngestParams(package="surely_not_a_package_xyz"), settings)
    with pytest.raises(ConfigError, match="exactly one"):
        run_ingest(IngestParams(), settings)


def _deny_folder(monkeypatch, name: str) -> None:  # noqa: ANN001
    """Make os.scandir refuse folders whose path ends with `name`, as a folder without read permission does
    (as root, chmod 000 does not stop a read, so the refusal is simulated where os.walk lists a folder)."""
    import os

    real_scandir = os.scandir

    def scandir(path="."):  # noqa: ANN001, ANN202
        if str(path).endswith(name):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_a_folder_that_cannot_be_listed_is_reported(settings: Settings, tmp_path: Path, monkeypatch) -> None:
    import os

    settings.ensure_dirs()
    code = tmp_path / "proj"
    (code / "locked").mkdir(parents=True)
    (code / "ok.py").write_text("def fine():\n    return 1\n")
    (code / "locked" / "hidden.py").write_text("def unseen():\n    return 2\n")
    _deny_folder(monkeypatch, "locked")
    result = run_ingest(IngestParams(path=str(code)), settings)
    assert result["files_parsed"] == 1
    assert {"path": "locked/", "error": "folder not read: Permission denied"} in result["failures"]
    monkeypatch.setattr(os, "scandir", lambda path=".": (_ for _ in ()).throw(PermissionError(13, "Permission denied",
                                                                                                str(path))))
    with pytest.raises(ConfigError, match="no source file could be listed"):
        run_ingest(IngestParams(path=str(code), codebase="other"), settings)


def test_an_excluded_unreadable_folder_is_not_reported_and_all_too_big_is_said(settings: Settings, tmp_path: Path,
                                                                                monkeypatch) -> None:
    settings.ensure_dirs()
    code = tmp_path / "proj"
    (code / "pgdata").mkdir(parents=True)
    (code / "ok.py").write_text("def fine():\n    return 1\n")
    _deny_folder(monkeypatch, "pgdata")
    result = run_ingest(IngestParams(path=str(code), exclude=["pgdata/*"]), settings)
    assert result["failures"] == [] and result["files_parsed"] == 1
    (code / "ok.py").write_text("x = 1\n" * 400)  # 2,400 bytes: over the limit below
    with pytest.raises(ConfigError, match="larger than the ingest reads"):
        run_ingest(IngestParams(path=str(code), codebase="tiny-limit", max_file_bytes=1_000, exclude=["pgdata/*"]),
                   settings)
