"""staged_folder's refusal of an existing output: its hint must name something the tool offers. A merge
queued behind a training job of the same output_name (both pass preflight: no folder yet) failed at
publish with 'pass overwrite=true', which neither merge_adapter nor start_fine_tuning takes."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphtune.tools.dataset.atomic import staged_folder
from graphtune.tools.errors import DatasetExists


def _refusal(final: Path, what: str, field: str) -> DatasetExists:
    final.mkdir(parents=True)
    with pytest.raises(DatasetExists) as caught:
        with staged_folder(final, overwrite=False, what=what, field=field) as tmp:
            (tmp / "x").write_text("x")
    assert [p.name for p in final.parent.iterdir()] == [final.name]  # the temp folder is gone
    return caught.value


def test_an_existing_model_is_refused_without_an_overwrite_hint(tmp_path: Path) -> None:
    error = _refusal(tmp_path / "models" / "m1", "model", "output_name")
    assert "overwrite" not in error.hint and "delete_model" in error.hint and "`output_name`" in error.hint


def test_an_existing_dataset_still_offers_overwrite(tmp_path: Path) -> None:
    assert "overwrite=true" in _refusal(tmp_path / "datasets" / "d1", "dataset", "dataset_name").hint
