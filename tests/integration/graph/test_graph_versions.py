"""Graph versions per code base, the graph diff (ingest result and graph_diff tool), and delta
knowledge datasets (extract_training_data(objective='knowledge', since=...))."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from graphtune.server.settings import Settings
from graphtune.tools.dataset.delta import DEFAULT_DELTA_REPEATS, DEFAULT_REPLAY_FRACTION
from graphtune.tools.dataset.extract import run_extract
from graphtune.tools.dataset.params import ExtractParams
from graphtune.tools.errors import DatasetError
from graphtune.tools.graph.ingest import IngestParams, run_ingest
from graphtune.tools.dataset.since import diff_versions
from graphtune.tools.graph.versions import VersionNotFound, last_ingest, read_index

V1 = '''
def total(items, tax=0.1):
    """Sum the items with tax."""
    return sum(items) * (1 + tax)

def unused(a):
    return a

def helper(x):
    return x + 1

class Cart:
    """A shopping cart."""
    def __init__(self, owner):
        self.owner = owner

    def add(self, item):
        return total([item])
'''
# total: new parameter (signature) and new caller `fresh`; unused: removed; fresh: added;
# helper: body only; Cart.add: untouched.
V2 = '''
def total(items, tax=0.1, discount=0):
    """Sum the items with tax."""
    return sum(items) * (1 + tax) - discount

def fresh(x):
    return total([x])

def helper(x):
    return x + 2

class Cart:
    """A shopping cart."""
    def __init__(self, owner):
        self.owner = owner

    def add(self, item):
        return total([item])
'''
OTHER = '''
class Thing:
    """A thing."""
    def go(self, speed: int) -> int:
        return speed

''' + "".join(f"def f{i}(a, b):\n    return a\n\n" for i in range(12))


def write_shop(root: Path) -> Path:
    """The `shop` package at v1 (cart.py = V1, other.py = OTHER) in `root`; V2 is its changed cart.py."""
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "cart.py").write_text(textwrap.dedent(V1))
    (root / "other.py").write_text(textwrap.dedent(OTHER))
    return root


@pytest.fixture
def shop(settings: Settings, tmp_path: Path) -> tuple[Settings, Path]:
    settings.ensure_dirs()
    return settings, write_shop(tmp_path / "shop")


def _ingest(settings: Settings, root: Path) -> dict:
    return run_ingest(IngestParams(path=str(root), codebase="shop"), settings)


def test_ingest_records_versions_and_returns_the_exact_diff(shop) -> None:
    settings, root = shop
    first = _ingest(settings, root)
    assert first["previous_graph_version"] is None
    # cart.py: total, unused, helper, Cart, Cart.__init__, Cart.add; other.py: Thing, Thing.go, f0..f11
    assert first["diff"]["added"] == 20 and first["diff"]["removed"] == first["diff"]["changed"] == 0
    assert first["diff"]["by_kind"] == {"class": {"added": 2}, "function": {"added": 15}, "method": {"added": 3}}
    assert first["diff"]["next_offset"] is None and len(first["diff"]["changes"]) == 20  # a first page of 20
    (root / "cart.py").write_text(textwrap.dedent(V2))
    second = _ingest(settings, root)
    diff = second["diff"]
    assert second["previous_graph_version"] == first["graph_version"] != second["graph_version"]
    assert (diff["added"], diff["removed"], diff["changed"], diff["affected"]) == (1, 1, 2, 0)
    by_entity = {c["entity"]: c for c in diff["changes"]}
    assert by_entity["shop.cart.fresh"]["change"] == "added"
    assert by_entity["shop.cart.unused"]["change"] == "removed"
    assert by_entity["shop.cart.total"]["aspects"] == ["body", "callers", "signature"]
    assert by_entity["shop.cart.helper"]["aspects"] == ["body"]
    assert "shop.cart.Cart.add" not in by_entity and diff["modules"] == {"added": 0, "removed": 0, "changed": 1}
    assert second["entities_changed"] == {"added": 1, "removed": 1, "changed": 2, "affected": 0}
    again = _ingest(settings, root)  # nothing changed: same version, empty diff, no new index entry
    assert again["graph_version"] == second["graph_version"] and again["diff"]["added"] == 0
    assert [v["version"] for v in read_index(settings, "embedded", "shop")] == [first["graph_version"],
                                                                                second["graph_version"]]
    old, new, on_demand = diff_versions(settings, "embedded", "shop", first["graph_version"])
    assert (old, new) == (first["graph_version"], second["graph_version"])
    assert on_demand["changes"] == diff["changes"]


@pytest.mark.anyio
async def test_graph_diff_tool_pages_filters_and_resolves_a_dataset(client, shop) -> None:
    settings, root = shop
    first = _ingest(settings, root)
    run_extract(ExtractParams(dataset_name="shop-v1", objective="knowledge"), settings)
    meta = json.loads((settings.datasets_dir / "shop-v1" / "metadata.json").read_text())
    assert meta["source"]["graph_versions"] == {"shop": first["graph_version"]}
    (root / "cart.py").write_text(textwrap.dedent(V2))
    _ingest(settings, root)
    result = await client.call_tool("graph_diff", {"codebase": "shop", "since": "shop-v1", "limit": 2})
    assert not result.is_error, result.content[0].text
    data = result.structured_content
    assert data["since"] == first["graph_version"] and data["total"] == 4 and data["next_offset"] == 2
    assert [c["change"] for c in data["changes"]] == ["added", "removed"]
    rest = (await client.call_tool("graph_diff", {"codebase": "shop", "since": "shop-v1", "offset": 2})).structured_content
    assert [c["entity"] for c in rest["changes"]] == ["shop.cart.helper", "shop.cart.total"]
    default = (await client.call_tool("graph_diff", {"codebase": "shop", "change": "added"})).structured_content
    assert default["since"] == first["graph_version"] and [c["entity"] for c in default["changes"]] == ["shop.cart.fresh"]
    bad = await client.call_tool("graph_diff", {"codebase": "shop", "since": "nope"})
    assert bad.is_error and "graph_version_not_found" in bad.content[0].text and "since" in bad.content[0].text
    unknown = await client.call_tool("graph_diff", {"codebase": "nosuch"})
    assert unknown.is_error and "codebase" in unknown.content[0].text


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_the_last_ingest_records_its_root_and_file_selection_for_retrain(shop, tmp_path) -> None:
    """`retrain` and `watch` repeat the last ingest: its root and which files it read (exclude, languages,
    size limit); a copy of the same code ingested under the same name moves the root without a new version."""
    settings, root = shop
    (root / "tests").mkdir()
    (root / "tests" / "test_cart.py").write_text("def test_total():\n    assert True\n")
    first = run_ingest(IngestParams(path=str(root), codebase="shop", exclude=["*/tests/*"], languages=["python"]),
                       settings)
    assert last_ingest(settings, "embedded", "shop") == (
        str(root), {"exclude": ["*/tests/*"], "languages": ["python"], "max_file_bytes": 2_000_000})
    moved = tmp_path / "elsewhere" / "shop"  # the same package (its folder name makes its module names)
    moved.parent.mkdir()
    root.rename(moved)
    again = run_ingest(IngestParams(path=str(moved), codebase="shop", exclude=["*/tests/*"], languages=["python"]),
                       settings)
    assert again["graph_version"] == first["graph_version"] and again["files_unchanged"] == 3
    assert len(read_index(settings, "embedded", "shop")) == 1
    assert last_ingest(settings, "embedded", "shop")[0] == str(moved)  # what the next retrain reads


def test_delta_dataset_keeps_new_and_changed_facts_drops_removed_and_replays_a_share(shop) -> None:
    settings, root = shop
    _ingest(settings, root)
    run_extract(ExtractParams(dataset_name="shop-v1", objective="knowledge"), settings)
    (root / "cart.py").write_text(textwrap.dedent(V2))
    _ingest(settings, root)
    result = run_extract(ExtractParams(dataset_name="shop-v2", objective="knowledge", since="shop-v1",
                                       replay_fraction=0.5, delta_repeats=1), settings)
    folder = settings.datasets_dir / "shop-v2"
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["parent"]["dataset"] == "shop-v1" and result["delta"]["replay_fraction"] == 0.5
    delta = meta["delta"]
    assert delta["entities"] == {"added": 1, "changed": 2, "affected": 0, "removed": 1}
    assert delta["removed_entities"] == ["shop.cart.unused"]
    train = _jsonl(folder / "train.jsonl")
    facts = {(r["meta"]["entity"], r["meta"]["task"]): r["meta"]["delta"] for r in train}
    assert not any(entity == "shop.cart.unused" for entity, _ in facts)  # removed: gone
    assert facts[("shop.cart.fresh", "location")] == facts[("shop.cart.fresh", "parameters")] == "new"
    assert facts[("shop.cart.total", "parameters")] == facts[("shop.cart.total", "callers")] == "changed"
    assert facts[("shop.cart", "module_members")] == "changed"
    assert facts.get(("shop.cart.total", "location")) in (None, "replay")  # unchanged fact of a changed entity
    assert not any(task == "calls" and entity == "shop.cart.helper" for entity, task in facts)  # body-only change
    taught = {k for k, s in facts.items() if s in ("new", "changed") and k[1] != "profile"}
    replayed = {k for k, s in facts.items() if s == "replay"}
    assert delta["facts"]["new"] + delta["facts"]["changed"] == len(taught)
    assert len(replayed) == delta["facts"]["replayed"] == len(taught)  # 0.5: one replayed per new/changed fact
    any_answer = {r["messages"][-1]["content"] for r in train if r["meta"]["entity"] == "shop.cart.total"
                  and r["meta"]["task"] == "parameters"}
    assert all("discount" in a for a in any_answer)
    probes = _jsonl(folder / "probes.jsonl")
    statuses = {p["status"] for p in probes}
    assert statuses == {"new", "changed", "unchanged"}
    marked = {(p["entity"], p["fact_type"]): p["status"] for p in probes}
    assert marked[("shop.cart.total", "parameters")] == "changed" and marked[("shop.cart.fresh", "location")] == "new"
    assert all("replayed" in p for p in probes if p["status"] == "unchanged")
    assert meta["probes_by_type"] and delta["probes_by_status"]["unchanged"] >= 1


def test_delta_replay_share_default_and_errors(shop) -> None:
    """Default: every unchanged fact replayed once, each new/changed row written DEFAULT_DELTA_REPEATS
    times; a share below 1 samples len(taught) x share / (1 - share) unchanged facts."""
    settings, root = shop
    first = _ingest(settings, root)
    (root / "cart.py").write_text(textwrap.dedent(V2))
    _ingest(settings, root)
    run_extract(ExtractParams(dataset_name="d", objective="knowledge", since=first["graph_version"]), settings)
    delta = json.loads((settings.datasets_dir / "d" / "metadata.json").read_text())["delta"]
    taught = delta["facts"]["new"] + delta["facts"]["changed"]
    assert delta["replay_fraction"] == DEFAULT_REPLAY_FRACTION == 1.0
    assert delta["delta_repeats"] == DEFAULT_DELTA_REPEATS == 8
    assert delta["facts"]["replayed"] == delta["facts"]["unchanged"] > 0
    rows = Counter((r["meta"]["delta"], json.dumps(r["messages"])) for r in _jsonl(settings.datasets_dir / "d" /
                                                                                   "train.jsonl"))
    assert {n for (status, _), n in rows.items() if status != "replay"} == {8}
    assert {n for (status, _), n in rows.items() if status == "replay"} == {1}

    run_extract(ExtractParams(dataset_name="d8", objective="knowledge", since=first["graph_version"],
                              replay_fraction=0.8), settings)
    delta = json.loads((settings.datasets_dir / "d8" / "metadata.json").read_text())["delta"]
    assert delta["delta_repeats"] == 1  # a sampled replay already sets the new/replayed ratio
    share = delta["facts"]["replayed"] / (taught + delta["facts"]["replayed"])
    wanted = round(0.8 / 0.2 * taught)  # four replayed facts per new/changed one, capped by the unchanged facts
    assert delta["facts"]["replayed"] == min(wanted, delta["facts"]["unchanged"]) > 0
    if wanted <= delta["facts"]["unchanged"]:
        assert abs(share - 0.8) < 0.5 / taught + 0.01
    with pytest.raises(VersionNotFound):
        run_extract(ExtractParams(dataset_name="e", objective="knowledge", since="0123456789abcdef"), settings)
    current = read_index(settings, "embedded", "shop")[-1]["version"]
    with pytest.raises(DatasetError, match="nothing to teach"):
        run_extract(ExtractParams(dataset_name="e", objective="knowledge", since=current), settings)


@pytest.mark.anyio
async def test_extract_tool_checks_since_before_queueing(client, shop) -> None:
    settings, root = shop
    _ingest(settings, root)
    skills = await client.call_tool("extract_training_data", {"dataset_name": "x", "since": "whatever"})
    assert skills.is_error and "objective" in skills.content[0].text
    unknown = await client.call_tool("extract_training_data", {"dataset_name": "x", "objective": "knowledge",
                                                               "since": "nope"})
    assert unknown.is_error and "since" in unknown.content[0].text


def test_a_failed_version_record_never_fails_the_ingest(shop, monkeypatch) -> None:
    from graphtune.tools.errors import GraphUnavailable
    from graphtune.tools.graph import versions

    settings, root = shop
    first = _ingest(settings, root)

    def broken(*_args: object) -> dict:
        raise GraphUnavailable("simulated")

    monkeypatch.setattr(versions, "read_snapshot_from_graph", broken)
    (root / "cart.py").write_text(textwrap.dedent(V2))
    result = _ingest(settings, root)
    assert result["files_changed"] == 1 and "simulated" in result["diff"]["error"]
    monkeypatch.undo()
    (root / "cart.py").write_text(textwrap.dedent(V2) + "\n\ndef later():\n    return 1\n")
    recovered = _ingest(settings, root)  # diffs against the last recorded version: both edits show
    assert recovered["previous_graph_version"] == first["graph_version"]
    assert (recovered["diff"]["added"], recovered["diff"]["removed"], recovered["diff"]["changed"]) == (2, 1, 2)


@pytest.mark.anyio
async def test_ingest_job_through_mcp_reports_the_diff(client, services, shop) -> None:
    from conftest import wait_final
    from graphtune.server.job_store import JobStatus

    settings, root = shop
    _ingest(settings, root)
    (root / "cart.py").write_text(textwrap.dedent(V2))
    started = await client.call_tool("ingest_codebase", {"path": str(root), "codebase": "shop"})
    assert not started.is_error, started.content[0].text
    job = wait_final(services.store, started.structured_content["job_id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["entities_changed"] == {"added": 1, "removed": 1, "changed": 2, "affected": 0}
    assert [c["entity"] for c in job.result["diff"]["changes"]][:2] == ["shop.cart.fresh", "shop.cart.unused"]
    status = await client.call_tool("get_training_status", {"job_id": job.id})  # concise: the counts stay
    assert status.structured_content["result"]["entities_changed"]["changed"] == 2


def test_a_module_spanning_files_has_one_snapshot_entry_whatever_the_file_order() -> None:
    """A Go package spans files: its members/imports are the union over them, not the last file read."""
    from graphtune.tools.graph.records import CodeRecord
    from graphtune.tools.graph.versions import snapshot_from_records

    a = CodeRecord("CodeFile", "net/http/a.go", "net/http", "net/http/a.go", members=["Get"], imports=["io"])
    b = CodeRecord("CodeFile", "net/http/b.go", "net/http", "net/http/b.go", members=["Post"], imports=["fmt", "io"])
    one, other = snapshot_from_records([a, b])["modules"], snapshot_from_records([b, a])["modules"]
    assert one == other and list(one) == ["net/http"] and one["net/http"]["f"] == "net/http/a.go"
    alone = snapshot_from_records([CodeRecord("CodeFile", "m.go", "net/http", "m.go", members=["Get", "Post"],
                                              imports=["fmt", "io"])])["modules"]
    assert alone["net/http"]["h"] == one["net/http"]["h"]  # the union, hashed like one file holding it all
