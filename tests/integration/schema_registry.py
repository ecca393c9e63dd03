"""A small Confluent-compatible Schema Registry for tests: in memory, on 127.0.0.1.

No registry server installs from the package registries here, so the tests run this one. It
serves the REST calls that confluent-kafka's ``SchemaRegistryClient``, ``AvroSerializer`` and
``AvroDeserializer`` (and molstream) make, with the answers and error codes of Confluent
Schema Registry's API: schemas get global ids and GUIDs, an identical schema keeps its id,
and a new version must pass the subject's compatibility level (checked with Apache avro's
``ReaderWriterCompatibilityChecker``). Tests talk to it only through those real clients.

It can be stopped and started again on the same port with its schemas kept, to play a
registry outage.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from consumer.dev.localserver import HOST, free_port

Answer = tuple[int, Any]


@dataclass
class _Stored:
    id: int
    guid: str
    text: str


@dataclass
class _State:
    """What the registry holds; shared by every request thread, guarded by ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    schemas: list[_Stored] = field(default_factory=list)
    subjects: dict[str, list[int]] = field(default_factory=dict)  # subject -> ids by version
    config: dict[str, str] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)  # "GET /schemas/ids" -> count


def _error(status: HTTPStatus, code: int, message: str) -> Answer:
    return status, {"error_code": code, "message": message}


def _same(a: str, b: str) -> bool:
    return bool(json.loads(a) == json.loads(b))


def _backward_compatible(new: str, old: str) -> bool:
    """Whether ``new`` (as the reader) reads what ``old`` (the writer) wrote."""
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(avro.schema.parse(new), avro.schema.parse(old))
    return result.compatibility is SchemaCompatibilityType.compatible


