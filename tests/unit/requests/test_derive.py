"""Issue 20 item 1: a setting is declared once, in the engine's config, and the request derives it."""

from __future__ import annotations

import pytest
from graphtune.tools.declare import setting
from graphtune.tools.requests.base import JobRequest
from graphtune.tools.requests.derive import cli_only_settings, settings_request
from pydantic import BaseModel


class _Engine(BaseModel):
    name: str = setting(description="Name of the thing to build.")
    rank: int = setting(16, request_default=None, ge=4, le=64, description="Rank; default 16, preset 64.")
    seed: int = setting(42, offer="cli", description="Seed for the order; default 42.")
    packing: bool = setting(True, offer="engine", description="Pack examples together.")


def test_a_new_engine_setting_reaches_the_request_with_its_bounds_and_surface() -> None:
    request = settings_request("Toy", _Engine, JobRequest, __name__)
    assert list(request.model_fields) == ["name", "rank", "seed"]  # engine-only settings stay out
    assert cli_only_settings(_Engine) == {"seed"}
    assert request.model_fields["rank"].default is None and request(name="x", rank=None).rank is None
    assert request.model_fields["rank"].description == _Engine.model_fields["rank"].description
    with pytest.raises(Exception):
        request(name="x", rank=100)
    with pytest.raises(Exception):
        request(name="x", packing=False)


def test_the_training_request_is_the_config_less_its_engine_settings() -> None:
    from graphtune.tools.requests import TrainRequest
    from graphtune.tools.training.config import LoraJobConfig

    engine = {"weight_decay", "logging_steps", "packing"}
    assert list(TrainRequest.model_fields) == [n for n in LoraJobConfig.model_fields if n not in engine]
    assert TrainRequest.cli_only == cli_only_settings(LoraJobConfig)


@pytest.mark.parametrize(("values", "field"), [({"weight_decay": 2.0}, "weight_decay"), ({"gpus": 100}, "gpus"),
                                               ({"preset": "auto"}, "preset"), ({"target_modules": []}, "target_modules"),
                                               ({"bogus": 1}, "bogus"), ({"output_name": "Bad Name"}, "output_name")])
def test_a_bad_config_is_a_coded_error_naming_the_field(values, field) -> None:
    from graphtune.tools.errors import TrainingConfigError
    from graphtune.tools.training.config import LoraJobConfig

    with pytest.raises(TrainingConfigError) as err:
        LoraJobConfig.from_dict({"dataset_name": "d", "base_model": "m", **values})
    assert err.value.field == field


def test_config_updates_are_checked_and_round_trip_through_the_job_row() -> None:
    from graphtune.tools.errors import TrainingConfigError
    from graphtune.tools.training.config import LoraJobConfig

    config = LoraJobConfig.from_dict({"dataset_name": "d", "base_model": "m", "target_modules": "q_proj, v_proj"})
    assert config.target_modules == ["q_proj", "v_proj"]
    assert LoraJobConfig.from_job(config.updated(gpus=2).job_params()).gpus == 2
    with pytest.raises(TrainingConfigError):
        config.updated(gpus=0)


def test_retrain_takes_num_epochs_and_its_old_name() -> None:
    from graphtune.server.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["retrain", "pkg", "--num-epochs", "2"]).num_epochs == "2"
    assert parser.parse_args(["retrain", "pkg", "--epochs", "2"]).num_epochs == "2"  # scripts from before
    assert "--epochs" not in parser._subparsers._group_actions[0].choices["retrain"].format_help()
