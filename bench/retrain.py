"""Retrain benchmark (issue 9): after a scripted change to a copy of stdlib `email`, does a
retrained SmolLM2-135M-Instruct know the changed facts without forgetting the rest?

    python bench/retrain.py prep     # here (CPU, needs the graph packages): copy `email`, ingest
                                     # it (v1), extract its knowledge dataset, apply the scripted
                                     # change (rename a function, add a parameter, add a class,
                                     # delete a module), ingest again (v2: the diff), extract the
                                     # delta dataset since v1 (new/changed facts + replay, probes
                                     # marked new/changed/unchanged); stage the GGUF like knowledge.py
    python bench/retrain.py run      # GPU: graphtune's job handlers as the retrain chain runs them:
                                     # train v1 (knowledge preset), continue it on the delta (v2,
                                     # init_adapter=v1, 0.3x lr as retrain), compare v1 vs v2 on the delta's
                                     # probes, apply the default retrain policy
    python bench/retrain.py smoke    # CPU check of the mechanics: prep + run with a tiny
                                     # config-built model, a few steps, 20 probes (minutes)
    python bench/retrain.py cpu      # CPU, real model, small synthetic package `geom`: train v1
                                     # once, continue it with each recipe of CPU_RECIPES, score
                                     # changed and unchanged facts (how retrain's defaults were chosen)

Goals (issue 9): accuracy on changed (new + changed) facts >= 60 %; on unchanged facts within
5 points of the previous model. Any LoraJobConfig field can be overridden as KEY=VALUE (run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tiny_model (a test helper)
from knowledge import Ctx, _assemble_gguf, _overrides, stage

CARRY = Path(".devcarry/retrain")
V1, V2 = "email-v1", "email-v2"
ADDRESS_BOOK = '''

class AddressBook:
    """A small collection of e-mail addresses, keyed by display name."""

    def add(self, name, address):
        """Remember `address` under the display name `name`."""
        self.__dict__[name] = address

    def lookup(self, name):
        """The address stored under `name`, or None."""
        return self.__dict__.get(name)
'''


def scripted_change(root: Path) -> list[str]:
    """Rename a function, add a parameter, add a class, delete a module; returns what it did."""
    utils = root / "utils.py"
    text = utils.read_text(encoding="utf-8")
    text, renamed = re.subn(r"^def formatdate\(", "def format_date(", text, count=1, flags=re.MULTILINE)
    text, added = re.subn(r"^def parseaddr\(addr(, \*, strict=True)?\):",  # 3.11; 3.12.x added `strict`
                          lambda m: f"def parseaddr(addr{m[1] or ''}, max_length=None):", text, count=1, flags=re.MULTILINE)
    assert renamed == 1 and added == 1, "email/utils.py changed upstream: update the scripted change"
    utils.write_text(text + ADDRESS_BOOK, encoding="utf-8")
    (root / "encoders.py").unlink()
    return ["renamed email.utils.formatdate -> format_date", "added parameter max_length to email.utils.parseaddr",
            "added class email.utils.AddressBook (add, lookup)", "deleted module email.encoders"]


def build_datasets(home: Path, augmentation_factor: int | None = None) -> dict:
    """v1 dataset, the scripted change, the v2 ingest's diff and the delta dataset, in `home`."""
    import email

    from graphtune.server.settings import Settings
    from graphtune.tools.dataset.extract import run_extract
    from graphtune.tools.dataset.params import ExtractParams
    from graphtune.tools.graph.ingest import IngestParams, run_ingest

    settings = Settings(home=home)
    settings.ensure_dirs()
    src = home / "src" / "email"
    shutil.copytree(Path(email.__file__).parent, src, ignore=shutil.ignore_patterns("__pycache__"))
    ingest = IngestParams(path=str(src), codebase="email")
    run_ingest(ingest, settings)
    run_extract(ExtractParams(dataset_name=V1, objective="knowledge", augmentation_factor=augmentation_factor),
                settings)
    done = scripted_change(src)
    second = run_ingest(ingest, settings)
    report = {"change": done, "diff": second["diff"], "entities_changed": second["entities_changed"], "variants": {}}
    for variant in v2_variants():
        name = variant_dataset(variant)
        delta = run_extract(ExtractParams(dataset_name=name, objective="knowledge", since=V1,
                                          augmentation_factor=augmentation_factor,
                                          replay_fraction=variant["replay_fraction"],
                                          delta_repeats=variant["delta_repeats"]), settings)
        meta = json.loads((settings.datasets_dir / name / "metadata.json").read_text())
        report["variants"][variant["name"]] = {
            "dataset": name, "delta_train_examples": delta["train_examples"],
            "delta": {k: meta["delta"][k] for k in ("entities", "facts", "probes_by_status", "replay_fraction",
                                                    "delta_repeats")}}
    return report


