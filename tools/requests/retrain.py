"""`RetrainRequest`: the parameters of `retrain` (the MCP tool and `graphtune retrain` / `watch`).

Retrain queues a chain of jobs, not one job, so it is a ToolRequest without a kind. Its policy and
its continued-training recipe are declared where the chain reads them
(graphtune.tools.training.retrain: RetrainPolicy, ContinuedTraining, whose replay share is the
delta's own DeltaSettings); this module only names them as the tool does (`max_old_drop` is
the policy's `max_old_drop_points`) and splits a request back into them.
"""

from __future__ import annotations

from typing import ClassVar

from graphtune.tools.requests.base import ToolRequest, param
from graphtune.tools.requests.derive import settings_fields
from graphtune.tools.training.retrain import ContinuedTraining, RetrainPolicy
from pydantic import create_model

__all__ = ["RetrainRequest"]

_POLICY_NAMES = {"max_old_drop": "max_old_drop_points", "max_general_drop": "max_general_drop_points"}
_FIELDS = {
    "codebase": (str, param(description="Code base whose changes to learn (it is re-ingested first).")),
    "base": (str, param("current", description="Model or alias to continue from; default current.")),
    **settings_fields(RetrainPolicy, _POLICY_NAMES),
    # left out, the measured default applies (the reply's continued_training shows it)
    **settings_fields(ContinuedTraining, request_defaults={"replay_fraction": None}),
}


class RetrainRequest(create_model("RetrainFields", __base__=ToolRequest, __module__=__name__, **_FIELDS)):  # type: ignore[misc,call-overload]
    """Retrain on code changes; promote if better (a chain of jobs)."""

    positional: ClassVar[tuple[str, ...]] = ("codebase",)

    def policy(self, alias: str) -> RetrainPolicy:
        """The promote step's policy; `alias` is the one it may move."""
        values = self.model_dump()
        return RetrainPolicy(alias=alias, **{_POLICY_NAMES.get(n, n): values[n]
                                             for n in settings_fields(RetrainPolicy, _POLICY_NAMES)})

    def continued(self) -> ContinuedTraining:
        """The delta step's recipe: what the request gave, the measured defaults for the rest."""
        given = self.model_dump(exclude_none=True)
        return ContinuedTraining(**{n: given[n] for n in settings_fields(ContinuedTraining) if n in given})
