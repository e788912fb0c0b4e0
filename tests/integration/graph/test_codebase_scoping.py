"""Code bases live side by side in one graph: an ingest adds, updates and removes only its own
(issue 10: ingesting one file used to replace the whole graph; a non-Python path emptied it)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import textwrap
from pathlib import Path

import pytest
from graph_truth import count_definitions
from graphtune.server.settings import Settings
from graphtune.tools.dataset.extract import run_extract
from graphtune.tools.dataset.params import ExtractParams
from graphtune.tools.errors import ConfigError, SchemaMismatch
from graphtune.tools.graph.embedded import EmbeddedGraph
from graphtune.tools.graph.ingest import IngestParams, run_ingest


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0])


def _codebase_counts(settings: Settings, codebase: str) -> dict[str, int]:
    with EmbeddedGraph(settings.graph_dir, read_only=True) as graph:
        return graph.counts(codebase)


def _state(settings: Settings) -> tuple[dict[str, int], str]:
    with EmbeddedGraph(settings.graph_dir, read_only=True) as graph:
        return graph.counts(), graph.fingerprint()


def _assert_complete(counts: dict[str, int], package: str) -> None:
    truth = count_definitions(_package_dir(package))
    assert (counts["CodeFile"], counts["Class"], counts["Function"], counts["Method"]) == (
        truth["files"], truth["classes"], truth["functions"], truth["methods"]), package


def _write(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder


@pytest.fixture
def two_packages(settings: Settings) -> Settings:
    settings.ensure_dirs()
    first = run_ingest(IngestParams(package="json"), settings)
    second = run_ingest(IngestParams(package="http"), settings)
    assert (first["codebase"], second["codebase"]) == ("json", "http")
    assert second["files_removed"] == 0 and second["files_changed"] == 0
    return settings


def test_two_code_bases_ingested_in_turn_both_stay_complete(two_packages: Settings) -> None:
    _assert_complete(_codebase_counts(two_packages, "json"), "json")
    _assert_complete(_codebase_counts(two_packages, "http"), "http")
    totals, _ = _state(two_packages)
    json_counts, http_counts = _codebase_counts(two_packages, "json"), _codebase_counts(two_packages, "http")
    for table in ("CodeFile", "Class", "Function", "Method", "Parameter", "Pattern"):
        assert totals[table] == json_counts[table] + http_counts[table]
    assert totals["CodeBase"] == 2
    with EmbeddedGraph(two_packages.graph_dir, read_only=True) as graph:
        listed = {c["name"]: c for c in graph.codebases()}
        crossing = next(graph.rows("MATCH (a)-[r]->(b) WHERE a.codebase <> b.codebase RETURN count(r)"))[0]
    assert crossing == 0  # no edge leaves its code base
    assert set(listed) == {"json", "http"} and listed["json"]["root"] == str(_package_dir("json").resolve())
    assert listed["json"]["files"] == json_counts["CodeFile"] and listed["json"]["last_ingest"]
    # ingesting json again from scratch changes nothing of http, and vice versa
    again = run_ingest(IngestParams(package="json"), two_packages)
    assert again["files_parsed"] == again["files_removed"] == 0
    _assert_complete(_codebase_counts(two_packages, "http"), "http")


def test_single_file_ingest_touches_only_its_own_code_base(two_packages: Settings, tmp_path: Path) -> None:
    before = {cb: _codebase_counts(two_packages, cb) for cb in ("json", "http")}
    one = _write(tmp_path / "loose", {"tool.py": '''
        def main(argv):
            """Run the tool."""
            return helper(argv)

        def helper(argv):
            return len(argv)
        '''}) / "tool.py"
    result = run_ingest(IngestParams(path=str(one)), two_packages)
    assert result["codebase"] == "tool"
    assert (result["files_parsed"], result["files_removed"], result["files_changed"]) == (1, 0, 0)
    assert {cb: _codebase_counts(two_packages, cb) for cb in ("json", "http")} == before
    tool = _codebase_counts(two_packages, "tool")
    assert (tool["CodeFile"], tool["Function"], tool["CALLS"]) == (1, 2, 1)
    assert [c["name"] for c in result["codebases"]] == ["http", "json", "tool"]


def test_same_qualified_names_in_two_code_bases_stay_apart(settings: Settings, tmp_path: Path) -> None:
    settings.ensure_dirs()
    code = {"utils/__init__.py": '''
        class Base:
            pass

        class Child(Base):
            def run(self):
                return helper()

        def helper():
            return other()

        def other():
            return 1
        '''}
    for name in ("alpha", "beta"):
        run_ingest(IngestParams(path=str(_write(tmp_path / name, code))), settings)
    for name in ("alpha", "beta"):
        counts = _codebase_counts(settings, name)
        assert (counts["Class"], counts["Function"], counts["Method"]) == (2, 2, 1)
        assert (counts["CALLS"], counts["INHERITS"]) == (2, 1)  # resolved inside the code base only
    with EmbeddedGraph(settings.graph_dir, read_only=True) as graph:
        names = sorted(tuple(r) for r in graph.rows("MATCH (f:Function) RETURN f.codebase, f.qualified_name"))
    assert names == [("alpha", "utils.helper"), ("alpha", "utils.other"), ("beta", "utils.helper"),
                     ("beta", "utils.other")]  # readable names unchanged; the uid keeps them apart


@pytest.mark.parametrize("kind", ["text file", "folder without python", "excluded everything"])
def test_a_path_without_python_is_a_coded_error_and_the_graph_is_unchanged(
        two_packages: Settings, tmp_path: Path, kind: str) -> None:
    before = _state(two_packages)
    if kind == "text file":
        target, exclude = tmp_path / "hostname", []
        target.write_text("myhost\n")
    elif kind == "folder without python":
        target, exclude = _write(tmp_path / "docs", {"README.md": "hi", "sub/data.json": "{}"}), []
    else:
        target, exclude = _write(tmp_path / "proj", {"a.py": "x = 1\n"}), ["*.py"]
    with pytest.raises(ConfigError) as info:
        run_ingest(IngestParams(path=str(target), exclude=exclude), two_packages)
    assert str(info.value).startswith("[invalid_argument]") and info.value.field == "path" and info.value.hint
    assert "unchanged" in info.value.message
    assert _state(two_packages) == before


def test_reingest_of_an_unchanged_code_base_is_a_no_op(settings: Settings, tmp_path: Path) -> None:
    settings.ensure_dirs()
    code = tmp_path / "proj"
    shutil.copytree(_package_dir("json"), code / "jsonpkg")
    first = run_ingest(IngestParams(path=str(code)), settings)
    again = run_ingest(IngestParams(path=str(code)), settings)
    assert first["codebase"] == again["codebase"] == "proj"
    assert (again["files_parsed"], again["files_removed"], again["files_changed"]) == (0, 0, 0)
    assert again["files_unchanged"] == first["files_parsed"]
    assert again["graph_counts"] == first["graph_counts"]
    assert again["graph_fingerprint"] == first["graph_fingerprint"]


def test_patterns_are_removed_with_their_sources(settings: Settings, tmp_path: Path) -> None:
    settings.ensure_dirs()
    shapes = {"shapes/__init__.py": "", "shapes/point.py": '''
        from dataclasses import dataclass

        @dataclass
        class Point:
            x: int
        ''', "shapes/gen.py": '''
        def numbers():
            yield 1
        '''}
    proj = _write(tmp_path / "proj" / "shapes", {k.partition("/")[2]: v for k, v in shapes.items()})
    other = _write(tmp_path / "other", {"rec.py": shapes["shapes/point.py"]})
    run_ingest(IngestParams(path=str(proj)), settings)
    run_ingest(IngestParams(path=str(other)), settings)

    def patterns() -> set[tuple[str, str, str]]:
        with EmbeddedGraph(settings.graph_dir, read_only=True) as graph:
            return {tuple(r) for r in graph.rows("MATCH (p:Pattern) RETURN p.codebase, p.name, p.example")}

    assert patterns() == {("shapes", "dataclass", "shapes.point.Point"), ("shapes", "generator", "shapes.gen.numbers"),
                          ("other", "dataclass", "rec.Point")}
    (proj / "point.py").unlink()
    result = run_ingest(IngestParams(path=str(proj)), settings)
    assert result["files_removed"] == 1
    assert patterns() == {("shapes", "generator", "shapes.gen.numbers"), ("other", "dataclass", "rec.Point")}
    (proj / "gen.py").write_text("def numbers():\n    return [1]\n")  # no longer a generator
    run_ingest(IngestParams(path=str(proj)), settings)
    assert patterns() == {("other", "dataclass", "rec.Point")}
    assert _codebase_counts(settings, "shapes")["IMPLEMENTS_PATTERN"] == 0


def test_a_derived_name_taken_by_another_root_is_refused_an_explicit_one_moves_it(
        settings: Settings, tmp_path: Path) -> None:
    settings.ensure_dirs()
    first = _write(tmp_path / "one" / "app", {"main.py": "def run():\n    return 1\n"})
    second = _write(tmp_path / "two" / "app", {"main.py": "def run():\n    return 1\n",
                                                "extra.py": "def x():\n  pass\n"})
    run_ingest(IngestParams(path=str(first)), settings)
    before = _state(settings)
    with pytest.raises(ConfigError, match="already exists") as info:
        run_ingest(IngestParams(path=str(second)), settings)
    assert info.value.field == "codebase" and _state(settings) == before
    side = run_ingest(IngestParams(path=str(second), codebase="app-two"), settings)
    assert side["codebase"] == "app-two" and len(side["codebases"]) == 2
    moved = run_ingest(IngestParams(path=str(second), codebase="app"), settings)
    assert (moved["files_unchanged"], moved["files_parsed"]) == (1, 1)  # main.py kept by content hash
    with pytest.raises(ConfigError, match="not a valid code base name"):
        IngestParams(path=str(second), codebase="../evil")


def test_an_old_store_is_refused_with_a_rebuild_hint_and_left_alone(settings: Settings) -> None:
    import ladybug

    settings.graph_dir.parent.mkdir(parents=True)
    db = ladybug.Database(str(settings.graph_dir))
    conn = ladybug.Connection(db)
    conn.execute("CREATE NODE TABLE CodeFile(path STRING, sha STRING, PRIMARY KEY(path))")
    conn.execute("CREATE (:CodeFile {path: 'json/__init__.py', sha: 'abc'})")
    conn.close()
    db.close()
    with pytest.raises(SchemaMismatch, match="older graphtune") as info:
        run_ingest(IngestParams(package="json"), settings)
    assert "rm -r" in info.value.hint and str(info.value).startswith("[schema_mismatch]")
    with pytest.raises(SchemaMismatch):
        run_extract(ExtractParams(dataset_name="old"), settings)
    db = ladybug.Database(str(settings.graph_dir), read_only=True)
    rows = ladybug.Connection(db).execute("MATCH (f:CodeFile) RETURN f.path").get_all()
    db.close()
    assert rows == [["json/__init__.py"]]


def test_extraction_selects_code_bases(two_packages: Settings) -> None:
    params = {"quality_threshold": 0.5, "max_records": 100, "eval_fraction": 0.0}
    run_extract(ExtractParams(dataset_name="only-json", codebases=["json"], **params), two_packages)
    run_extract(ExtractParams(dataset_name="both", **params), two_packages)
    folder = two_packages.datasets_dir / "only-json"
    rows = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    assert rows
    for row in rows:
        meta = row["meta"]
        if meta["node_type"] == "Pattern":
            continue
        assert meta["file_path"].startswith("json/") and meta["key"].startswith("json"), meta
        assert "http" not in meta["key"]
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["source"]["codebases"] == ["json"] and metadata["config"]["codebases"] == ["json"]
    both = json.loads((two_packages.datasets_dir / "both" / "metadata.json").read_text())
    assert both["source"]["codebases"] is None
    assert both["records_read"] > metadata["records_read"]
    assert both["source"]["graph_fingerprint"] != metadata["source"]["graph_fingerprint"]


def test_unknown_code_base_is_a_coded_error_listing_the_known_ones(two_packages: Settings) -> None:
    with pytest.raises(ConfigError) as info:
        run_extract(ExtractParams(dataset_name="nope", codebases=["json", "requests"]), two_packages)
    assert info.value.field == "codebases" and "'requests'" in info.value.message
    assert "http, json" in info.value.message and str(info.value).startswith("[invalid_argument]")
    assert not (two_packages.datasets_dir / "nope").exists()
    with pytest.raises(ConfigError, match="empty"):
        ExtractParams(dataset_name="x", codebases=[])


@pytest.mark.anyio
async def test_tools_expose_code_bases(client, services, tmp_path: Path) -> None:
    services.settings.ensure_dirs()
    run_ingest(IngestParams(package="json"), services.settings)
    bad = await client.call_tool("extract_training_data", {"dataset_name": "x", "codebases": ["nope"]})
    assert bad.is_error and "[invalid_argument]" in bad.content[0].text and "json" in bad.content[0].text
    text = tmp_path / "hostname"
    text.write_text("host\n")
    bad = await client.call_tool("ingest_codebase", {"path": str(text)})
    assert bad.is_error and "[invalid_argument]" in bad.content[0].text and "not a Python file" in bad.content[0].text
    assert services.store.list()[1] == 0  # nothing was queued
    ok = await client.call_tool("ingest_codebase", {"package": "json", "codebase": "stdlib-json"})
    assert not ok.is_error
    job = services.store.list()[0][0]
    assert job.params["codebase"] == "stdlib-json"
    from conftest import wait_final

    from graphtune.tools.environment import validate

    # the queued ingest holds the store's write lock while it runs: read once it has finished (read
    # beside it, the report had no code bases at all on a loaded machine)
    assert wait_final(services.store, job.id).status.value == "succeeded"
    report = await validate(services.settings, probe_timeout_s=0.01)
    files = count_definitions(_package_dir("json"))["files"]
    assert sorted((c.name, c.files) for c in report.codebases) == [("json", files), ("stdlib-json", files)]
    assert any(c.name == "graph:embedded" and "2 code base(s): json, stdlib-json" in c.detail for c in report.checks)