def v2_variants() -> list[dict]:
    """The continued-training recipes to compare: `retrain`'s defaults, or V2_VARIANTS (experiments: a JSON
    list of {"name", "replay_fraction", "delta_repeats", "train": {LoraJobConfig overrides}})."""
    from graphtune.tools.training.retrain import ContinuedTraining

    default = ContinuedTraining()
    variants = json.loads(os.environ.get("V2_VARIANTS", "null")) or [{"name": "default"}]
    return [{"replay_fraction": default.replay, "delta_repeats": default.repeats, "train": {}, **v} for v in variants]


def variant_dataset(variant: dict) -> str:
    return V2 if variant["name"] == "default" else f"{V2}-{variant['name']}"


def prep() -> int:
    home = Path(tempfile.mkdtemp())
    report = build_datasets(home)
    shutil.rmtree(CARRY, ignore_errors=True)
    (CARRY / "datasets").mkdir(parents=True)
    for name in (V1, *(v["dataset"] for v in report["variants"].values())):
        shutil.copytree(home / "datasets" / name, CARRY / "datasets" / name)
    (CARRY / "prep.json").write_text(json.dumps(report, indent=1))
    (CARRY / "variants.json").write_text(json.dumps(v2_variants()))
    staged = Path(".devcarry/gguf1/gguf.json")
    if not (staged.is_file() and json.loads(staged.read_text()).get("base") == "smollm2-135m-instruct"):
        stage("smollm2-135m-instruct")  # the GGUF in two parts, as bench/knowledge.py prep stages it
    print(json.dumps(report, indent=1))
    return 0


def _train(home: Path, cfg: dict, label: str) -> dict:
    from graphtune.tools.training.train_job import run_train_job

    ctx = Ctx(home, f"job_{label.replace('-', '')[:12]:0<12}")
    started = time.perf_counter()
    result = run_train_job({"config": cfg}, ctx)
    return {"wall_seconds": round(time.perf_counter() - started, 1), "train_seconds": result["train_seconds"],
            "steps": result["steps"], "tokens_trained": result["tokens_trained"],
            "eval_loss": result.get("eval_loss")}


def unchanged_probe_set(home: Path, delta_dataset: str) -> str:
    """A probes-only dataset of v1's probes about entities the change did not touch (nor their parents):
    the wide check of forgetting (the delta's own sample of unchanged probes is small)."""
    delta = json.loads((home / "datasets" / delta_dataset / "metadata.json").read_text())["delta"]
    touched = set(delta["added_entities"] + delta["changed_entities"] + delta["removed_entities"])
    touched |= {json.loads(line)["entity"] for line in (home / "datasets" / delta_dataset / "probes.jsonl").open()
                if json.loads(line)["status"] != "unchanged"}
    parents = {".".join(name.split(".")[:i]) for name in touched for i in range(1, name.count(".") + 1)}
    name = "email-v1-untouched"
    folder = home / "datasets" / name
    shutil.copytree(home / "datasets" / V1, folder)
    keep = [line for line in (folder / "probes.jsonl").open() if (entity := json.loads(line)["entity"]) not in
            touched | parents and not entity.startswith("email.encoders")]
    (folder / "probes.jsonl").write_text("".join(keep))
    return name


