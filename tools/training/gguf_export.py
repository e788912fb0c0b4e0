"""The `export` job: a fine-tuned model as one GGUF file for llama.cpp, Ollama and LM Studio.

    models/<model>/gguf/<type>/<model>-<type>.gguf   the merged model (deleted with the model)
                              /Modelfile             Ollama: FROM ./<file>, a stop per end-of-turn token
                              /export.json           what list_models shows

Steps: check the base's architecture against llama.cpp's converter (nothing is written for one it
does not support) -> merge the adapter into a scratch folder (the `merge` job's code) -> the
converter writes q8_0/f16/bf16; a k-quant goes through f16 and `llama-quantize` -> read the file
back: it must carry the chat template and its end-of-turn token as EOS/EOT, so a runtime stops
where the model stops -> Modelfile -> publish the folder atomically (a failure, a cancel or a full
disk leaves nothing under the real name). The same model and type again reuses the file unless
`overwrite`.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from graphtune.tools.dataset.atomic import staged_folder
from graphtune.tools.errors import ExportFailed, ModelUnsupported
from graphtune.tools.job_context import JobContext
from graphtune.tools.training import gguf_convert
from graphtune.tools.training.exports import EXPORT_FILE, export_dir

__all__ = ["modelfile_text", "ollama_name", "run_export_job"]

STAGES = {"loading the base model": 0, "merging": 1, "saving": 1, "converting": 2, "quantizing": 2, "checking": 3}


def _check_architecture(base: str, model_name: str) -> str:
    config = json.loads((Path(base) / "config.json").read_text(encoding="utf-8"))
    architecture = (config.get("architectures") or [config.get("model_type") or "unknown"])[0]
    if architecture not in gguf_convert.supported_architectures():
        raise ModelUnsupported(f"llama.cpp's converter does not support architecture `{architecture}` (the base of "
                               f"`{model_name}`); nothing was written.", field="model_name",
                               hint="Export models whose base llama.cpp supports (Llama, Qwen2/3, Mistral, Gemma, "
                               "Phi-3, SmolLM ...); `merge_adapter` still gives a standalone Hugging Face folder.")
    return architecture


def _end_of_turn_tokens(folder: Path) -> list[str]:
    """The template's end-of-turn token(s) and the EOS; the first is made the EOS the converter writes."""
    from transformers import AutoTokenizer

    from graphtune.tools.training.tokenize import end_of_turn_ids

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    stops = tokenizer.convert_ids_to_tokens(end_of_turn_ids(tokenizer))
    if stops and tokenizer.eos_token != stops[0]:
        tokenizer.eos_token = stops[0]
        tokenizer.save_pretrained(str(folder))
    return stops


def modelfile_text(model_name: str, gguf_name: str, stops: list[str]) -> str:
    lines = [f"# Ollama Modelfile for graphtune model {model_name}.",
             f"#   ollama create {ollama_name(model_name)} -f Modelfile && ollama run {ollama_name(model_name)}",
             "# The chat template is the GGUF's own (tokenizer.chat_template).", f"FROM ./{gguf_name}"]
    lines += [f'PARAMETER stop "{stop}"' for stop in stops]
    lines += ["# greedy decoding, as graphtune answers and evaluates", "PARAMETER temperature 0"]
    return "\n".join(lines) + "\n"


def ollama_name(model_name: str) -> str:
    return model_name.lower()


def _verify(path: Path, stops: list[str]) -> dict[str, Any]:
    """The written file carries the chat template and the end-of-turn token as EOS/EOT."""
    found = gguf_convert.read_back(path)
    ends = {found["eos"], found["eot"], found["eom"]} - {None}
    if not found["chat_template"]:
        raise ExportFailed("the GGUF has no tokenizer.chat_template; a runtime would chat in the wrong format.",
                           field="model_name", hint="Train from a base model with a chat template.")
    if stops and stops[0] not in ends:
        raise ExportFailed(f"the GGUF ends generation at {sorted(ends)}, not at the end-of-turn token {stops[0]!r}.",
                           field="model_name", hint="Report this with the model's base; nothing was published.")
    return found


def _write(tmp: Path, final: Path, params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Merge, convert (and quantize), check; returns the export record (paths as published)."""
    from graphtune.tools.training.merge import merge_into

    name, kind = params["model_name"], params["output_type"]
    progress = lambda message: ctx.progress(STAGES.get(message, 0), 4, "stages", message)  # noqa: E731
    merged = tmp / ".merged"
    meta = merge_into(ctx.settings, name, merged, progress)
    stops = _end_of_turn_tokens(merged)
    ctx.check_cancel()
    gguf_name = f"{name}-{kind}.gguf"
    progress("converting")
    if kind in gguf_convert.CONVERTER_TYPES:
        gguf_convert.convert(merged, tmp / gguf_name, kind, ctx.check_cancel)
    else:
        gguf_convert.convert(merged, tmp / ".f16.gguf", "f16", ctx.check_cancel)
        progress("quantizing")
        gguf_convert.quantize(params["quantize_binary"], tmp / ".f16.gguf", tmp / gguf_name, kind, ctx.check_cancel)
        (tmp / ".f16.gguf").unlink()
    shutil.rmtree(merged)
    progress("checking")
    found = _verify(tmp / gguf_name, stops)
    (tmp / "Modelfile").write_text(modelfile_text(name, gguf_name, stops), encoding="utf-8")
    return {"model_name": name, "output_type": kind, "path": str(final / gguf_name),
            "size_bytes": (tmp / gguf_name).stat().st_size, "modelfile": str(final / "Modelfile"),
            "ollama_create": f"ollama create {ollama_name(name)} -f {final / 'Modelfile'}",
            "ollama_run": f"ollama run {ollama_name(name)}", "architecture": found["architecture"],
            "end_of_turn_tokens": stops, "chat_template": True, "base_model": meta.get("base_model"),
            "converter": gguf_convert.CONVERTER_PIN, "job_id": ctx.job_id,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def run_export_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    from graphtune.tools.training.base_models import base_for_adapter
    from graphtune.tools.training.registry import read_model_metadata

    settings, name = ctx.settings, params["model_name"]
    final = export_dir(settings, name, params["output_type"])
    record = final / EXPORT_FILE
    if record.is_file() and not params.get("overwrite"):
        previous = json.loads(record.read_text(encoding="utf-8"))
        if Path(previous.get("path", "")).is_file():
            ctx.progress(4, 4, "stages", "reused the existing export")
            return {**previous, "reused": True}
    started = time.perf_counter()
    ctx.progress(0, 4, "stages", "checking the architecture")
    base = base_for_adapter(read_model_metadata(settings, name), settings, field="model_name")
    _check_architecture(base, name)  # before anything is written
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        with staged_folder(final, overwrite=True, what="export", field="model_name") as tmp:
            result = _write(tmp, final, params, ctx)
            result["seconds"] = round(time.perf_counter() - started, 1)
            (tmp / EXPORT_FILE).write_text(json.dumps(result, indent=2), encoding="utf-8")
            ctx.check_cancel()
    except BaseException:
        if final.parent.is_dir() and not any(final.parent.iterdir()):
            final.parent.rmdir()  # a first export that failed leaves no empty gguf/ behind
        raise
    ctx.progress(4, 4, "stages", "done")
    return {**result, "reused": False}
