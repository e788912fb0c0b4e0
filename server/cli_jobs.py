"""CLI subcommands that start jobs or list artifacts (filled in as capabilities land)."""

from __future__ import annotations

import argparse


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    return None