def run_chain(home: Path, base_model: str, extra: dict, max_probes: int, variants: list[dict]) -> dict:
    """train v1 -> per variant: train v2 from v1 on its delta (retrain's continued recipe) -> compare -> the
    policy's verdict."""
    from graphtune.tools.training.presets import apply_preset

    (home / "models").mkdir(exist_ok=True)
    recipe = apply_preset({"dataset_name": V1, "base_model": base_model, "output_name": V1, "save_steps": 100000,
                           "evaluate_probes": False, **extra}, "knowledge")
    out = {"recipe": {k: recipe.get(k) for k in ("lora_rank", "lora_alpha", "learning_rate", "num_epochs",
                                                  "max_steps", "tokens_per_batch", "device")}}
    out["train_v1"] = _train(home, recipe, V1)
    wide_set = unchanged_probe_set(home, variant_dataset(variants[0]))
    out["variants"] = {v["name"]: continue_and_compare(home, recipe, v, i, wide_set, max_probes)
                       for i, v in enumerate(variants)}
    return out


def continue_and_compare(home: Path, recipe: dict, variant: dict, index: int, wide_set: str, max_probes: int) -> dict:
    """v2 from v1 on the variant's delta (retrain's continued recipe + the variant's overrides), compared
    with v1 on the delta's probes (the policy's verdict) and on the wide sample of untouched entities."""
    from graphtune.tools.training.compare_job import run_compare_job
    from graphtune.tools.training.retrain import RetrainPolicy, continued_recipe, judge

    dataset = variant_dataset(variant)
    out: dict = {"dataset": dataset}
    v2 = continued_recipe({**recipe, "dataset_name": dataset, "output_name": dataset, "init_adapter": V1})
    v2 = {**v2, **variant.get("train", {})}
    out["recipe_v2"] = {k: v2.get(k) for k in ("learning_rate", "num_epochs")}
    out["train_v2"] = _train(home, v2, f"v2{index:02d}")
    started = time.perf_counter()
    compare = run_compare_job({"model_a": V1, "model_b": dataset, "dataset_name": dataset, "max_probes": max_probes,
                               "device": recipe.get("device", "auto")}, Ctx(home, f"job_compare{2 * index:04d}"))
    out["compare_seconds"] = round(time.perf_counter() - started, 1)
    verdict = judge(compare, RetrainPolicy())
    wide = run_compare_job({"model_a": V1, "model_b": dataset, "dataset_name": wide_set,
                            "max_probes": max_probes, "device": recipe.get("device", "auto")},
                           Ctx(home, f"job_compare{2 * index + 1:04d}"))
    a, b = wide["a"]["accuracy"], wide["b"]["accuracy"]
    out["unchanged_wide"] = {"probes": wide["probes"], "before": a, "after": b,
                             "drop_points": round(100 * (a - b), 2) if a is not None and b is not None else None,
                             "by_fact_type": wide["by_fact_type"]}
    out["by_status"] = compare.get("by_status")
    out["by_fact_type"] = compare["by_fact_type"]
    out["verdict"] = verdict
    new, drop = verdict["new_facts_accuracy"], out["unchanged_wide"]["drop_points"]
    out["goals"] = {"changed_facts_accuracy_ge_60pct": new is not None and new >= 0.6,
                    "unchanged_within_5_points_wide": drop is not None and drop <= 5.0,
                    "policy_verdict_on_the_delta_probes": verdict["policy_holds"]}
    return out


def run(args: list[str]) -> int:
    home = Path(tempfile.mkdtemp())
    shutil.copytree(CARRY / "datasets", home / "datasets")
    report = {"prep": json.loads((CARRY / "prep.json").read_text()),
              **run_chain(home, str(_assemble_gguf(home)), _overrides(args), int(os.environ.get("MAX_PROBES", "600")),
                         json.loads((CARRY / "variants.json").read_text()))}
    text = json.dumps(report, indent=1)
    print(text)
    if os.environ.get("OUT"):
        (Path(os.environ["OUT"]) / "retrain.json").write_text(text)
    return 0


