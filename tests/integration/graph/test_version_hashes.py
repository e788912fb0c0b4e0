"""The graph version's own-aspect hashes made in the parser processes (entity_hashes) give the
snapshot that hashing the records read back from the store gives, including where they cannot
answer alone (a Go type whose methods live in another file) and on awkward text."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

from graphtune.server.settings import Settings
from graphtune.tools.graph import entity_hashes, versions
from graphtune.tools.graph.ingest import IngestParams, run_ingest

GO_TYPE = """package shop

// Cart holds items.
type Cart struct {
\titems []int
}

// Add adds one item.
func (c *Cart) Add(item int) { c.items = append(c.items, item) }
"""
GO_METHODS = """package shop

// Total sums the items.
func (c *Cart) Total() int {
\tsum := 0
\tfor _, i := range c.items {
\t\tsum += i
\t}
\treturn sum
}

func NewCart() *Cart { return &Cart{} }
"""
PY = '''
class Odd:
    """Quotes " and "" and a \\r carriage\\r\\nreturn, NUL \\x00, é 😀 \\u2028."""

    def __init__(self, a: "x\\"y" = "\\r\\n") -> None:
        self.a = a

    class Inner:
        def m(self):
            return "\\x00"


def top(*args, **kw):
    """Docstring\\twith tabs."""
    return Odd(1)
'''


def _ingest(root: Path) -> tuple[Settings, dict]:
    settings = Settings(home=Path(tempfile.mkdtemp()))
    settings.ensure_dirs()
    return settings, run_ingest(IngestParams(path=str(root), workers=1), settings)


def _recorded(settings: Settings, result: dict) -> dict:
    folder = versions.codebase_dir(settings, "embedded", result["codebase"])
    snapshot = json.loads(gzip.decompress((folder / f"{result['graph_version']}.json.gz").read_bytes()))
    return {k: snapshot[k] for k in ("format", "entities", "modules")}


def test_parser_made_hashes_give_the_snapshot_of_the_stored_graph(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "cart.go").write_text(GO_TYPE)
    (tmp_path / "shop" / "total.go").write_text(GO_METHODS)
    (tmp_path / "odd.py").write_bytes(PY.encode())
    redone: list[set] = []
    stale = entity_hashes.stale

    def spy(*args: object) -> tuple[set, set]:
        redo, read = stale(*args)
        redone.append(redo)
        return redo, read

    monkeypatch.setattr(versions, "stale", spy)
    settings, result = _ingest(tmp_path)
    assert result["files_failed"] == 0
    assert redone == [{("Class", "shop.Cart")}]  # its method Total lives in total.go
    from_store = versions.read_snapshot_from_graph(settings, "embedded", result["codebase"])  # hashes records read back
    assert _recorded(settings, result) == from_store
    assert {"odd.Odd", "odd.Odd.Inner", "odd.top", "shop.Cart.Total"} <= from_store["entities"].keys()


def test_stored_records_equal_the_records_read_back(tmp_path: Path) -> None:
    from graphtune.tools.graph.embedded import EmbeddedGraph
    from graphtune.tools.graph.python_parser import parse_file
    from graphtune.tools.graph.sources import EmbeddedSource

    (tmp_path / "odd.py").write_bytes(PY.encode())
    settings, result = _ingest(tmp_path)
    graph = parse_file("odd.py", "odd", PY.encode(), is_package=False, codebase=result["codebase"])
    callables, classes = entity_hashes.stored_records(graph)
    with EmbeddedGraph(settings.graph_dir, read_only=True) as store:
        source = EmbeddedSource(settings, [result["codebase"]], graph=store)
        stored = {t: list(source.iter_records(t)) for t in ("Function", "Method", "Class")}
    fields = ("node_type", "key", "name", "file_path", "docstring", "signature", "parameters", "return_type",
              "source", "class_name", "base_classes", "decorators", "is_async")

    def row(record: object) -> tuple:
        return tuple(list(v) if isinstance(v, (list, tuple)) else v for v in (getattr(record, f) for f in fields))

    assert [row(r) for r in callables] == [row(r) for r in stored["Function"] + stored["Method"]]
    # classes come back from an aggregation (their methods), in no set order
    assert sorted(map(row, classes)) == sorted(map(row, stored["Class"]))
    assert any("\r" in r.docstring and "\x00" in r.docstring for r in classes)  # awkward text made the trip
