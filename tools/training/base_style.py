"""Was the base model trained to chat, or only to continue text? Read from its folder, no load.

Why it matters: general replay keeps a tuned model an assistant by training on the base model's own
answers to everyday prompts, asked in its chat format. A pretrained (not instruction-tuned) base has
no chat template of its own: graphtune gives it its family's turn format (Gemma's pretrained GGUFs) or
ChatML, which the model has never seen, and its answers there are noise. Measured on Gemma 3 270M's
pretrained GGUF (CPU, fp32, the 180 held-out general questions): 44 % right when asked as plain text
("Question: ...\\nAnswer:"), noise that never ends when asked in Gemma's turn format (4.4 % on the
GPU). Such a base answers the replay prompts as plain text (`general_replay.COMPLETION_DECODING`), and
those answers are trained in the chat format, so the tuned model learns the turn format from what
the base model knows.
"""

from __future__ import annotations

import json
from pathlib import Path

from graphtune.tools.training.gguf_cache import SOURCE_FILE
from graphtune.tools.training.token_lengths import light_tokenizer_files


def has_own_chat_template(base: str | Path) -> bool:
    """True unless the base model's folder shows it has no chat template of its own.

    A converted GGUF records where its template came from (the GGUF's own, or a family default
    because the GGUF had none); a Hugging Face folder has one in chat_template.jinja or
    tokenizer_config.json. A hub id or a folder that says nothing counts as a chat model: that
    keeps the replay that was measured for them."""
    folder = Path(base)
    source = folder / SOURCE_FILE
    if source.is_file():
        try:
            info = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return True
        return info.get("chat_template_source", "gguf") == "gguf"
    if not folder.is_dir():
        return True
    files = light_tokenizer_files(folder)
    if files is not None:
        return not files[2]
    config = folder / "tokenizer_config.json"
    if (folder / "chat_template.jinja").is_file():
        return True
    try:
        return bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template")) if config.is_file() else True
    except (OSError, ValueError):
        return True
