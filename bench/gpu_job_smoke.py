"""On the GPU machine: run the real `train` job handler (what start_fine_tuning queues) on CUDA
with a tiny model, for LoRA and QLoRA, and a cancel + resume; prints the results as JSON.
The job store is replaced by an in-memory stand-in (the GPU machine lacks the server's deps).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

from graphtune.tools.errors import JobCancelled
from graphtune.tools.training.train_job import run_train_job

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tiny_model (a test helper)
from tiny_model import create_tiny_model  # noqa: E402

FACTS = [("What does `pkg.add` return?", "It returns the sum of its two arguments."),
         ("Which class does `pkg.Cat` inherit from?", "`pkg.Cat` inherits from `pkg.Animal`."),
         ("Where is `pkg.load` defined?", "`pkg.load` is defined in `pkg/io.py`.")] * 4


class Ctx:
    def __init__(self, home: Path, job_id: str, stop_at: int | None = None) -> None:
        self.job_id, self.settings = job_id, SimpleNamespace(datasets_dir=home / "datasets", models_dir=home / "models")
        self.work_dir = home / "work" / job_id
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.metrics: list[dict] = []
        self.stop_at = stop_at

    def progress(self, *a, safe_point=True, **k):  # noqa: ANN001, ANN002, ANN003, ANN201
        pass

    def event(self, type_, data):  # noqa: ANN001, ANN201
        if type_ == "metrics":
            self.metrics.append(data)

    def log(self, message, **extra):  # noqa: ANN001, ANN003, ANN201
        print("log:", message, flush=True)

    def should_stop(self):  # noqa: ANN201
        steps = [m["step"] for m in self.metrics if "loss" in m]
        return "cancel" if self.stop_at and steps and steps[-1] >= self.stop_at else None

    def check_cancel(self):  # noqa: ANN201
        pass

    def register_model(self, row):  # noqa: ANN001, ANN201
        pass


def main() -> int:
    home = Path(tempfile.mkdtemp())
    (home / "models").mkdir()
    data = home / "datasets" / "memo"
    data.mkdir(parents=True)
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in FACTS]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    tiny = create_tiny_model(home / "tiny", [t for p in FACTS for t in p] * 10, vocab_size=512, hidden=128)
    base = {"dataset_name": "memo", "base_model": str(tiny), "learning_rate": 5e-3, "target_modules": "all-linear",
            "batch_size": 2, "num_epochs": 4, "warmup": 0, "save_steps": 1000}
    out = {}
    for method in ("lora", "qlora"):
        ctx = Ctx(home, f"job_{method}00000000")
        result = run_train_job({"config": {**base, "method": method, "output_name": f"{method}-gpu"}}, ctx)
        losses = [m["loss"] for m in ctx.metrics if "loss" in m]
        out[method] = {"first_loss": losses[0], "last_loss": losses[-1], **{k: result[k] for k in (
            "eval_loss", "base_eval_loss", "fast_path", "steps")}}
    ctx = Ctx(home, "job_resume000000", stop_at=5)
    try:
        run_train_job({"config": {**base, "output_name": "resumed"}}, ctx)
        out["cancel"] = "did not stop"
    except JobCancelled:
        ctx.stop_at = None
        result = run_train_job({"config": {**base, "output_name": "resumed"}, "resume": True}, ctx)
        steps = [m["step"] for m in ctx.metrics if "loss" in m]
        out["cancel_resume"] = {"steps_logged": steps, "eval_loss": result["eval_loss"],
                                "uninterrupted_eval_loss": out["lora"]["eval_loss"]}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
