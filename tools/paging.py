"""Offset pagination shared by the list tools."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def page(items: list[T], limit: int, offset: int) -> tuple[list[T], int, int | None]:
    """(the page, total, next offset or None on the last page)."""
    chunk = items[offset:offset + limit]
    more = offset + len(chunk) < len(items)
    return chunk, len(items), offset + len(chunk) if more else None
