from __future__ import annotations

from pathlib import Path

import pytest
from graphtune.server.settings import Settings, load_settings
from graphtune.tools.errors import GraphtuneError, all_error_classes


def test_flag_overrides_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRAPHTUNE_HOME", str(tmp_path / "from-env"))
    monkeypatch.setenv("GRAPHTUNE_MAX_CONCURRENT_JOBS", "7")
    settings = load_settings(home=tmp_path / "from-flag", max_concurrent_jobs=None)
    assert settings.home == (tmp_path / "from-flag").resolve()
    assert settings.max_concurrent_jobs == 7  # flag not given: env wins over default


def test_neo4j_user_alias_and_standard_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEO4J_URI", "neo4j://db:7687")
    monkeypatch.setenv("NEO4J_USER", "alice")
    monkeypatch.setenv("NEO4J_PASSWORD", "s3cret")
    monkeypatch.setenv("NEO4J_DATABASE", "code")
    settings = Settings()
    assert (settings.neo4j_uri, settings.neo4j_username, settings.neo4j_database) == ("neo4j://db:7687", "alice", "code")
    assert "s3cret" not in repr(settings)  # secrets never print


def test_invalid_setting_names_the_field() -> None:
    with pytest.raises(ValueError, match="max_concurrent_jobs"):
        Settings(max_concurrent_jobs=0)


def test_error_codes_are_unique_and_snake_case() -> None:
    codes = [cls.code for cls in all_error_classes()]
    assert len(codes) == len(set(codes))
    assert all(code == code.lower() and " " not in code for code in codes)


def test_error_text_carries_code_and_hint() -> None:
    err = GraphtuneError("bad thing", field="x", hint="do this")
    assert str(err) == "[graphtune_error] bad thing (field `x`) Hint: do this"
    assert err.to_dict() == {"code": "graphtune_error", "message": "bad thing", "field": "x", "hint": "do this"}
