"""Datasets from TypeScript, Go, Java and Rust graphs: the knowledge objective answers the same
fact types as for Python, and skill tasks speak the language (code fences, module/package)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graphtune.server.settings import Settings
from graphtune.tools.dataset.extract import run_extract
from graphtune.tools.dataset.params import ExtractParams
from graphtune.tools.dataset.phrasings import PHRASINGS
from graphtune.tools.dataset.probe_scoring import score_answer
from graphtune.tools.graph.ingest import IngestParams, run_ingest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"  # tests/fixtures


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().split("\n") if line]


def _graph(settings: Settings, *roots: Path) -> Settings:
    settings.ensure_dirs()
    for root in roots:
        run_ingest(IngestParams(path=str(root), workers=1), settings)
    return settings


def test_knowledge_from_a_typescript_package_has_every_fact_type(settings: Settings) -> None:
    _graph(settings, FIXTURES / "real" / "immer")
    run_extract(ExtractParams(dataset_name="ts", objective="knowledge"), settings)
    folder = settings.datasets_dir / "ts"
    meta = json.loads((folder / "metadata.json").read_text())
    python_fact_types = set(PHRASINGS) - {"profile"}  # what a Python code base yields (tests/unit/dataset/test_knowledge.py)
    assert set(meta["facts_by_type"]) == python_fact_types
    probes = _read(folder / "probes.jsonl")
    assert {p["fact_type"] for p in probes} >= {"location", "parameters", "returns", "bases", "calls", "callers"}
    train = _read(folder / "train.jsonl")
    answers = {r["meta"]["entity"]: [] for r in train}
    for row in train:
        if row["meta"]["family"] != "format":  # a format request is answered with the bare names
            answers[row["meta"]["entity"]].append((row["meta"]["task"], row["messages"][-1]["content"]))
    produce = dict(answers["src.core.immerClass.Immer.produce"])  # a method with documented parameters
    assert "`base: any`" in produce["parameters"] and "`recipe: any`" in produce["parameters"]
    assert "`src.core.immerClass`" in produce["location"]
    for probe in probes:  # gold answers score as right; the question alone never does
        assert score_answer(probe["reference"], probe["gold"])[0], probe


def test_knowledge_uses_package_wording_constructors_and_no_object_base(settings: Settings) -> None:
    _graph(settings, FIXTURES / "langs" / "go", FIXTURES / "langs" / "java", FIXTURES / "langs" / "ts")
    run_extract(ExtractParams(dataset_name="mix", objective="knowledge", augmentation_factor=12), settings)
    folder = settings.datasets_dir / "mix"
    train = _read(folder / "train.jsonl")
    by_entity: dict[str, list[tuple[str, str, str]]] = {}
    for row in (r for r in train if r["meta"]["family"] != "format"):  # format requests: bare names
        by_entity.setdefault(row["meta"]["entity"], []).append(
            (row["meta"]["task"], row["messages"][-2]["content"], row["messages"][-1]["content"]))
    go_pi = by_entity["example.com/geo/shapes.Pi"]
    assert any("package `example.com/geo/shapes`" in a for t, _, a in go_pi if t == "location")
    assert all("module" not in q for t, q, _ in go_pi if t == "location")
    circle = {t: a for t, _, a in by_entity["src.geo.Circle"]}
    assert "`r: number`" in circle["parameters"] and "constructor" not in circle["methods"]
    dog = {t: a for t, _, a in by_entity["com.example.zoo.Dog"]}
    assert "`name: String`" in dog["parameters"] and dog["methods"].count("`Dog`") == 1  # the subject only
    named = {t: a for t, _, a in by_entity["example.com/geo/shapes.Named"]}
    assert "object" not in named["bases"]
    probes = [p for p in _read(folder / "probes.jsonl") if p["entity"] == "example.com/geo/shapes.NewCircle"]
    location = next(p for p in probes if p["fact_type"] == "location")
    assert score_answer("It is in the package example.com/geo/shapes.", location["gold"])[0]


@pytest.mark.parametrize(("lang", "fence", "word"), [("go", "```go", "package"), ("ts", "```typescript", "module"),
                                                     ("rust", "```rust", "module"), ("java", "```java", "package")])
def test_skill_tasks_use_the_language(settings: Settings, lang: str, fence: str, word: str) -> None:
    _graph(settings, FIXTURES / "langs" / lang)
    run_extract(ExtractParams(dataset_name="s", quality_threshold=0.0, augmentation_factor=8), settings)
    rows = _read(settings.datasets_dir / "s" / "train.jsonl") + _read(settings.datasets_dir / "s" / "eval.jsonl")
    text = "\n".join(m["content"] for r in rows for m in r["messages"])
    assert fence in text and "```python" not in text and "Python" not in text
    if lang != "java":  # Java's files define classes only: no file-level summary in this small fixture
        assert f"What does the {word} `" in text


def test_a_go_package_spanning_files_gets_one_set_of_module_facts(settings: Settings, tmp_path: Path) -> None:
    """A package in two files with different imports: one answer per question (imports: the union),
    not one fact set per file teaching the same question with different answers."""
    root = tmp_path / "geo"
    (root / "calc").mkdir(parents=True)
    (root / "go.mod").write_text("module example.com/geo\n\ngo 1.21\n")
    for dep in ("show", "text"):
        (root / dep).mkdir()
        (root / dep / f"{dep}.go").write_text(f"package {dep}\n\n// Do does it.\nfunc Do(v string) string {{ return v }}\n")
    (root / "calc" / "a.go").write_text('package calc\n\nimport "example.com/geo/show"\n\n// Show shows v.\n'
                                        'func Show(v string) string { return show.Do(v) }\n')
    (root / "calc" / "b.go").write_text('package calc\n\nimport "example.com/geo/text"\n\n// Upper upper-cases s.\n'
                                        'func Upper(s string) string { return text.Do(s) }\n')
    _graph(settings, root)
    run_extract(ExtractParams(dataset_name="go", objective="knowledge", augmentation_factor=12), settings)
    rows = [r for r in _read(settings.datasets_dir / "go" / "train.jsonl")
            if r["meta"]["entity"] == "example.com/geo/calc" and r["meta"]["task"].startswith("module_")]
    answers: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        answers.setdefault((row["meta"]["task"], row["messages"][-2]["content"]), set()).add(row["messages"][-1]["content"])
    assert {task for task, _ in answers} == {"module_members", "module_imports"}
    assert all(len(a) == 1 for a in answers.values()), answers
    imports = next(iter(next(a for (task, _), a in answers.items() if task == "module_imports")))
    members = next(iter(next(a for (task, _), a in answers.items() if task == "module_members")))
    assert "show" in imports and "text" in imports and "`Show`" in members and "`Upper`" in members
