"""What a finished model folder holds besides the adapter: metadata, a model card, the loss plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_loss_plot(log_history: list[dict[str, Any]], path: Path) -> bool:
    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    evals = [(h["step"], h["eval_loss"]) for h in log_history if "eval_loss" in h and "step" in h]
    if not train:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(*zip(*train), label="train loss", linewidth=1.2)
    if evals:
        ax.plot(*zip(*evals), "o-", label="eval loss", linewidth=1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (assistant tokens)")
    ax.set_title("graphtune fine-tuning")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def model_card(meta: dict[str, Any]) -> str:
    cfg, final = meta["config"], meta.get("evaluation", {})
    lines = [
        "---", f"base_model: {meta['base_model']}", "library_name: peft", "tags: [graphtune, lora, code]", "---", "",
        f"# {meta['name']}", "",
        f"A {cfg['method'].upper()} adapter for `{meta['base_model']}`, fine-tuned by graphtune {meta['graphtune_version']}"
        f" on the dataset `{meta['dataset']['name']}` (graph fingerprint `{meta['dataset'].get('graph_fingerprint')}`).", "",
        "## Training", "",
        f"- rank {cfg['lora_rank']}, alpha {cfg['lora_alpha']}, dropout {cfg['lora_dropout']}, targets {cfg['target_modules']}",
        f"- learning rate {cfg['learning_rate']}, epochs {cfg['num_epochs']}, steps {meta['steps']}, "
        f"tokens trained {meta['tokens_trained']}", f"- device {meta['hardware']['device']} "
        f"({meta['hardware'].get('gpu') or 'no GPU'}), {meta['duration_seconds']:.0f} s", "",
        "## Evaluation (held-out split)", "",
        "| model | eval loss | perplexity |", "| --- | --- | --- |",
        f"| base | {_fmt(final.get('base_eval_loss'))} | {_fmt(final.get('base_perplexity'))} |",
        f"| fine-tuned | {_fmt(final.get('eval_loss'))} | {_fmt(final.get('perplexity'))} |", "",
        *_knowledge_section(meta.get("knowledge")),
        *_plain_text_base_note(meta.get("knowledge"), meta.get("general_replay")),
        "## Use", "", "```python", "from peft import PeftModel", "from transformers import AutoModelForCausalLM, AutoTokenizer",
        f"base = AutoModelForCausalLM.from_pretrained({meta.get('base_model_resolved') or meta['base_model']!r})"
        + (f"  # graphtune base_model {meta['base_model']!r}"
           if meta.get("base_model_resolved") not in (None, meta["base_model"]) else ""),
        "model = PeftModel.from_pretrained(base, 'path/to/this/folder')",
        "tokenizer = AutoTokenizer.from_pretrained('path/to/this/folder')", "```", "",
    ]
    return "\n".join(lines)


def _knowledge_section(report: dict[str, Any] | None) -> list[str]:
    """Closed-book accuracy on held-out phrasings, base vs tuned, and the retention figure."""
    if not report:
        return []
    from graphtune.tools.training.evaluate import accuracy_table

    retention = report.get("retention") or {}
    tuned = report.get("tuned") or {}
    lines = ["## Closed-book knowledge (held-out phrasings)", "",
             f"Greedy answers to {report.get('probes')} probe questions of `{report.get('dataset')}` in phrasings "
             "never trained on, scored against the graph's facts.", "", *accuracy_table(report), "",
             f"Answers that ended at the end of the turn: {_fmt_pct(tuned.get('ended_cleanly'))}. "
             f"Retention (loss on general text outside the code base): base {_fmt(retention.get('base_loss'))}, "
             f"tuned {_fmt(retention.get('tuned_loss'))} ({_fmt_pct(retention.get('relative_rise'), signed=True)}).", ""]
    return lines


def _plain_text_base_note(report: dict[str, Any] | None, replay: dict[str, Any] | None) -> list[str]:
    """A base model without a chat template of its own (a pretrained model, e.g. Gemma 3 270M's GGUF)
    is asked the general questions in a chat format it never saw: its low figure is that format's,
    not what it knows (asked as plain text, that Gemma answered 44 % where its chat answers scored 5 %)."""
    from graphtune.tools.training.general_replay import PLAIN_TEXT_ANSWERS

    if not report or (replay or {}).get("answers") != PLAIN_TEXT_ANSWERS:
        return []
    return ["The base model has no chat template of its own (a pretrained model): its general-ability answers "
            "above are in a chat format it never saw, so its figure understates what it knows as a text "
            "completer. Training replayed its plain-text answers to everyday prompts in the chat format.", ""]


def _fmt_pct(value: Any, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:+.1f} %" if signed else f"{100 * value:.1f} %"


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def write_metadata(folder: Path, meta: dict[str, Any]) -> None:
    (folder / "training_metadata.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    (folder / "README.md").write_text(model_card(meta), encoding="utf-8")
