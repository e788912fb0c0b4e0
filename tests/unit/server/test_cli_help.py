"""`graphtune --help` and each command's help say each thing once, in whole sentences."""

from __future__ import annotations

import re

from graphtune.server.cli import build_parser


def _help(*argv: str) -> str:
    parser = build_parser(list(argv))
    for name in argv:
        parser = next(a for a in parser._actions if getattr(a, "choices", None) and name in a.choices).choices[name]
    return re.sub(r"\s+", " ", parser.format_help())


def test_a_default_the_description_states_is_not_appended_again() -> None:
    text = _help("jobs")
    assert "default 20. Range 1..100." in text and "Default: 20" not in text
    assert "Default: 0.8" not in _help("extract-data")


def test_the_top_level_description_is_a_whole_sentence() -> None:
    text = _help()
    assert "the same function the MCP tool of the same name calls" in text


def test_datasets_can_page_and_read_the_eval_split() -> None:
    """The preview prints next_offset; its flags come from preview_dataset, so --offset exists to use it."""
    args = build_parser(["datasets"]).parse_args(["datasets", "d", "--offset", "3", "--split", "eval"])
    assert (args.name, args.offset, args.split) == ("d", "3", "eval")
    assert "Records to show, 1-20" in _help("datasets")