def smoke() -> int:
    """CPU: the whole bench with a tiny config-built model (mechanics only; accuracy means nothing)."""
    from tiny_model import create_tiny_model, texts_from_jsonl

    home = Path(tempfile.mkdtemp())
    prep_report = build_datasets(home, augmentation_factor=2)
    tiny = create_tiny_model(home / "tiny", texts_from_jsonl(home / "datasets" / V1 / "train.jsonl")[:4000],
                             vocab_size=400, hidden=32)
    report = {"prep": prep_report, **run_chain(home, str(tiny), {"max_steps": 3, "device": "cpu", "lora_rank": 4,
                                                                 "lora_alpha": 8, "warmup": 0}, 20,
                                        [{**v, "train": {**v["train"], "max_steps": 3}} for v in v2_variants()])}
    print(json.dumps(report, indent=1))
    for variant in report["variants"].values():
        assert variant["by_status"] and variant["verdict"]["new_fact_probes"] > 0, "the delta's probes were not compared"
    return 0


# --- CPU, small scope, real model: compare continued-training recipes (issue 9's forgetting) -----------
GEOM_V1 = {  # a small synthetic package (7 functions): teachable on 2 busy CPU cores in minutes
    "__init__.py": '"""Small plane-geometry helpers."""\n',
    "points.py": '''"""Points in the plane, as (x, y) tuples."""

import math


def distance(a, b):
    """Euclidean distance between two points."""
    return math.hypot(a[0] - b[0], a[1] - b[1])


def midpoint(a, b):
    """The point halfway between a and b."""
    return ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)


def scale_point(p, factor):
    """The point p with both coordinates multiplied by factor."""
    return (p[0] * factor, p[1] * factor)


def norm(p):
    """Distance of the point p from the origin."""
    return math.hypot(p[0], p[1])
''',
    "shapes.py": '''"""Areas of simple shapes."""

import math


def circle_area(radius):
    """Pi times the radius squared."""
    return math.pi * radius ** 2


def rect_area(width, height):
    """Width times height."""
    return width * height
''',
    "units.py": '''"""Angle unit conversions."""

import math


def to_radians(degrees):
    """Convert an angle from degrees to radians."""
    return degrees * math.pi / 180
''',
}
ROTATE = '''

def rotate(p, angle):
    """The point p turned by angle radians around the origin."""
    return (p[0] * math.cos(angle) - p[1] * math.sin(angle), p[0] * math.sin(angle) + p[1] * math.cos(angle))
'''
# (name, replay_fraction, train overrides on top of v1's recipe): today's default first
CPU_RECIPES = [
    ("baseline: replay 0.2, v1 recipe", 0.2, {}),
    ("replay 0.8, v1 recipe", 0.8, {}),
    ("replay 0.8, lr 3e-4", 0.8, {"learning_rate": 3e-4}),
    ("replay 0.5, lr 3e-4, 2 epochs", 0.5, {"learning_rate": 3e-4, "num_epochs": 2}),
    ("replay 0.2, lr 3e-4", 0.2, {"learning_rate": 3e-4}),
]


def geom_change(root: Path) -> list[str]:
    """The same kinds of change as `scripted_change`, on the synthetic package."""
    points = root / "points.py"
    text = points.read_text(encoding="utf-8").replace("def midpoint(", "def center_of(")
    text = text.replace("def distance(a, b):", "def distance(a, b, squared=False):")
    points.write_text(text + ROTATE, encoding="utf-8")
    (root / "units.py").unlink()
    return ["renamed geom.points.midpoint -> center_of", "added parameter squared to geom.points.distance",
            "added function geom.points.rotate", "deleted module geom.units"]


