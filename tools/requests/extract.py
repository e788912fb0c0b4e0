"""`ExtractRequest`: the extract job (`extract_training_data`, `graphtune extract-data`) on the MCP/CLI surface.

Its settings are declared once, in the engine config graphtune.tools.dataset.config; this adds
what only the surface needs: the job kind, what agents and the CLI see, the refusal of settings
that would have no effect, and the preflight."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from graphtune.tools.dataset.config import KNOWLEDGE_PHRASINGS, ExtractConfig, NodeType
from graphtune.tools.graph.records import NODE_TYPES
from graphtune.tools.requests.base import JobRequest
from graphtune.tools.requests.no_effect import NoEffect, refuse_without_effect
from pydantic import model_validator

if TYPE_CHECKING:
    from graphtune.tools.services import ToolServices

__all__ = ["KNOWLEDGE_PHRASINGS", "ExtractRequest", "NodeType"]

MIN_FREE_GIB = 0.2


class ExtractRequest(JobRequest, ExtractConfig):
    """Build an instruction dataset from the code graph (stored in the job row as it is)."""

    kind: ClassVar[str] = "extract"
    internal: ClassVar[frozenset[str]] = frozenset({"near_duplicate_threshold", "system_prompt", "mapping", "delta_repeats"})
    positional: ClassVar[tuple[str, ...]] = ("dataset_name",)
    cli_only: ClassVar[frozenset[str]] = frozenset({"seed", "output_format"})

    @model_validator(mode="before")
    @classmethod
    def _nothing_ignored(cls, data: Any) -> Any:
        """A setting the chosen objective does not read is refused, not ignored (see no_effect)."""
        if isinstance(data, dict):
            refuse_without_effect(cls, data, _without_effect(data))
        return data

    def preflight(self, services: "ToolServices") -> dict[str, Any]:
        """Code bases and `since` exist, the name is free, the disk has room."""
        from graphtune.tools.dataset.atomic import ensure_free_space, refuse_existing
        from graphtune.tools.graph.sources import check_embedded_codebases

        settings = services.settings
        source = self.source or settings.graph_backend
        if source == "neo4j":
            from graphtune.tools.graph.neo4j_store import check_neo4j_configured

            check_neo4j_configured(settings, "source", asked=self.source is not None)
        if self.codebases and source == "embedded":
            check_embedded_codebases(settings, self.codebases)
        if self.since is not None:
            from graphtune.tools.dataset.since import delta_bases

            delta_bases(settings, source, self.codebases, self.since)  # names a recorded graph version
        refuse_existing(settings.datasets_dir / self.dataset_name, overwrite=self.overwrite, what="dataset",
                        field="dataset_name")
        ensure_free_space(settings.datasets_dir, MIN_FREE_GIB, "dataset_name")
        return self.model_dump(mode="json", exclude_none=True)


def _without_effect(data: dict[str, Any]) -> list[NoEffect]:
    """The fields the chosen objective (and delta or not) never reads."""
    if data.get("objective") == "knowledge":
        skills_only = "objective='knowledge' teaches every function, method and class of the code bases"
        every_type = set(data.get("node_types") or NODE_TYPES) == set(NODE_TYPES)  # all = the default (stored jobs)
        rules = [] if every_type else [
            NoEffect("node_types", f"{skills_only}; node types choose records only for objective='skills'",
                     "Omit `node_types` (narrow a knowledge dataset with `codebases` or `max_records`), or use "
                     "objective='skills'.")]
        rules += [NoEffect("quality_threshold", f"{skills_only}; the docstring-quality score filters only "
                          "objective='skills' records", "Omit `quality_threshold`, or use objective='skills'."),
                 NoEffect("eval_fraction", "objective='knowledge' holds out closed-book probes (probes.jsonl) "
                          "instead of a share of records", "Omit `eval_fraction`; the probes are the held-out set.")]
        if data.get("since") is None:
            rules += [NoEffect(name, "only a delta dataset (`since`) replays unchanged facts",
                               f"Pass `since` (a dataset or graph version) to build a delta, or omit `{name}`.")
                      for name in ("replay_fraction", "delta_repeats")]
        return rules
    knowledge_only = "it applies to objective='knowledge' only"
    return [NoEffect("include_private", f"{knowledge_only} (skills records come from documented code)",
                     "Omit `include_private`, or use objective='knowledge'."),
            *[NoEffect(name, f"{knowledge_only}, with `since` (a delta dataset)",
                       f"Omit `{name}`, or use objective='knowledge' with `since`.")
              for name in ("replay_fraction", "delta_repeats")]]
