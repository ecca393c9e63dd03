"""A real Prometheus for tests: scrapes given targets every second, evaluates given rule files.

Started from the ``prometheus`` binary (Debian package ``prometheus``, installed by the test
set-up) on a free 127.0.0.1 port, with its config and TSDB in a temporary directory; stopped by
the pid it was started with.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from consumer.dev.localserver import HOST, LocalServer, free_port

BINARY = "prometheus"
JOB = "molstream-consumer"
"""The scrape job's name: the one of deploy/prometheus/prometheus.yml, which the alerts select."""
PROMTOOL = "promtool"


def tool(name: str) -> str:
    """Path of a Prometheus tool; fails the test (never skips) when it is not installed."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        pytest.fail(
            f"{name!r} not found on PATH or in /usr/bin: the integration tests need a real "
            "Prometheus (Debian package 'prometheus', installed by `make test`'s set-up)",
            pytrace=False,
        )
    return path


class PrometheusError(RuntimeError):
    """Prometheus answered an API call with an error (a bad query, for instance)."""


class PrometheusServer(LocalServer):
    """``prometheus`` scraping ``targets`` (host:port) each second as job :data:`JOB`,
    evaluating ``rule_files``."""

    name = "prometheus"

    def __init__(
        self,
        workdir: Path,
        targets: Iterable[str],
        rule_files: Iterable[Path] = (),
        *,
        start_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(
            log_file=workdir / "prometheus.log", start_timeout_s=start_timeout_s, stop_timeout_s=10
        )
        self.workdir = workdir
        self.targets = list(targets)
        self.rule_files = list(rule_files)
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        rules = []
        for i, source in enumerate(self.rule_files):
            copy = self.workdir / f"rules-{i}-{source.name}"
            shutil.copyfile(source, copy)
            rules.append(str(copy))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": rules,
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "scrape_interval": "1s",
                    "scrape_timeout": "1s",
                    "static_configs": [{"targets": self.targets}],
                }
            ],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(json.dumps(config, indent=2), encoding="utf-8")  # JSON is YAML
        return path

    def command(self) -> list[str]:
        return [
            tool(BINARY),
            f"--config.file={self._write_config()}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address={HOST}:{self.port}",
        ]

    def ready(self) -> bool:
        """``/-/ready`` answers 200."""
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>``; returns ``data`` or raises :class:`PrometheusError`."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 400/422/503 carry a JSON error body
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Evaluate ``expr`` now (instant query): the samples of its vector or scalar."""
        data = self.api("query", query=expr)
        result = data["result"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": result}]
        assert isinstance(result, list)
        return result