def _cpu_datasets(home: Path, fractions: set[float], phrasings: int) -> dict:
    from graphtune.server.settings import Settings
    from graphtune.tools.dataset.extract import run_extract
    from graphtune.tools.dataset.params import ExtractParams
    from graphtune.tools.graph.ingest import IngestParams, run_ingest

    settings = Settings(home=home)
    settings.ensure_dirs()
    src = home / "src" / "geom"
    if (home / "datasets" / "geom-v1").is_dir():
        return json.loads((home / "prep.json").read_text())
    src.mkdir(parents=True)
    for name, text in GEOM_V1.items():
        (src / name).write_text(text, encoding="utf-8")
    ingest = IngestParams(path=str(src), codebase="geom")
    run_ingest(ingest, settings)
    run_extract(ExtractParams(dataset_name="geom-v1", objective="knowledge", augmentation_factor=phrasings), settings)
    done = geom_change(src)
    second = run_ingest(ingest, settings)
    report = {"change": done, "entities_changed": second["entities_changed"], "deltas": {}}
    for fraction in sorted(fractions):
        name = f"geom-v2-r{round(100 * fraction)}"
        out = run_extract(ExtractParams(dataset_name=name, objective="knowledge", since="geom-v1",
                                        augmentation_factor=phrasings, replay_fraction=fraction,
                                        delta_repeats=1), settings)  # as recorded: before repeats existed
        meta = json.loads((settings.datasets_dir / name / "metadata.json").read_text())
        report["deltas"][name] = {"train_examples": out["train_examples"], "facts": meta["delta"]["facts"]}
    (home / "prep.json").write_text(json.dumps(report, indent=1))
    return report


def _cpu_probes(home: Path, delta: str) -> list[dict]:
    """The delta's probes (new/changed/unchanged sample) plus every v1 probe about an untouched entity
    (status `unchanged_wide`): one set, so each model answers it once."""
    meta = json.loads((home / "datasets" / delta / "metadata.json").read_text())["delta"]
    probes = [json.loads(line) for line in (home / "datasets" / delta / "probes.jsonl").open()]
    touched = set(meta["added_entities"] + meta["changed_entities"] + meta["removed_entities"])
    touched |= {p["entity"] for p in probes if p["status"] != "unchanged"}
    parents = {".".join(name.split(".")[:i]) for name in touched for i in range(1, name.count(".") + 1)}
    wide = [{**p, "id": f"wide-{p['id']}", "status": "unchanged_wide"}
            for p in map(json.loads, (home / "datasets" / "geom-v1" / "probes.jsonl").open())
            if p["entity"] not in touched | parents and not p["entity"].startswith("geom.units")]
    return probes + wide


def _cpu_answer(home: Path, name: str, probes: list[dict]) -> dict:
    from graphtune.tools.training.evaluate import evaluate_knowledge
    from graphtune.tools.training.generation import load_for_inference

    cache = home / "answers" / f"{name}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    ctx = Ctx(home, f"job_answer{abs(hash(name)) % 100:02d}")
    meta = json.loads((home / "models" / name / "training_metadata.json").read_text())
    model, tokenizer = load_for_inference(meta["base_model"], home / "models" / name, "cpu", ctx.settings)
    started = time.perf_counter()
    report, rows = evaluate_knowledge(model, tokenizer, probes, "cpu", include_base=False)
    status = {p["id"]: p["status"] for p in probes}
    out = {"seconds": round(time.perf_counter() - started, 1), "retention_loss": report["retention"]["tuned_loss"],
           "correct": {r["id"]: bool(r["tuned_correct"]) for r in rows},
           "answers": {r["id"]: r["tuned_answer"][:200] for r in rows}}
    out["by_status"] = {}
    for key in ("new", "changed", "unchanged", "unchanged_wide"):
        ids = [i for i, s in status.items() if s == key]
        if ids:
            out["by_status"][key] = {"probes": len(ids), "correct": sum(out["correct"][i] for i in ids),
                                     "accuracy": round(sum(out["correct"][i] for i in ids) / len(ids), 4)}
    cache.parent.mkdir(exist_ok=True)
    cache.write_text(json.dumps(out, indent=1))
    return out


