"""Resource claims of queued and running jobs: who may start now, and why the others wait.

Jobs declare what they write and read (`graph:<backend>`, `dataset:<name>`, `model:<name>`); the
job store walks the queue oldest first with one ResourceClaims per claim transaction."""

from __future__ import annotations

from typing import Any

RESOURCE_FIELDS = {"dataset": "dataset_name", "model": "output_name"}


def describe_resource(resource: str) -> str:
    """'graph:embedded' -> 'the embedded graph'; 'dataset:x' -> 'dataset `x`'."""
    kind, _, name = resource.partition(":")
    return f"the {name} graph" if kind == "graph" else f"{kind} `{name}`"


class ResourceClaims:
    """Who holds (running) and who reserved (queued earlier) each resource, while one claim
    transaction walks the queue oldest first. A resource has one writer or any number of
    readers. A queued job also waits behind an earlier queued job that needs the same
    resource in a conflicting way, so a stream of readers never starves a writer (FIFO)."""

    def __init__(self) -> None:
        self.writer: dict[str, dict[str, Any]] = {}
        self.readers: dict[str, list[dict[str, Any]]] = {}
        self.reserved_write: dict[str, dict[str, Any]] = {}
        self.reserved_read: dict[str, dict[str, Any]] = {}

    def hold(self, job: dict[str, Any]) -> None:
        for res in job["writes"]:
            self.writer[res] = job
        for res in job["reads"]:
            self.readers.setdefault(res, []).append(job)

    def reserve(self, job: dict[str, Any]) -> None:
        for res in job["writes"]:
            self.reserved_write.setdefault(res, job)
        for res in job["reads"]:
            self.reserved_read.setdefault(res, job)

    def blocker(self, job: dict[str, Any]) -> tuple[str | None, str | None]:
        """(job id, reason) of what keeps `job` from starting now; (None, None) when nothing does."""
        for res in job["writes"]:
            if res in self.writer:
                holder = self.writer[res]
                return holder["id"], (f"waiting for {holder['id']} ({holder['kind']}), which is writing "
                                      f"{describe_resource(res)}")
            if self.readers.get(res):
                first, more = self.readers[res][0], len(self.readers[res]) - 1
                also = f" and {more} more" if more else ""
                return first["id"], (f"waiting for {first['id']} ({first['kind']}){also}, which "
                                     f"{'are' if more else 'is'} reading {describe_resource(res)}")
        for res in job["reads"]:
            if res in self.writer:
                holder = self.writer[res]
                return holder["id"], (f"waiting for the writer of {describe_resource(res)}: {holder['id']} "
                                      f"({holder['kind']}); reading now would see it half-written")
        for res in job["writes"]:
            earlier = self.reserved_write.get(res) or self.reserved_read.get(res)
            if earlier:
                return earlier["id"], (f"queued behind {earlier['id']} ({earlier['kind']}, queued earlier), "
                                       f"which also needs {describe_resource(res)}")
        for res in job["reads"]:
            if res in self.reserved_write:
                earlier = self.reserved_write[res]
                return earlier["id"], (f"queued behind {earlier['id']} ({earlier['kind']}, queued earlier), "
                                       f"which will write {describe_resource(res)}")
        return None, None
