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
                                     # init_adapter=v1, same recipe), compare v1 vs v2 on the delta's
                                     # probes, apply the default retrain policy
    python bench/retrain.py smoke    # CPU check of the mechanics: prep + run with a tiny
                                     # config-built model, a few steps, 20 probes (minutes)

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
from knowledge import Ctx, _assemble_gguf, _overrides

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
    delta = run_extract(ExtractParams(dataset_name=V2, objective="knowledge", since=V1,
                                      augmentation_factor=augmentation_factor,
                                      replay_fraction=float(os.environ.get("REPLAY_FRACTION", "0.2"))), settings)
    meta = json.loads((settings.datasets_dir / V2 / "metadata.json").read_text())
    return {"change": done, "diff": second["diff"], "entities_changed": second["entities_changed"],
            "delta": {k: meta["delta"][k] for k in ("entities", "facts", "probes_by_status", "replay_fraction")},
            "delta_train_examples": delta["train_examples"]}


def prep() -> int:
    from graphtune.tools.training.base_models import BUILTINS

    home = Path(tempfile.mkdtemp())
    report = build_datasets(home)
    shutil.rmtree(CARRY, ignore_errors=True)
    (CARRY / "datasets").mkdir(parents=True)
    for name in (V1, V2):
        shutil.copytree(home / "datasets" / name, CARRY / "datasets" / name)
    (CARRY / "prep.json").write_text(json.dumps(report, indent=1))
    gguf1, gguf2 = Path(".devcarry/gguf1/part1"), Path(".devcarry/gguf2/part2")
    if not (gguf1.is_file() and gguf2.is_file()):  # same staging as bench/knowledge.py prep
        data = Path(BUILTINS["smollm2-135m-instruct"].path()).read_bytes()
        for part, chunk in ((gguf1, data[: len(data) // 2]), (gguf2, data[len(data) // 2:])):
            part.parent.mkdir(parents=True, exist_ok=True)
            part.write_bytes(chunk)
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


def unchanged_probe_set(home: Path) -> str:
    """A probes-only dataset of v1's probes about entities the change did not touch (nor their parents):
    the wide check of forgetting (the delta's own sample of unchanged probes is small)."""
    delta = json.loads((home / "datasets" / V2 / "metadata.json").read_text())["delta"]
    touched = set(delta["added_entities"] + delta["changed_entities"] + delta["removed_entities"])
    touched |= {json.loads(line)["entity"] for line in (home / "datasets" / V2 / "probes.jsonl").open()
                if json.loads(line)["status"] != "unchanged"}
    parents = {".".join(name.split(".")[:i]) for name in touched for i in range(1, name.count(".") + 1)}
    name = "email-v1-untouched"
    folder = home / "datasets" / name
    shutil.copytree(home / "datasets" / V1, folder)
    keep = [line for line in (folder / "probes.jsonl").open() if (entity := json.loads(line)["entity"]) not in
            touched | parents and not entity.startswith("email.encoders")]
    (folder / "probes.jsonl").write_text("".join(keep))
    return name


def run_chain(home: Path, base_model: str, extra: dict, max_probes: int) -> dict:
    """train v1 -> train v2 from v1 on the delta (same recipe) -> compare -> the policy's verdict."""
    from graphtune.tools.training.compare_job import run_compare_job
    from graphtune.tools.training.presets import apply_preset
    from graphtune.tools.training.retrain import RetrainPolicy, judge

    (home / "models").mkdir(exist_ok=True)
    recipe = apply_preset({"dataset_name": V1, "base_model": base_model, "output_name": V1, "save_steps": 100000,
                           "evaluate_probes": False, **extra}, "knowledge")
    out = {"recipe": {k: recipe.get(k) for k in ("lora_rank", "lora_alpha", "learning_rate", "num_epochs",
                                                  "max_steps", "tokens_per_batch", "device")}}
    out["train_v1"] = _train(home, recipe, V1)
    v2_extra = json.loads(os.environ.get("V2_OVERRIDES", "{}"))  # experiments only: retrain reuses the v1 recipe
    out["train_v2"] = _train(home, {**recipe, "dataset_name": V2, "output_name": V2, "init_adapter": V1,
                                    **v2_extra}, V2)
    if v2_extra:
        out["v2_overrides"] = v2_extra
    started = time.perf_counter()
    compare = run_compare_job({"model_a": V1, "model_b": V2, "dataset_name": V2, "max_probes": max_probes,
                               "device": recipe.get("device", "auto")}, Ctx(home, "job_compare00000"))
    out["compare_seconds"] = round(time.perf_counter() - started, 1)
    verdict = judge(compare, RetrainPolicy())
    wide = run_compare_job({"model_a": V1, "model_b": V2, "dataset_name": unchanged_probe_set(home),
                            "max_probes": max_probes, "device": recipe.get("device", "auto")},
                           Ctx(home, "job_compare00001"))
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
              **run_chain(home, str(_assemble_gguf(home)), _overrides(args), int(os.environ.get("MAX_PROBES", "600")))}
    text = json.dumps(report, indent=1)
    print(text)
    if os.environ.get("OUT"):
        (Path(os.environ["OUT"]) / "retrain.json").write_text(text)
    return 0


def smoke() -> int:
    """CPU: the whole bench with a tiny config-built model (mechanics only; accuracy means nothing)."""
    from graphtune.tools.training.tiny_model import create_tiny_model, texts_from_jsonl

    home = Path(tempfile.mkdtemp())
    prep_report = build_datasets(home, augmentation_factor=2)
    tiny = create_tiny_model(home / "tiny", texts_from_jsonl(home / "datasets" / V1 / "train.jsonl")[:4000],
                             vocab_size=400, hidden=32)
    report = {"prep": prep_report, **run_chain(home, str(tiny), {"max_steps": 3, "device": "cpu", "lora_rank": 4,
                                                                 "lora_alpha": 8, "warmup": 0}, 20)}
    print(json.dumps(report, indent=1))
    assert report["by_status"] and report["verdict"]["new_fact_probes"] > 0, "the delta's probes were not compared"
    return 0


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "run"
    sys.exit({"prep": lambda: prep(), "smoke": lambda: smoke()}.get(mode, lambda: run(sys.argv[2:]))())
