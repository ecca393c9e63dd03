"""SECURITY.md says what the code does: the ports it lists are the defaults of the settings,
of Ray and of the deployment files, and the README links it."""

from __future__ import annotations

import re
from pathlib import Path

from consumer.settings import ConsumerSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
SECURITY = REPO_ROOT / "SECURITY.md"
RAY_CLIENT_SERVER_PORT = 10001
"""`ray start --head`'s default --ray-client-server-port (ray/scripts/scripts.py; no constant)."""


def _ports_table() -> dict[str, tuple[str, str]]:
    """component -> (port, bound to), from the table under "## Ports"."""
    section = SECURITY.read_text(encoding="utf-8").split("## Ports", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    return {
        cells[0]: (cells[1], cells[2])
        for cells in ([c.strip() for c in row.strip("|").split("|")] for row in rows)
    }


def _component(prefix: str) -> tuple[str, str]:
    (match,) = [value for name, value in _ports_table().items() if name.startswith(prefix)]
    return match


def test_ray_ports_are_rays_defaults() -> None:
    from ray._private import ray_constants as constants

    assert _component("Ray GCS")[0] == str(constants.DEFAULT_PORT)
    assert _component("Ray dashboard (head)")[0] == str(constants.DEFAULT_DASHBOARD_PORT)
    agent = _component("Ray dashboard agent")[0]
    assert agent == str(constants.DEFAULT_DASHBOARD_AGENT_LISTEN_PORT)
    assert _component("Ray client server")[0] == str(RAY_CLIENT_SERVER_PORT)


def test_status_server_row_matches_the_settings_defaults() -> None:
    port, bound = _component("`molstream consume` status server")
    fields = ConsumerSettings.model_fields
    assert fields["metrics_port"].default is None and "default: none" in port
    assert f"default {fields['metrics_host'].default}" in bound
    exposed = (REPO_ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    (deployed,) = re.findall(r"deployments use (\d+)", port)
    assert re.search(rf"^EXPOSE {deployed}$", exposed, re.MULTILINE)


def test_security_md_names_what_the_issue_asks_and_readme_links_it() -> None:
    text = SECURITY.read_text(encoding="utf-8")
    for heading in ("## Trusted and untrusted", "## Where pickle crosses", "## Ports"):
        assert heading in text
    assert "## Reporting a problem" in text
    for trusted in ("Model plugins", "Members of the Ray cluster", "Schema Registry's admin"):
        assert trusted in text
    for name in ("pack()", "unpack()", "consumer/state/work_messages.py", "RAY_AUTH_MODE=token"):
        assert name in text
    assert "](SECURITY.md)" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")