def cpu() -> int:
    """CPU, real SmolLM2-135M-Instruct, the synthetic `geom` package: train v1 once (knowledge preset,
    CPU-sized), continue it on the delta with each recipe of CPU_RECIPES (or RECIPES='[[name, replay,
    {overrides}], ...]'), and score every model on the same probes. RETRAIN_CPU_HOME keeps the
    data dir (v1, answers) between runs; RECIPE_INDEX=i runs only recipe i (two processes, two cores)."""
    from graphtune.tools.training.presets import apply_preset

    recipes = json.loads(os.environ["RECIPES"]) if os.environ.get("RECIPES") else CPU_RECIPES
    chosen = [int(i) for i in os.environ["RECIPE_INDEX"].split(",")] if os.environ.get("RECIPE_INDEX") else None
    recipes = [(i, *r) for i, r in enumerate(recipes) if chosen is None or i in chosen]
    home = Path(os.environ.get("RETRAIN_CPU_HOME") or tempfile.mkdtemp())
    home.mkdir(parents=True, exist_ok=True)
    prep_report = _cpu_datasets(home, {r[1] for r in CPU_RECIPES} | {r[2] for r in recipes},
                                int(os.environ.get("PHRASINGS", "3")))
    (home / "models").mkdir(exist_ok=True)
    v1_cfg = apply_preset({"dataset_name": "geom-v1", "base_model": "smollm2-135m-instruct", "output_name": "geom-v1",
                           "device": "cpu", "num_epochs": int(os.environ.get("V1_EPOCHS", "3")),
                           "max_seq_length": 256, "tokens_per_batch": 1024, "save_steps": 100000,
                           "evaluate_probes": False}, "knowledge")
    report: dict = {"prep": prep_report, "v1_recipe": {k: v1_cfg[k] for k in (
        "lora_rank", "lora_alpha", "learning_rate", "num_epochs", "tokens_per_batch", "max_seq_length")}}
    if not (home / "models" / "geom-v1" / "training_metadata.json").is_file():
        report["train_v1"] = _train(home, v1_cfg, "geom-v1")
    probes = _cpu_probes(home, "geom-v2-r20")
    v1 = _cpu_answer(home, "geom-v1", probes)
    report["v1"] = v1["by_status"]
    report["recipes"] = []
    for index, label, fraction, overrides in recipes:
        dataset = f"geom-v2-r{round(100 * fraction)}"
        name = "geom-v2-" + re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40]
        row: dict = {"recipe": label, "replay_fraction": fraction, "overrides": overrides,
                     "delta_train_examples": prep_report["deltas"][dataset]["train_examples"]}
        if not (home / "models" / name / "training_metadata.json").is_file():
            row["train"] = _train(home, {**v1_cfg, "dataset_name": dataset, "output_name": name,
                                         "init_adapter": "geom-v1", **overrides}, f"r{index}{name}")
        v2 = _cpu_answer(home, name, probes)
        row["after"] = v2["by_status"]
        row["retention_loss"] = {"before": v1["retention_loss"], "after": v2["retention_loss"]}
        new = sum(v2["by_status"][k]["correct"] for k in ("new", "changed") if k in v2["by_status"])
        n_new = sum(v2["by_status"][k]["probes"] for k in ("new", "changed") if k in v2["by_status"])
        row["changed_facts_accuracy"] = round(new / n_new, 4)
        for key in ("unchanged", "unchanged_wide"):
            row[f"{key}_drop_points"] = round(100 * (v1["by_status"][key]["accuracy"]
                                                     - v2["by_status"][key]["accuracy"]), 1)
        report["recipes"].append(row)
        print(json.dumps(row), flush=True)
    text = json.dumps(report, indent=1)
    print(text)
    (home / f"report-{int(time.time())}.json").write_text(text)
    return 0


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "run"
    sys.exit({"prep": lambda: prep(), "smoke": lambda: smoke(), "cpu": lambda: cpu()}.get(mode, lambda: run(sys.argv[2:]))())