class _Api:
    """The endpoints, as pure functions of the state."""

    def __init__(self, state: _State) -> None:
        self.s = state

    def _by_id(self, schema_id: int) -> _Stored | None:
        return next((x for x in self.s.schemas if x.id == schema_id), None)

    def _version(self, subject: str, version: int, stored: _Stored) -> dict[str, Any]:
        return {
            "subject": subject,
            "version": version,
            "id": stored.id,
            "guid": stored.guid,
            "schema": stored.text,
        }

    def register(self, subject: str, body: dict[str, Any]) -> Answer:
        text = body.get("schema")
        if body.get("schemaType", "AVRO") != "AVRO" or not isinstance(text, str):
            return _error(HTTPStatus.UNPROCESSABLE_ENTITY, 42201, "only Avro schemas here")
        try:
            avro.schema.parse(text)
        except Exception as exc:
            return _error(HTTPStatus.UNPROCESSABLE_ENTITY, 42201, f"Invalid schema: {exc}")
        versions = self.s.subjects.setdefault(subject, [])
        for version, schema_id in enumerate(versions, 1):
            stored = self._by_id(schema_id)
            if stored is not None and _same(stored.text, text):
                return HTTPStatus.OK, self._version(subject, version, stored)
        level = self.s.config.get(subject, self.s.config.get("", "BACKWARD"))
        if versions and level.startswith("BACKWARD"):
            latest = self._by_id(versions[-1])
            assert latest is not None
            if not _backward_compatible(text, latest.text):
                return _error(
                    HTTPStatus.CONFLICT,
                    409,
                    f"Schema being registered is incompatible with an earlier schema for "
                    f"subject {subject!r} ({level})",
                )
        stored = next((x for x in self.s.schemas if _same(x.text, text)), None)
        if stored is None:
            stored = _Stored(len(self.s.schemas) + 1, str(uuid.uuid4()), text)
            self.s.schemas.append(stored)
        versions.append(stored.id)
        return HTTPStatus.OK, self._version(subject, len(versions), stored)

    def lookup(self, subject: str, body: dict[str, Any]) -> Answer:
        versions = self.s.subjects.get(subject)
        if not versions:
            return _error(HTTPStatus.NOT_FOUND, 40401, f"Subject '{subject}' not found.")
        for version, schema_id in enumerate(versions, 1):
            stored = self._by_id(schema_id)
            if stored is not None and _same(stored.text, str(body.get("schema"))):
                return HTTPStatus.OK, self._version(subject, version, stored)
        return _error(HTTPStatus.NOT_FOUND, 40403, "Schema not found")

    def schema_by_id(self, schema_id: int) -> Answer:
        stored = self._by_id(schema_id)
        if stored is None:
            return _error(HTTPStatus.NOT_FOUND, 40403, f"Schema {schema_id} not found")
        return HTTPStatus.OK, {"schema": stored.text, "guid": stored.guid}

    def schema_by_guid(self, guid: str) -> Answer:
        stored = next((x for x in self.s.schemas if x.guid == guid), None)
        if stored is None:
            return _error(HTTPStatus.NOT_FOUND, 40403, f"Schema {guid} not found")
        return HTTPStatus.OK, {"schema": stored.text, "id": stored.id, "guid": stored.guid}

    def version(self, subject: str, version: str) -> Answer:
        versions = self.s.subjects.get(subject)
        if not versions:
            return _error(HTTPStatus.NOT_FOUND, 40401, f"Subject '{subject}' not found.")
        number = len(versions) if version == "latest" else int(version)
        if not 1 <= number <= len(versions):
            return _error(HTTPStatus.NOT_FOUND, 40402, f"Version {version} not found.")
        stored = self._by_id(versions[number - 1])
        assert stored is not None
        return HTTPStatus.OK, self._version(subject, number, stored)

    def get_config(self, subject: str) -> Answer:
        level = self.s.config.get(subject)
        if level is None:
            return _error(
                HTTPStatus.NOT_FOUND,
                40408,
                f"Subject '{subject}' does not have subject-level compatibility configured",
            )
        return HTTPStatus.OK, {"compatibilityLevel": level}

    def put_config(self, subject: str, body: dict[str, Any]) -> Answer:
        level = str(body.get("compatibility", "")).upper()
        if level not in {"NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FULL"}:
            return _error(HTTPStatus.UNPROCESSABLE_ENTITY, 42203, f"Invalid compatibility {level}")
        self.s.config[subject] = level
        return HTTPStatus.OK, {"compatibility": level}

    def subjects(self) -> Answer:
        return HTTPStatus.OK, sorted(self.s.subjects)


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/subjects/(?P<subject>[^/]+)/versions"), "register"),
    ("POST", re.compile(r"/subjects/(?P<subject>[^/]+)"), "lookup"),
    ("GET", re.compile(r"/schemas/ids/(?P<schema_id>\d+)"), "schema_by_id"),
    ("GET", re.compile(r"/schemas/guids/(?P<guid>[0-9a-f-]+)"), "schema_by_guid"),
    (
        "GET",
        re.compile(r"/subjects/(?P<subject>[^/]+)/versions/(?P<version>latest|\d+)"),
        "version",
    ),
    ("GET", re.compile(r"/config/(?P<subject>[^/]+)"), "get_config"),
    ("PUT", re.compile(r"/config/(?P<subject>[^/]+)"), "put_config"),
    ("GET", re.compile(r"/subjects"), "subjects"),
]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows failures, not every request."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        status, answer = self._answer(method, path, body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, method: str, path: str, body: dict[str, Any]) -> Answer:
        expected = self.server.authorization
        if expected is not None and self.headers.get("Authorization") != expected:
            return _error(HTTPStatus.UNAUTHORIZED, 401, "Unauthorized")
        state = self.server.state
        for route_method, pattern, name in _ROUTES:
            match = pattern.fullmatch(path)
            if route_method != method or match is None:
                continue
            args: dict[str, Any] = {
                k: int(v) if k == "schema_id" else urllib.parse.unquote(v)
                for k, v in match.groupdict().items()
            }
            if method != "GET":
                args["body"] = body
            with state.lock:
                state.requests[f"{method} {pattern.pattern.split('/(?P')[0]}"] += 1
                result: Answer = getattr(_Api(state), name)(**args)
                return result
        return _error(HTTPStatus.NOT_FOUND, 404, f"no endpoint {method} {path}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, state: _State, authorization: str | None) -> None:
        super().__init__((HOST, port), _Handler)
        self.state = state
        self.authorization = authorization


class SchemaRegistryServer:
    """The registry on ``127.0.0.1:port`` (a free one unless given): ``start``, ``stop``
    (safe twice, schemas kept), ``with``. ``credentials`` turns on basic auth."""

    def __init__(self, port: int | None = None, credentials: tuple[str, str] | None = None) -> None:
        self.port = port or free_port()
        self._state = _State()
        self._authorization = (
            "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
            if credentials
            else None
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def requests(self) -> Counter[str]:
        """Requests served so far, by method and endpoint (e.g. ``GET /schemas/ids``)."""
        with self._state.lock:
            return Counter(self._state.requests)

    def start(self) -> None:
        if self._server is None:
            self._server = _Server(self.port, self._state, self._authorization)
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="schema-registry", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            assert self._thread is not None
            self._thread.join(10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
