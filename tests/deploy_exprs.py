"""The PromQL of the deployment: every query of the Grafana dashboard and every alert rule.

Pure functions over the files, shared by the static test of the deployment and by tests that
evaluate each expression against a real Prometheus. Dashboard queries use Grafana's variables;
:func:`dashboard_expressions` puts in what Grafana would for "All" jobs and instances.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "molstream.json"
ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

TEMPLATE_VALUES = {"job": ".*", "instance": ".*", "__rate_interval": "1m"}
"""What Grafana puts in place of the dashboard's variables: "All" (``allValue`` ``.*``) for job
and instance; ``$__rate_interval`` is at least four scrape intervals, a minute here."""
_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def substitute(query: str) -> str:
    """A dashboard query as plain PromQL; a variable not in :data:`TEMPLATE_VALUES` raises."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in TEMPLATE_VALUES:
            raise ValueError(f"unknown dashboard variable ${name} in {query}")
        return TEMPLATE_VALUES[name]

    return _VARIABLE.sub(value, query)


def load_dashboard(path: str | Path = DASHBOARD) -> dict[str, Any]:
    """The dashboard JSON as a dict."""
    dashboard = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(dashboard, dict):
        raise ValueError(f"{path}: a dashboard is a JSON object")
    return dashboard


def dashboard_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, in order, including the panels nested in (collapsed) rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from dashboard_panels(panel)


def dashboard_queries(path: str | Path = DASHBOARD) -> list[str]:
    """The ``expr`` of every query target of every panel, in order, variables and all.

    A target without an expression yields ``""`` so that callers see it rather than skip it.
    """
    return [
        str(target.get("expr", "")).strip()
        for panel in dashboard_panels(load_dashboard(path))
        for target in panel.get("targets", [])
    ]


def dashboard_expressions(path: str | Path = DASHBOARD) -> list[str]:
    """:func:`dashboard_queries` as plain PromQL (:func:`substitute`), as Prometheus runs them."""
    return [substitute(query) for query in dashboard_queries(path)]


def load_rules(path: str | Path = ALERTS) -> list[dict[str, Any]]:
    """Every rule (alerting and recording) of a Prometheus rule file, in order."""
    document = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_LOADER)
    if not isinstance(document, dict):
        raise ValueError(f"{path}: a rule file is a YAML mapping")
    return [rule for group in document.get("groups", []) for rule in group.get("rules", [])]


def alert_expressions(path: str | Path = ALERTS) -> list[str]:
    """The ``expr`` of every rule of a Prometheus rule file, in order."""
    return [str(rule.get("expr", "")).strip() for rule in load_rules(path)]
