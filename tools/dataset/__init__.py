"""Datasets: records from a graph, quality scores, dedup, augmentation, splits, JSONL output."""

__all__: list[str] = []
