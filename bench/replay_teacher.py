"""GPU: the replay-KL teacher as states computed once (teacher_states.py) vs a per-step forward (issue 21).

One process, one model (SmolLM2-135M shape, random init, bf16, flex_attention, LoRA r64 all-linear,
the engine's prepare_model), the same 49,152-token packed rows (fact-sized documents plus ~20 % of
tokens in longer replay documents, padded to the row budget as build_trainer does). Per row and
variant it times what the KL adds to a step and the step itself (student forward with the hidden-state
hook, the teacher's states, kl_to_base, backward), prints the median ms, the one-time pass's seconds and
MiB, the KL of both variants (bf16: equal up to rounding) and torch.compile's recompile counters.

The per-step reference (a no-grad forward of the base model over the whole row) lives only in the unit
test that proves both give the same term; it is imported from there.

    python3 bench/replay_teacher.py            # ROWS=24 BUDGET=49152 REPLAY_SHARE=0.2
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit" / "training"))  # full_row_teacher


def _examples(rng: random.Random, budget: int, rows: int, share: float) -> list:  # noqa: ANN001
    """Fact documents (~80 tokens) and replay documents (~200 tokens, `share` of the tokens), shuffled."""
    from graphtune.tools.training.tokenize import Example

    def doc(mean_log: float, replay: bool) -> Example:
        n = max(24, min(600, int(rng.lognormvariate(mean_log, 0.45))))
        ids = [rng.randrange(100, 49000) for _ in range(n)]
        return Example(ids, [-100] * (n // 3) + ids[n // 3:], replay)

    docs: list = []
    replay_tokens = 0
    while sum(len(d) for d in docs) < budget * rows:
        replay = replay_tokens < share * sum(len(d) for d in docs)
        docs.append(doc(5.3 if replay else 4.3, replay))
        replay_tokens += len(docs[-1]) if replay else 0
    rng.shuffle(docs)
    return docs


def _step(model, batch, mask, teacher) -> tuple[float, float, float]:  # noqa: ANN001
    """(ms of the KL term, ms of the whole step, KL sum) for one packed row."""
    import torch

    from graphtune.tools.training.replay_kl import final_hidden_states, kl_to_base, predicting_positions

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with final_hidden_states(model) as caught:
        loss = model(**batch, use_cache=False).loss
    torch.cuda.synchronize()
    t1 = time.perf_counter()
    positions = predicting_positions(mask).to(caught["hidden"].device)  # host mask, as the trainer finds it
    kl, _ = kl_to_base(model, caught["hidden"], positions, teacher(model, batch, positions))
    torch.cuda.synchronize()
    t2 = time.perf_counter()
    (loss + kl / 1000).backward()  # the engine's scale: KL summed, divided by the row's labelled tokens
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    return 1000 * (t2 - t1), 1000 * (time.perf_counter() - t0), float(kl.detach())


def main() -> None:
    import torch
    import torch._dynamo.utils as dutils
    from small_model_speed import smollm2_config
    from test_replay_kl import full_row_teacher
    from transformers import LlamaForCausalLM

    from graphtune.tools.training.config import LoraJobConfig
    from graphtune.tools.training.model_loading import prepare_model
    from graphtune.tools.training.packing import REPLAY_MASK_KEY, collate_packed, plan_batches
    from graphtune.tools.training.teacher_states import TeacherStates, replay_examples

    budget, rows = int(os.environ.get("BUDGET", "49152")), int(os.environ.get("ROWS", "24"))
    examples = _examples(random.Random(0), budget, rows, float(os.environ.get("REPLAY_SHARE", "0.2")))
    groups = plan_batches([len(e) for e in examples], max_tokens=budget, max_examples=100_000, seed=0)[:rows]
    torch.manual_seed(0)
    model = LlamaForCausalLM(smollm2_config()).to(torch.bfloat16).cuda()
    model.set_attn_implementation("flex_attention")
    model = prepare_model(model, LoraJobConfig(base_model="x", dataset_name="x", target_modules="all-linear",
                                               lora_rank=64, lora_alpha=64), "cuda")
    model.train()
    for name, param in model.named_parameters():
        if "lora_B" in name:  # a trained-looking adapter: tuned != base, so the KL compared below is not ~0
            torch.nn.init.normal_(param, std=0.01)
    members = [[examples[k] for k in group] for group in groups]
    started = time.perf_counter()
    states = TeacherStates.compute(model, replay_examples(members), "cuda")
    once = {"seconds": round(time.perf_counter() - started, 2), "positions": int(states.states.shape[0]),
            "mib": round(states.nbytes / 2**20, 1)}
    results: dict = {"full_row": [], "states_once": []}
    dutils.counters.clear()
    for i, row in enumerate(members):
        batch = collate_packed(row, pad_to=budget, replay_mask=True)
        mask = batch.pop(REPLAY_MASK_KEY)
        batch = {k: v.cuda() for k, v in batch.items()}
        for name, teacher in (("full_row", full_row_teacher),
                              ("states_once", lambda _m, _b, _p, row=row: states.for_batch(row, "cuda"))):
            timing = _step(model, batch, mask, teacher)
            if i >= 4:  # the first rows compile
                results[name].append(timing)
    summary = {name: {"kl_ms_median": round(statistics.median(t[0] for t in got), 1),
                      "step_ms_median": round(statistics.median(t[1] for t in got), 1)}
               for name, got in results.items()}
    kl_gap = max(abs(a[2] - b[2]) / max(abs(a[2]), 1e-9) for a, b in zip(results["full_row"], results["states_once"]))
    print(json.dumps({"rows": len(groups), "states_pass": once, **summary,
                      "kl_max_relative_gap": round(kl_gap, 5),
                      "recompiles": dict(dutils.counters.get("recompiles", {})),
                      "dynamo_stats": dict(dutils.counters.get("stats", {})),
                      "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}, indent=1), flush=True)


if __name__ == "__main__":
    main()
