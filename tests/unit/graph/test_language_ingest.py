"""Tree-sitter ingest of TypeScript/JavaScript, Go, Java and Rust: hand-counted fixtures
(tests/fixtures/langs), real packages against independent counts (tests/fixtures/real), a
mixed-language repository, bad files, incremental re-ingest and the `languages` filter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from graphtune.server.settings import Settings
from graphtune.tools.errors import ConfigError
from graphtune.tools.graph.embedded import EmbeddedGraph
from graphtune.tools.graph.ingest import IngestParams, run_ingest
from lang_truth import count_go, count_java, count_rust

HERE = Path(__file__).resolve().parents[2]  # tests/: fixtures/ and ts_count.js
LANGS = HERE / "fixtures" / "langs"
REAL = HERE / "fixtures" / "real"
NODES = ("CodeFile", "Class", "Function", "Method", "Parameter")
EDGES = ("DEFINES", "HAS_METHOD", "HAS_PARAMETER", "INHERITS", "CALLS", "IMPORTS")

# Counted by hand from the fixture sources (see the comments in each file's test below).
HAND_COUNTS = {
    "ts": {"CodeFile": 4, "Class": 6, "Function": 7, "Method": 11, "Parameter": 14,
           "DEFINES": 13, "HAS_METHOD": 11, "HAS_PARAMETER": 14, "INHERITS": 4, "CALLS": 8, "IMPORTS": 2},
    "go": {"CodeFile": 3, "Class": 5, "Function": 3, "Method": 6, "Parameter": 5,
           "DEFINES": 8, "HAS_METHOD": 6, "HAS_PARAMETER": 5, "INHERITS": 2, "CALLS": 4, "IMPORTS": 2},
    "java": {"CodeFile": 3, "Class": 6, "Function": 0, "Method": 12, "Parameter": 11,
             "DEFINES": 5, "HAS_METHOD": 12, "HAS_PARAMETER": 11, "INHERITS": 2, "CALLS": 4, "IMPORTS": 1},
    "rust": {"CodeFile": 3, "Class": 4, "Function": 3, "Method": 9, "Parameter": 11,
             "DEFINES": 7, "HAS_METHOD": 9, "HAS_PARAMETER": 11, "INHERITS": 4, "CALLS": 6, "IMPORTS": 1},
}


def _ingest(settings: Settings, root: Path, **kw: object) -> dict:
    settings.ensure_dirs()
    return run_ingest(IngestParams(path=str(root), workers=1, **kw), settings)


def _rows(settings: Settings, query: str) -> set[tuple]:
    with EmbeddedGraph(settings.graph_dir, read_only=True) as g:
        return {tuple(r) for r in g.rows(query)}


def _edges(settings: Settings, rel: str) -> set[tuple[str, str]]:
    return _rows(settings, f"MATCH (a)-[:{rel}]->(b) RETURN a.qualified_name, b.qualified_name")


@pytest.mark.parametrize("lang", sorted(HAND_COUNTS))
def test_fixture_counts_are_exact(settings: Settings, lang: str) -> None:
    result = _ingest(settings, LANGS / lang)
    assert result["files_failed"] == 0, result["failures"]
    counts = result["graph_counts"]
    assert {k: counts[k] for k in NODES + EDGES} == HAND_COUNTS[lang]


def test_typescript_fixture_edges_docs_and_kinds(settings: Settings) -> None:
    _ingest(settings, LANGS / "ts")
    assert _edges(settings, "INHERITS") == {("src.geo.Shape", "src.geo.Named"), ("src.geo.Base", "src.geo.Named"),
                                            ("src.geo.Circle", "src.geo.Base"), ("src.geo.Circle", "src.geo.Shape")}
    calls = _edges(settings, "CALLS")
    assert ("src.geo.Circle.area", "src.geo.util.square") in calls  # through `import {square as sq}`
    assert ("src.geo.unit", "src.geo.Circle.constructor") in calls  # `new Circle(1)`
    assert ("src.app.main", "src.helpers.unitCircle") in calls  # through `require()`
    kinds = dict(_rows(settings, "MATCH (c:Class) RETURN c.name, c.kind"))
    assert kinds == {"Shape": "interface", "Named": "interface", "Color": "enum", "Base": "class",
                     "Circle": "class", "Runner": "class"}
    docs = dict(_rows(settings, "MATCH (f:Function) RETURN f.name, f.docstring"))
    assert docs["clamp"] == "Clamp a value into a range.\n@param value the number" and docs["main"] == "Entry point."
    langs = dict(_rows(settings, "MATCH (f:CodeFile) RETURN f.path, f.language"))
    assert langs["src/geo/util.ts"] == "typescript" and langs["src/app.js"] == "javascript"
    params = sorted(_rows(settings, "MATCH (:Function {name: 'clamp'})-[:HAS_PARAMETER]->(p) "
                                    "RETURN p.`order`, p.name, p.type, p.`default`"))
    assert params == [(0, "value", "number", ""), (1, "low", "", "0"), (2, "high", "number", "1")]


def test_go_fixture_receivers_embeds_and_packages(settings: Settings) -> None:
    _ingest(settings, LANGS / "go")
    pkg = "example.com/geo/shapes"
    assert (f"{pkg}.Meters", f"{pkg}.Meters.Double") in _edges(settings, "HAS_METHOD")  # method in another file
    assert _edges(settings, "INHERITS") == {(f"{pkg}.Shape", f"{pkg}.Named"), (f"{pkg}.Circle", f"{pkg}.Base")}
    assert _edges(settings, "CALLS") == {("example.com/geo.main", f"{pkg}.NewCircle"), ("example.com/geo.main", f"{pkg}.Pi"),
                                         (f"{pkg}.Circle.Area", f"{pkg}.Pi"), (f"{pkg}.Circle.Scale", f"{pkg}.Circle.Area")}
    docs = dict(_rows(settings, "MATCH (c:Class) RETURN c.name, c.docstring"))
    assert docs["Base"] == "Base holds a label." and docs["Shape"] == "Shape is anything with an area."
    files = dict(_rows(settings, "MATCH (f:CodeFile) RETURN f.path, f.description"))
    assert files["shapes/shape.go"] == "Package shapes has geometric shapes."


def test_java_fixture_nested_types_constructors_and_imports(settings: Settings) -> None:
    _ingest(settings, LANGS / "java")
    pkg = "com.example.zoo"
    assert _edges(settings, "INHERITS") == {(f"{pkg}.Dog", f"{pkg}.Animal"), (f"{pkg}.Dog", f"{pkg}.Pet")}
    assert _edges(settings, "CALLS") == {(f"{pkg}.Animal.describe", f"{pkg}.Animal.sound"),
                                         (f"{pkg}.Dog.fetch", f"{pkg}.Dog.sound"),
                                         (f"{pkg}.Dog.fetch", f"{pkg}.Kennel.house"),
                                         (f"{pkg}.Kennel.house", f"{pkg}.Dog.Dog")}
    assert f"{pkg}.Animal.Note" in {r[0] for r in _rows(settings, "MATCH (c:Class) RETURN c.qualified_name")}
    kinds = dict(_rows(settings, "MATCH (c:Class) RETURN c.name, c.kind"))
    assert (kinds["Pet"], kinds["Size"], kinds["Kennel"]) == ("interface", "enum", "record")
    assert _rows(settings, "MATCH (a:CodeFile)-[:IMPORTS]->(b:CodeFile) RETURN a.path, b.path") == {
        ("com/example/zoo/Dog.java", "com/example/zoo/Animal.java")}
    docs = dict(_rows(settings, "MATCH (m:Method) RETURN m.qualified_name, m.docstring"))
    assert docs[f"{pkg}.Animal.Animal"] == "Make an animal."


def test_rust_fixture_impls_traits_and_modules(settings: Settings) -> None:
    _ingest(settings, LANGS / "rust")
    m = "pets.zoo.animal"  # the crate is named `pets` in its Cargo.toml
    assert _edges(settings, "INHERITS") == {(f"{m}.Animal", f"{m}.Named"), (f"{m}.Dog", f"{m}.Named"),
                                            (f"{m}.Dog", f"{m}.Animal"), ("pets.zoo.Pen", f"{m}.Named")}
    calls = _edges(settings, "CALLS")
    assert ("pets.tests.it_works", "pets.bark_twice") in calls and (f"{m}.Dog.rename", f"{m}.Dog.new") in calls
    # calls inside macro invocations (`format!(...)`) are token trees to tree-sitter: not seen
    assert not any(a == "pets.bark_twice" for a, _ in calls)
    kinds = dict(_rows(settings, "MATCH (c:Class) RETURN c.name, c.kind"))
    assert kinds == {"Named": "trait", "Animal": "trait", "Dog": "struct", "Pen": "enum"}
    docs = dict(_rows(settings, "MATCH (c:Class) RETURN c.name, c.docstring"))
    assert docs["Dog"] == "A dog." and docs["Animal"] == "An animal speaks."  # `#[derive]` between is skipped
    assert _rows(settings, "MATCH (m:Method {name: 'rename'}) RETURN m.is_async") == {(True,)}


@pytest.mark.parametrize(("folder", "counter"), [("uuid", count_go), ("rnfs", count_java), ("semver", count_rust)])
def test_real_package_matches_independent_count(settings: Settings, folder: str, counter) -> None:
    result = _ingest(settings, REAL / folder)
    truth = counter(REAL / folder)
    counts = result["graph_counts"]
    assert result["files_failed"] == 0, result["failures"]
    assert (counts["Class"], counts["Function"], counts["Method"]) == (
        truth["classes"], truth["functions"], truth["methods"])
    assert counts["CALLS"] > 20 and counts["Parameter"] > counts["Function"]


def _typescript_module() -> str | None:
    """The `typescript` npm package (5.x has the JS compiler API), if node can find one."""
    if shutil.which("node") is None:
        return None
    candidates = [os.environ.get("TS_COMPILER_MODULE", ""), "typescript"]
    for candidate in filter(None, candidates):
        script = f"const ts=require({json.dumps(candidate)}); process.stdout.write(typeof ts.createSourceFile)"
        probe = subprocess.run(["node", "-e", script],
                               capture_output=True, text=True, timeout=60, check=False)
        if probe.stdout == "function":
            return candidate
    return None


def test_typescript_package_matches_compiler_api_count(settings: Settings) -> None:
    root = REAL / "immer"
    result = _ingest(settings, root)
    assert [f["path"] for f in result["failures"]] == ["src/types/types-external.ts"]  # grammar gap, reported
    truth = json.loads((root / "TS_COMPILER_COUNT.json").read_text())
    counts = result["graph_counts"]
    assert (counts["Class"], counts["Function"], counts["Method"], counts["Parameter"]) == (
        truth["classes"], truth["functions"], truth["methods"], truth["parameters"])
    module = _typescript_module()
    if module is None:
        pytest.skip("node with the `typescript` npm package (5.x) not found; checked the stored compiler count only")
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.ts")
                   if not p.name.endswith(".d.ts") and p.name != "types-external.ts")
    live = subprocess.run(["node", str(HERE / "ts_count.js"), module, str(root), *files],
                          capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(live.stdout) == {k: truth[k] for k in ("classes", "functions", "methods", "parameters")}


def test_mixed_language_repository_and_filter(settings: Settings, tmp_path: Path) -> None:
    repo = tmp_path / "mixed"
    for lang in HAND_COUNTS:
        shutil.copytree(LANGS / lang, repo / lang)
    (repo / "tools").mkdir()
    (repo / "tools" / "gen.py").write_text("class Gen:\n    def run(self, n: int) -> int:\n        return n\n")
    for skipped in ("node_modules/dep", "vendor/x", "target/debug", "dist"):
        (repo / skipped).mkdir(parents=True)
        (repo / skipped / "junk.js").write_text("function junk() {}\n")
    result = _ingest(settings, repo)
    counts = result["graph_counts"]
    assert result["files_failed"] == 0
    assert result["languages"] == {"go": 3, "java": 3, "javascript": 2, "python": 1, "rust": 3, "typescript": 2}
    for kind in ("Class", "Function", "Method", "Parameter"):
        assert counts[kind] == sum(c[kind] for c in HAND_COUNTS.values()) + {"Class": 1, "Method": 1,
                                                                             "Parameter": 2}.get(kind, 0)
    only = _ingest(settings, repo, languages=["go", "python"], codebase="mixed-go")
    assert only["languages"] == {"go": 3, "python": 1} and only["codebase_files"] == 4


def test_unparsable_files_are_reported_not_fatal(settings: Settings, tmp_path: Path) -> None:
    code = tmp_path / "bad"
    code.mkdir()
    (code / "ok.ts").write_text("export function fine(a: number): number { return a; }\n")
    (code / "broken.ts").write_text("export class {{{ nope(\n")
    (code / "broken.go").write_text("package x\nfunc (\n")
    (code / "binary.rs").write_bytes(b"\x00\xff\xfe\x89PNG" * 100)
    (code / "Broken.java").write_text("class A { void m( }\n")
    result = _ingest(settings, code)
    assert {f["path"] for f in result["failures"]} == {"broken.ts", "broken.go", "binary.rs", "Broken.java"}
    assert all("syntax error" in f["error"] or "Error" in f["error"] for f in result["failures"])
    assert result["files_parsed"] == 1 and result["graph_counts"]["Function"] == 1


def test_grammar_gaps_keep_the_rest_of_the_file(settings: Settings, tmp_path: Path) -> None:
    """tree-sitter-typescript 0.23 cannot read `in out` variance (TypeScript 4.7): the file is kept,
    its other definitions stored, and the report names it as partial, not failed."""
    code = tmp_path / "gaps"
    code.mkdir()
    (code / "brand.ts").write_text(
        "export interface Brand<in out K extends string> {\n  readonly tag: K\n}\n"
        "export function make(a: number, b: string): number {\n  return helper(a)\n}\n"
        "export const helper = (x: number): number => x + 1\n"
        "export class Box {\n  open(key: string): void {}\n}\n")
    result = _ingest(settings, code)
    assert result["files_failed"] == 0 and result["files_parsed"] == 1
    assert result["files_partial"] == 1 and result["partial"][0]["path"] == "brand.ts"
    assert "typescript grammar could not read" in result["partial"][0]["note"]
    counts = result["graph_counts"]
    assert (counts["Function"], counts["Method"], counts["CALLS"]) == (2, 1, 1)


def test_a_multi_line_destructured_parameter_loads(settings: Settings, tmp_path: Path) -> None:
    """A parameter's name is part of its id, and relationship COPYs run LadybugDB's parallel CSV reader,
    which refuses a newline inside a field: the `effect` library's ingest failed on this shape."""
    code = tmp_path / "destructure"
    code.mkdir()
    (code / "make.ts").write_text("export const make = ({\n  limit,\n  window\n}: Options): number => limit\n")
    result = _ingest(settings, code)
    assert result["files_failed"] == 0 and result["graph_counts"]["HAS_PARAMETER"] == 1
    with EmbeddedGraph(settings.graph_dir, read_only=True) as graph:
        names = [row[0] for row in graph.rows("MATCH (p:Parameter) RETURN p.name")]
    assert names == ["{ limit, window }"]


