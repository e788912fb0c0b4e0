"""`python -m graphtune.server` is the same as the `graphtune` console script."""

from graphtune.server.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
