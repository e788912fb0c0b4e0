"""What the warm worker saves a training job (server/warm_worker.py), cold vs warm in the same run.

A knowledge dataset of stdlib `bisect`, then ROUNDS pairs of the same short training job
(SmolLM2-135M-Instruct, built-in, 2 steps, no probe evaluation) through the job runner: one
started in a fresh worker process, one handed to a ready spare. Reported per job: seconds from
submit to its "loading model" progress (imports + tokenizing), to its first step's metrics and to
the end; medians and the ratio.

    HF_HUB_OFFLINE=1 python bench/warm_worker_start.py   # ROUNDS=3
    # on the GPU machine (bench/gpu_session.sh warm): DATASETS=.devcarry/knowledge/datasets (no graph store
    # there), BASE=/tmp/gguf/SmolLM2-135M-Instruct.Q4_1.gguf (bench/knowledge.py's assembled GGUF), MAX_STEPS=20,
    # TOKENS_PER_BATCH=0 (the job's own packed rows), MAX_SEQ_LENGTH=512 (the knowledge preset's)
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from graphtune.server.services import Services
from graphtune.server.settings import Settings


def _wait(services: Services, job_id: str, submitted: float, submitted_wall: float) -> dict[str, float]:
    loading = None
    while True:
        job = services.store.get(job_id)
        if loading is None and job.progress_message == "loading model":
            loading = time.perf_counter() - submitted
        if job.status.is_final:
            if job.status.value != "succeeded":
                raise SystemExit(f"{job_id} {job.status.value}: {job.error}")
            steps = [e for e in services.store.events(job_id, type_="metrics") if "loss" in e.data]
            return {"to_loading_model_s": round(loading or float("nan"), 2),
                    "to_first_step_s": round(steps[0].at - submitted_wall, 2) if steps else None,
                    "job_s": round(time.perf_counter() - submitted, 2), "pid": job.worker_pid}
        time.sleep(0.05)


def _dataset(settings: Settings) -> str:
    """DATASETS=<folder of datasets> DATASET=<name>: an existing knowledge dataset (the GPU machine has
    no graph store: bench/knowledge.py's carried `email-facts`); else PACKAGE's, built here."""
    if os.environ.get("DATASETS"):
        import shutil

        name = os.environ.get("DATASET", "email-facts")
        shutil.copytree(Path(os.environ["DATASETS"]) / name, settings.datasets_dir / name)
        return name
    from graphtune.tools.dataset.extract import run_extract
    from graphtune.tools.dataset.params import ExtractParams
    from graphtune.tools.graph.ingest import IngestParams, run_ingest

    run_ingest(IngestParams(package=os.environ.get("PACKAGE", "bisect")), settings)
    run_extract(ExtractParams(dataset_name="b", objective="knowledge", augmentation_factor=2), settings)
    return "b"


def main() -> int:
    rounds = int(os.environ.get("ROUNDS", "3"))
    settings = Settings(home=Path(tempfile.mkdtemp()) / "home", warm_worker=True)
    settings.ensure_dirs()
    dataset = _dataset(settings)
    services = Services.open(settings)
    runner = services.runner
    # MAX_STEPS / TOKENS_PER_BATCH: on a GPU the job's own packed rows (TOKENS_PER_BATCH=0: the job's choice)
    budget = int(os.environ.get("TOKENS_PER_BATCH", "256"))
    config = {"dataset_name": dataset, "base_model": os.environ.get("BASE", "smollm2-135m-instruct"),
              "max_steps": int(os.environ.get("MAX_STEPS", "2")), **({"tokens_per_batch": budget} if budget else {}),
              "max_seq_length": int(os.environ.get("MAX_SEQ_LENGTH", "256")), "evaluate_probes": False,
              "general_replay": 0.0, "save_steps": 1000}

    def job(n: int) -> dict[str, float]:
        from graphtune.tools.start_fine_tuning import submit_training

        submitted, submitted_wall = time.perf_counter(), time.time()
        view = submit_training(services, {**config, "output_name": f"w{n}"})
        return _wait(services, view.id, submitted, submitted_wall)

    rows: dict[str, list[dict]] = {"cold": [], "warm": []}
    job(0)  # converts the GGUF once and marks a heavy job as seen (not counted)
    runner.keep_warm_worker()
    for n in range(1, rounds + 1):
        runner.close_warm_worker()  # cold: no spare at all
        rows["cold"].append(job(2 * n))
        runner.keep_warm_worker()
        runner.tick()
        while not runner.warm_worker.ready():
            time.sleep(0.1)
        rows["warm"].append(job(2 * n + 1))
        print(json.dumps({"round": n, "cold": rows["cold"][-1], "warm": rows["warm"][-1]}), flush=True)
    runner.close_warm_worker()
    summary = {side: {key: statistics.median(r[key] for r in rows[side])
                      for key in ("to_loading_model_s", "to_first_step_s", "job_s")} for side in rows}
    summary["ratio_to_loading_model"] = round(summary["warm"]["to_loading_model_s"]
                                              / summary["cold"]["to_loading_model_s"], 3)
    summary["load_average"] = os.getloadavg()[0]
    print(json.dumps({"rows": rows, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