def test_reingest_is_incremental_and_scoped(settings: Settings, tmp_path: Path) -> None:
    code = tmp_path / "proj"
    shutil.copytree(LANGS / "go", code / "go")
    shutil.copytree(LANGS / "rust", code / "rust")
    first = _ingest(settings, code, codebase="proj")
    _ingest(settings, LANGS / "go", codebase="other")  # the same Go package in another code base
    again = _ingest(settings, code, codebase="proj")
    assert again["files_parsed"] == 0 and again["files_unchanged"] == first["files_parsed"]
    shape = code / "go" / "shapes" / "shape.go"
    shape.write_text(shape.read_text() + "\nfunc Added(x int) int { return x }\n")
    (code / "rust" / "src" / "zoo" / "mod.rs").unlink()
    third = _ingest(settings, code, codebase="proj")
    assert (third["files_parsed"], third["files_changed"], third["files_removed"]) == (1, 1, 1)
    with EmbeddedGraph(settings.graph_dir, read_only=True) as g:
        def count(query: str, cb: str) -> int:
            return next(g.rows(query, {"cb": cb}))[0]
        assert count("MATCH (f:Function) WHERE f.codebase = $cb RETURN count(f)", "proj") == 3 + 3 + 1
        assert count("MATCH (c:Class) WHERE c.codebase = $cb RETURN count(c)", "proj") == 5 + 4 - 1  # Pen is gone
        # the cross-file HAS_METHOD (Meters in shape.go, Double in circle.go) survives shape.go's re-parse
        assert count("MATCH (c:Class)-[:HAS_METHOD]->(m:Method) WHERE c.codebase = $cb AND m.name = 'Double' "
                     "RETURN count(m)", "proj") == 1
        assert count("MATCH (f:Function) WHERE f.codebase = $cb RETURN count(f)", "other") == 3  # untouched


