"""CPU: a base model answers the held-out general questions as plain text and in its chat format.

Why: a pretrained base (no chat template of its own, e.g. the `gemma3-270m` GGUF) scores near zero
when asked in a turn format it never saw, which says nothing about what it knows. Asked as
`Question: ...\\nAnswer:` (graphtune's plain-text replay, tools/training/base_style.py) it shows how
much general knowledge replay has to keep.

    python3 bench/general_ability_plain.py BASE [--chat] [--per-category N]

BASE: anything `base_model` accepts (a .gguf converts once into GRAPHTUNE_HOME's cache).

Measured (2026-12-04, 2 shared CPU cores, fp32, greedy, first line of up to 40 new tokens; Gemma 3
270M pretrained Q4_K_M GGUF, all 180 questions): plain text **44.4 %** (arithmetic 43.3, everyday
53.3, format 40.0, programming 50.0, python 23.3, science 56.7 %), every answer ended; in Gemma's turn
format the same model scored 4.4 % on the H200 (bench/RESULTS.md, ninth session).
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("--chat", action="store_true", help="also ask in the chat format (slow: answers run on)")
    parser.add_argument("--per-category", type=int, default=None, help="questions per category (default all)")
    args = parser.parse_args(argv)

    from graphtune.server.settings import Settings
    from graphtune.tools.training.evaluate import general_questions
    from graphtune.tools.training.general_ability import score_general, summarize_general
    from graphtune.tools.training.general_replay import COMPLETION_PROMPT
    from graphtune.tools.training.generation import generate_chat_detailed, generate_completions, load_for_inference

    model, tokenizer = load_for_inference(args.base, None, "cpu", Settings())
    questions = general_questions(args.per_category)
    out = {}
    for mode in ("plain", "chat") if args.chat else ("plain",):
        started = time.perf_counter()
        if mode == "plain":
            answers = generate_completions(model, tokenizer, [COMPLETION_PROMPT.format(prompt=q["question"])
                                                              for q in questions], max_new_tokens=40, batch_size=20)
        else:
            answers = generate_chat_detailed(model, tokenizer, [[{"role": "user", "content": q["question"]}]
                                                                for q in questions], max_new_tokens=40, batch_size=20)
        rows = [{"category": q["category"], "correct": score_general(a.text, q["gold"]), "ended": a.ended_cleanly,
                 "question": q["question"], "answer": a.text} for q, a in zip(questions, answers)]
        out[mode] = {**summarize_general(rows), "seconds": round(time.perf_counter() - started, 1),
                     "examples": rows[:8]}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
