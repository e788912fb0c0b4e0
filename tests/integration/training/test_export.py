"""GGUF export (export_model): the coded refusals, atomic output, and the registry view. No model is
converted here (the converter refuses a locally trained tokenizer): the real conversion, read back
and answered by llama.cpp, is in test_export_llama.py."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from graphtune.server.settings import Settings
from graphtune.tools.errors import GraphtuneError
from graphtune.tools.training import gguf_export
from graphtune.tools.training.exports import export_dir
from graphtune.tools.training.gguf_export import modelfile_text, run_export_job
from test_model_registry import fake_model


def _ctx(settings: Settings) -> SimpleNamespace:
    return SimpleNamespace(settings=settings, job_id="job_test", progress=lambda *a, **k: None,
                           check_cancel=lambda: None)


def _fake_base(settings: Settings, name: str, architecture: str) -> None:
    """A model whose training metadata points at a base folder of `architecture`."""
    base = settings.home / f"base-{architecture}"
    base.mkdir(parents=True)
    (base / "config.json").write_text(json.dumps({"architectures": [architecture], "model_type": "x"}))
    folder = fake_model(settings, name)
    (folder / "training_metadata.json").write_text(json.dumps({"name": name, "base_model": str(base)}))


@pytest.mark.anyio
async def test_unknown_model_and_k_quant_without_llama_quantize_are_refused_before_queueing(
        client, services, monkeypatch) -> None:
    unknown = await client.call_tool("export_model", {"model_name": "nope"})
    assert unknown.is_error and "[model_unknown]" in unknown.content[0].text
    fake_model(services.settings, "m1")
    monkeypatch.setenv("PATH", str(services.settings.home))  # no llama-quantize anywhere
    refused = await client.call_tool("export_model", {"model_name": "m1", "output_type": "q4_k_m"})
    text = refused.content[0].text
    assert refused.is_error and "[invalid_argument]" in text and "`output_type`" in text
    assert "llama-quantize" in text and "install" in text
    bad = await client.call_tool("export_model", {"model_name": "m1", "output_type": "q3"})
    assert bad.is_error and "output_type" in bad.content[0].text
    assert (await client.call_tool("list_jobs", {})).structured_content["total"] == 0


def test_unsupported_architecture_names_it_and_writes_nothing(services) -> None:
    settings = services.settings
    _fake_base(settings, "odd", "NotARealModelForCausalLM")
    with pytest.raises(GraphtuneError) as caught:
        run_export_job({"model_name": "odd", "output_type": "q8_0"}, _ctx(settings))
    assert caught.value.code == "model_unsupported" and "NotARealModelForCausalLM" in str(caught.value)
    assert sorted(p.name for p in (settings.models_dir / "odd").iterdir()) == ["adapter_config.json",
                                                                              "training_metadata.json"]


def test_a_full_disk_during_conversion_leaves_no_partial_file(services, monkeypatch) -> None:
    settings = services.settings
    _fake_base(settings, "m", "LlamaForCausalLM")

    def fake_merge(settings, name, out, progress):  # noqa: ANN001, ANN202
        out.mkdir()
        return {"base_model": "x"}

    def full_disk(folder, outfile, outtype, check_cancel):  # noqa: ANN001, ANN202
        outfile.write_bytes(b"GGUF" + b"\0" * 1000)  # a partial file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("graphtune.tools.training.merge.merge_into", fake_merge)
    monkeypatch.setattr(gguf_export, "_end_of_turn_tokens", lambda folder: ["<|im_end|>"])
    monkeypatch.setattr(gguf_export.gguf_convert, "convert", full_disk)
    with pytest.raises(GraphtuneError) as caught:
        run_export_job({"model_name": "m", "output_type": "q8_0"}, _ctx(settings))
    assert caught.value.code == "storage_error" and "disk full" in str(caught.value)
    assert not (settings.models_dir / "m" / "gguf").exists()
    assert not list(settings.models_dir.rglob("*.gguf"))


def fake_export(settings: Settings, name: str) -> Path:
    """A model with a finished q8_0 export on disk (as the export job leaves it); returns the .gguf."""
    fake_model(settings, name)
    folder = export_dir(settings, name, "q8_0")
    folder.mkdir(parents=True)
    gguf = folder / f"{name}-q8_0.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 100)
    record = {"model_name": name, "output_type": "q8_0", "path": str(gguf), "size_bytes": 104,
              "modelfile": str(folder / "Modelfile"), "created_at": "2026-12-02T00:00:00Z",
              "ollama_create": f"ollama create {name} -f {folder / 'Modelfile'}", "ollama_run": f"ollama run {name}",
              "end_of_turn_tokens": ["<|im_end|>"]}
    (folder / "export.json").write_text(json.dumps(record))
    return gguf


def test_an_existing_export_is_reused_listed_and_deleted_with_its_model(services) -> None:
    settings = services.settings
    gguf = fake_export(settings, "m2")
    again = run_export_job({"model_name": "m2", "output_type": "q8_0"}, _ctx(settings))
    assert again["reused"] is True and again["path"] == str(gguf)

    from graphtune.tools.delete_model import delete_model
    from graphtune.tools.list_models import list_models

    listed = {m.name: m for m in list_models(services).models}
    assert [(e.output_type, e.size_bytes, e.path) for e in listed["m2"].exports] == [("q8_0", 104, str(gguf))]
    delete_model(services, "m2")
    assert not gguf.exists()


def test_modelfile_has_one_stop_per_end_of_turn_token_and_the_gguf_template() -> None:
    text = modelfile_text("MyProj-v1", "MyProj-v1-q8_0.gguf", ["<|im_end|>", "<|endoftext|>"])
    lines = text.splitlines()
    assert "FROM ./MyProj-v1-q8_0.gguf" in lines
    assert 'PARAMETER stop "<|im_end|>"' in lines and 'PARAMETER stop "<|endoftext|>"' in lines
    assert not any(line.startswith("TEMPLATE") for line in lines)  # the GGUF's own template is used
    assert "ollama create myproj-v1 -f Modelfile" in text


def test_cli_export_follows_the_job_and_prints_the_ollama_commands(settings, capsys) -> None:
    from graphtune.server.cli import main

    gguf = fake_export(settings, "m3")  # an export on disk: the job reuses it (no conversion here)
    code = main(["--home", str(settings.home), "export", "m3"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.splitlines() == [f"ollama create m3 -f {gguf.parent / 'Modelfile'}", "ollama run m3"]
    assert f"reused {gguf}" in captured.err and "<|im_end|>" in captured.err