def test_bad_languages_are_coded_errors() -> None:
    with pytest.raises(ConfigError, match="unknown") as info:
        IngestParams(path="/x", languages=["cobol"])
    assert info.value.code == "invalid_argument" and info.value.field == "languages"
    with pytest.raises(ConfigError):
        IngestParams(path="/x", languages=[])


def test_crates_of_a_workspace_keep_their_names_apart(settings: Settings, tmp_path: Path) -> None:
    for crate in ("alpha", "beta-two"):
        (tmp_path / "ws" / crate / "src").mkdir(parents=True)
        (tmp_path / "ws" / crate / "Cargo.toml").write_text(f'[package]\nname = "{crate}"\n\n[dependencies]\nname = "x"\n')
        (tmp_path / "ws" / crate / "src" / "lib.rs").write_text("pub fn helper() {}\npub fn run() { crate::helper(); }\n")
    result = _ingest(settings, tmp_path / "ws")
    assert result["names_left_out"] == [] and result["graph_counts"]["Function"] == 4
    assert _edges(settings, "CALLS") == {("alpha.run", "alpha.helper"), ("beta_two.run", "beta_two.helper")}


def test_duplicate_names_across_files_are_left_out_not_fatal(settings: Settings, tmp_path: Path) -> None:
    src = tmp_path / "dup" / "src"
    src.mkdir(parents=True)
    (src / "lib.rs").write_text("pub struct V;\nmod a;\nmod b;\n")
    (src / "a.rs").write_text("use crate::V;\nimpl std::fmt::Display for V { fn fmt(&self) {} }\n")
    (src / "b.rs").write_text("use crate::V;\nimpl std::fmt::Debug for V { fn fmt(&self) {} }\n")
    result = _ingest(settings, tmp_path / "dup")
    assert result["names_left_out"] == [{"path": "src/b.rs", "names": ["crate.V.fmt"]}]
    assert result["graph_counts"]["Method"] == 1 and result["graph_counts"]["HAS_METHOD"] == 1


@pytest.mark.anyio
async def test_ingest_tool_takes_languages(client, services) -> None:
    bad = await client.call_tool("ingest_codebase", {"path": str(LANGS / "go"), "languages": ["cobol"]})
    text = bad.content[0].text
    assert bad.is_error and text.startswith("[invalid_argument] `languages`") and "Hint:" in text
    assert services.store.list()[1] == 0  # nothing was queued
    none = await client.call_tool("ingest_codebase", {"path": str(LANGS / "go"), "languages": ["rust"]})
    assert none.is_error and "holds no source files of the chosen languages" in none.content[0].text
    ok = await client.call_tool("ingest_codebase", {"path": str(LANGS), "languages": ["go", "java"]})
    assert not ok.is_error
    assert services.store.list()[0][0].params["languages"] == ["go", "java"]


def test_server_start_does_not_import_tree_sitter() -> None:
    code = ("import sys; from graphtune.server.app import create_app; import graphtune.tools.graph.ingest; "
            "import graphtune.tools.dataset.knowledge; assert not [m for m in sys.modules if m.startswith('tree_sitter')]")
    subprocess.run([os.sys.executable, "-c", code], check=True, timeout=120)
