"""The design card's folders install under one import root, from the wheel and in editable mode."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_editable_install_maps_folders_under_graphtune() -> None:
    import graphtune.server
    import graphtune.tools

    assert Path(graphtune.server.__file__).parent == ROOT / "server"
    assert Path(graphtune.tools.__file__).parent == ROOT / "tools"


@pytest.mark.slow
def test_built_wheel_has_no_generic_top_level_packages_and_runs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(dist), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next(dist.glob("graphtune-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top_level == {"graphtune"}
    assert "graphtune/server/app.py" in names and "graphtune/tools/graph/python_parser.py" in names
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = subprocess.run([sys.executable, "-c", "import graphtune.server.app as a; print(a.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert probe.returncode == 0 and probe.stdout.strip().startswith(str(site)), probe.stderr
    version = subprocess.run([sys.executable, "-m", "graphtune.server", "--version"], capture_output=True,
                             text=True, env=env, cwd=tmp_path, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("graphtune ")
