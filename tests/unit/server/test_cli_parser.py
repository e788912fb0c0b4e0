"""`graphtune serve` builds only its own parser (start-up speed); every other command line the whole one."""

from __future__ import annotations

import pytest
from graphtune.server.cli import build_parser, cmd_serve


def _commands(parser) -> set[str]:
    return set(next(a for a in parser._actions if a.dest == "command").choices)


def test_serve_builds_only_the_serve_command_and_keeps_the_global_flags():
    parser = build_parser(["--home", "/tmp/h", "--max-concurrent-jobs", "2", "serve", "--transport", "http"])
    assert _commands(parser) == {"serve"}
    args = parser.parse_args(["--home", "/tmp/h", "--max-concurrent-jobs", "2", "serve", "--transport", "http"])
    assert (args.func, args.home, args.max_concurrent_jobs, args.transport) == (cmd_serve, "/tmp/h", 2, "http")


@pytest.mark.parametrize("argv", [["--home", "serve", "jobs"], ["train", "--help"], [], ["--json", "models"]])
def test_any_other_command_line_gets_every_command(argv):
    """A global flag's value that reads "serve" is not the command."""
    commands = _commands(build_parser(argv))
    assert {"serve", "train", "jobs", "export", "demo"} <= commands
