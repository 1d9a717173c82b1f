"""A TEST DOUBLE of the Azure AI Search REST subset this project uses. Not a product.

No Azure AI Search emulator exists on any package registry, so the tests run the real
azure-search-documents SDK over HTTP on loopback against this one. It follows the wire contract
below (api-version 2026-04-01 as the 12.0 SDK speaks it), checked against the SDK's requests
and Microsoft's REST reference:

- indexes: PUT/GET/DELETE ``/indexes('name')`` (and ``/indexes/name``), GET ``/indexes``;
  an existing field cannot change (400); deleting an index an alias maps to is refused (400);
- aliases: PUT/GET/DELETE ``/aliases('name')``, GET ``/aliases``; documents calls accept an alias;
- documents: POST ``docs/search.index`` with upload / merge / mergeOrUpload / delete, 200 or 207
  with per-document status, at most 1000 actions and 16 MB per request, an invalid key fails the
  whole request (400), a wrong vector length fails it too; GET ``docs/$count``, ``docs('key')``;
- search: POST ``docs/search.post.search`` with vector queries (exact cosine k-NN; score
  1 / (1 + (1 - cos))), an OData ``filter`` (pre-filter), ``select``, ``top``, ``count``;
- auth: the ``api-key`` header (401 otherwise);
- fault injection (seeded): whole-request 503s and per-document 503 / 409 / 422 inside a 207.

What it does not do: text search, scoring profiles, semantic ranking, facets, paging beyond one
page, HNSW approximation (search is exact), quantization (accepted in the definition, ignored).
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse

MAX_ACTIONS = 1000
MAX_REQUEST_BYTES = 16 * 1024 * 1024
KEY_PATTERN = re.compile(r"^[A-Za-z0-9=\-][A-Za-z0-9_=\-]{0,1023}$")
RESOURCE = re.compile(
    r"^/(?P<kind>indexes|aliases)(?:\('(?P<quoted>[^']*)'\)|/(?P<plain>[^/()]+))?(?P<rest>/.*)?$"
)
DOC_KEY = re.compile(r"^/docs\('(?P<key>.*)'\)$")


@dataclass
class Faults:
    """Seeded failure rates (0..1)."""

    request_503: float = 0.0
    document_503: float = 0.0
    document_409: float = 0.0
    document_422: float = 0.0
    seed: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


class ODataError(ValueError):
    """A filter the service would reject with 400."""


@dataclass
class SearchEmulator:
    """State of one emulated search service; ``start()`` serves it on 127.0.0.1."""

    api_key: str = "emulator-admin-key"
    faults: Faults = field(default_factory=Faults)
    indexes: dict[str, dict] = field(default_factory=dict)
    documents: dict[str, dict[str, dict]] = field(default_factory=dict)
    aliases: dict[str, dict] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _etag: int = 0

    def start(self) -> str:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload, headers = emulator.handle(
                    self.command, self.path, dict(self.headers), body
                )
                data = (
                    b""
                    if payload is None
                    else (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
                )
                self.send_response(status)
                content_type = "text/plain" if isinstance(payload, bytes) else "application/json"
                self.send_header("Content-Type", content_type)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()

    # -- dispatch -----------------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        path = unquote(urlparse(raw_path).path)
        with self.lock:
            self.requests.append((method, path))
            lowered = {k.lower(): v for k, v in headers.items()}
            if lowered.get("api-key") != self.api_key:
                return _error(401, "", "Authorization failed.")
            if len(body) > MAX_REQUEST_BYTES:
                return _error(413, "RequestEntityTooLarge", "The request is too large.")
            match = RESOURCE.match(path)
            if not match:
                return _error(404, "", f"No resource at {path}")
            name = match["quoted"] or match["plain"]
            rest = match["rest"] or ""
            try:
                payload = json.loads(body) if body else None
            except json.JSONDecodeError:
                return _error(400, "InvalidRequest", "The request body is not JSON.")
            if match["kind"] == "aliases":
                return self._alias(method, name, payload, lowered)
            if not rest:
                return self._index(method, name, payload, lowered)
            target = self._resolve(name)
            if target is None:
                return _error(404, "", f"The index '{name}' for service 'emulator' was not found.")
            return self._documents(method, target, rest, payload)

    def _resolve(self, name: str) -> str | None:
        if name in self.indexes:
            return name
        alias = self.aliases.get(name)
        return alias["indexes"][0] if alias else None

    def _next_etag(self) -> str:
        self._etag += 1
        return f'"0x{self._etag:08X}"'

    # -- indexes and aliases --------------------------------------------------------------------

    def _index(self, method: str, name: str | None, payload: Any, headers: dict[str, str]):
        if name is None:
            if method == "GET":
                return 200, {"value": list(self.indexes.values())}, {}
            return _error(405, "", "Method not allowed.")
        existing = self.indexes.get(name)
        if method == "GET":
            if existing is None:
                return _error(404, "", f"The index '{name}' for service 'emulator' was not found.")
            return 200, existing, {}
        if method == "DELETE":
            if existing is None:
                return _error(404, "", f"The index '{name}' for service 'emulator' was not found.")
            users = [a["name"] for a in self.aliases.values() if name in a["indexes"]]
            if users:
                return _error(
                    400,
                    "CannotDeleteIndex",
                    f"The index '{name}' is referenced by aliases {users}.",
                )
            del self.indexes[name]
            del self.documents[name]
            return 204, None, {}
        if method == "PUT":
            if headers.get("if-none-match") == "*" and existing is not None:
                return _error(412, "", "The index already exists.")
            problem = _check_index_definition(name, payload, existing)
            if problem:
                return _error(400, "InvalidRequestParameter", problem, "InvalidField")
            definition = {**payload, "@odata.etag": self._next_etag()}
            self.indexes[name] = definition
            self.documents.setdefault(name, {})
            return (200 if existing else 201), definition, {}
        return _error(405, "", "Method not allowed.")

    def _alias(self, method: str, name: str | None, payload: Any, headers: dict[str, str]):
        if name is None:
            if method == "GET":
                return 200, {"value": list(self.aliases.values())}, {}
            return _error(405, "", "Method not allowed.")
        existing = self.aliases.get(name)
        if method == "GET":
            return (
                (200, existing, {}) if existing else _error(404, "", f"Alias '{name}' not found.")
            )
        if method == "DELETE":
            if existing is None:
                return _error(404, "", f"Alias '{name}' not found.")
            del self.aliases[name]
            return 204, None, {}
        if method == "PUT":
            targets = (payload or {}).get("indexes") or []
            if len(targets) != 1 or targets[0] not in self.indexes:
                return _error(
                    400, "InvalidRequestParameter", "An alias maps to exactly one existing index."
                )
            if name in self.indexes:
                return _error(400, "InvalidRequestParameter", "An index already has that name.")
            alias = {"name": name, "indexes": targets, "@odata.etag": self._next_etag()}
            self.aliases[name] = alias
            return (200 if existing else 201), alias, {}
        return _error(405, "", "Method not allowed.")

    # -- documents --------------------------------------------------------------------------------

    def _documents(self, method: str, index: str, rest: str, payload: Any):
        store = self.documents[index]
        definition = self.indexes[index]
        if rest == "/docs/search.index" and method == "POST":
            return self._index_documents(definition, store, payload)
        if rest == "/docs/search.post.search" and method == "POST":
            return self._search(definition, store, payload or {})
        if rest == "/docs/$count" and method == "GET":
            return 200, str(len(store)).encode(), {}
        key_match = DOC_KEY.match(rest)
        if key_match and method == "GET":
            document = store.get(key_match["key"])
            if document is None:
                return _error(404, "", "Document not found.")
            return 200, _visible(definition, document), {}
        return _error(404, "", f"No resource at {rest}")

    def _index_documents(self, definition: dict, store: dict[str, dict], payload: Any):
        actions = (payload or {}).get("value") or []
        if len(actions) > MAX_ACTIONS:
            return _error(
                400,
                "InvalidRequest",
                f"The request is invalid. Details: too many actions ({len(actions)}).",
            )
        if self.faults.rng.random() < self.faults.request_503:
            return _error(503, "", "Service unavailable (injected).")
        key_field = next(f["name"] for f in definition["fields"] if f.get("key"))
        vectors = {f["name"]: f["dimensions"] for f in definition["fields"] if f.get("dimensions")}
        for position, action in enumerate(actions):
            key = action.get(key_field)
            if not isinstance(key, str) or not KEY_PATTERN.match(key):
                return _error(
                    400,
                    "InvalidDocumentKey",
                    f"The request is invalid. Details: actions : {position}: "
                    f"Invalid document key: '{key}'.",
                )
            for name, dimensions in vectors.items():
                vector = action.get(name)
                if vector is not None and len(vector) != dimensions:
                    return _error(
                        400,
                        "InvalidRequestParameter",
                        f"There's a mismatch in vector dimensions. The vector field "
                        f"'{name}', with dimension of '{dimensions}', expects a length "
                        f"of '{dimensions}'. However, the provided vector has a length "
                        f"of '{len(vector)}'.",
                    )
        results = [self._apply(action, key_field, store) for action in actions]
        failed = any(not r["status"] for r in results)
        return (207 if failed else 200), {"value": results}, {}

    def _apply(self, action: dict, key_field: str, store: dict[str, dict]) -> dict:
        key = action[key_field]
        kind = action.get("@search.action", "upload")
        fields = {k: v for k, v in action.items() if k != "@search.action"}
        rng = self.faults.rng
        for code, rate in (
            (503, self.faults.document_503),
            (409, self.faults.document_409),
            (422, self.faults.document_422),
        ):
            if rng.random() < rate:
                return _result(key, False, code, f"Injected per-document {code}.")
        exists = key in store
        if kind == "upload":
            store[key] = fields
            return _result(key, True, 200 if exists else 201)
        if kind == "merge":
            if not exists:
                return _result(key, False, 404, "Document not found.")
            store[key] = {**store[key], **fields}
            return _result(key, True, 200)
        if kind == "mergeOrUpload":
            store[key] = {**store.get(key, {}), **fields}
            return _result(key, True, 200 if exists else 201)
        if kind == "delete":
            store.pop(key, None)
            return _result(key, True, 200)
        return _result(key, False, 400, f"Unknown action {kind}.")

    def _search(self, definition: dict, store: dict[str, dict], body: dict):
        try:
            predicate = parse_filter(body["filter"]) if body.get("filter") else None
        except ODataError as error:
            return _error(400, "InvalidRequestParameter", f"Invalid expression: {error}")
        candidates = [d for d in store.values() if predicate is None or predicate(d)]
        queries = body.get("vectorQueries") or []
        fields = {f["name"]: f for f in definition["fields"]}
        scored: list[tuple[float, dict]] = [(1.0, d) for d in candidates]
        limit = body.get("top") or 50
        for query in queries:  # this project sends one vector query
            name = query["fields"]
            dimensions = fields.get(name, {}).get("dimensions")
            vector = query.get("vector") or []
            if dimensions is None or len(vector) != dimensions:
                return _error(
                    400,
                    "InvalidVectorQuery",
                    f"The vector query's dimensions ({len(vector)}) do not match the "
                    f"field '{name}' ({dimensions}).",
                )
            scored = sorted(
                (
                    (1.0 / (1.0 + (1.0 - _cosine(vector, d[name]))), d)
                    for d in candidates
                    if d.get(name) is not None
                ),
                key=lambda pair: -pair[0],
            )[: query.get("k", 50)]
            limit = min(limit, query.get("k", 50)) if body.get("top") else query.get("k", 50)
        selected = [s.strip() for s in body["select"].split(",")] if body.get("select") else None
        hits = []
        for score, document in scored[:limit]:
            visible = _visible(definition, document)
            if selected:
                visible = {k: v for k, v in visible.items() if k in selected}
            hits.append({"@search.score": score, **visible})
        response: dict[str, Any] = {"value": hits}
        if body.get("count"):
            response["@odata.count"] = len(candidates)
        return 200, response, {}


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _visible(definition: dict, document: dict) -> dict:
    hidden = {
        f["name"]
        for f in definition["fields"]
        if f.get("stored") is False or f.get("retrievable") is False
    }
    return {k: v for k, v in document.items() if k not in hidden}


def _result(key: str, ok: bool, code: int, message: str | None = None) -> dict:
    return {"key": key, "status": ok, "errorMessage": message, "statusCode": code}


def _error(status: int, code: str, message: str, detail: str | None = None):
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if detail:
        body["error"]["details"] = [{"code": detail, "message": message}]
    return status, body, {}


def _check_index_definition(name: str, definition: Any, existing: dict | None) -> str | None:
    if not isinstance(definition, dict) or definition.get("name") != name:
        return "The index name in the body must match the URL."
    fields = definition.get("fields") or []
    keys = [f for f in fields if f.get("key")]
    if len(keys) != 1 or keys[0].get("type") != "Edm.String":
        return "An index needs exactly one key field of type Edm.String."
    vector_search = definition.get("vectorSearch") or {}
    algorithms = {a["name"] for a in vector_search.get("algorithms") or []}
    compressions = {c["name"] for c in vector_search.get("compressions") or []}
    profiles = {p["name"]: p for p in vector_search.get("profiles") or []}
    for profile in profiles.values():
        if profile.get("algorithm") not in algorithms:
            return f"Profile '{profile['name']}' names an unknown algorithm."
        if profile.get("compression") and profile["compression"] not in compressions:
            return f"Profile '{profile['name']}' names an unknown compression."
    for item in fields:
        if item.get("dimensions") is not None:
            if not 2 <= item["dimensions"] <= 4096:
                return f"Field '{item['name']}': dimensions must be within 2-4096."
            if item.get("vectorSearchProfile") not in profiles:
                return f"Field '{item['name']}' names an unknown vector search profile."
    if existing:
        before = {f["name"]: f for f in existing["fields"]}
        for item in fields:
            old = before.get(item["name"])
            if old and (old.get("type"), old.get("dimensions"), old.get("key")) != (
                item.get("type"),
                item.get("dimensions"),
                item.get("key"),
            ):
                return f"Existing field '{item['name']}' cannot be changed."
    return None


# -- OData $filter: the subset the project (and a careful user) writes ------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)|(?P<punct>[(),:]))"
)
_COMPARISONS = {"eq", "ne", "gt", "lt", "ge", "le"}


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise ODataError(f"unexpected text at {position}: {text[position : position + 20]!r}")
        position = match.end()
        if match["string"] is not None:
            tokens.append(("value", match["string"][1:-1].replace("''", "'")))
        elif match["number"] is not None:
            tokens.append(("value", float(match["number"])))
        elif match["name"] is not None:
            word = match["name"]
            constants = {"null": None, "true": True, "false": False}
            if word in constants:
                tokens.append(("value", constants[word]))
            else:
                tokens.append(("name", word))
        else:
            tokens.append(("punct", match["punct"]))
    return tokens


def parse_filter(text: str):
    """Compile an OData filter to a predicate over documents (dicts)."""
    parser = _Parser(_tokens(text))
    predicate = parser.or_expression()
    if parser.position != len(parser.tokens):
        raise ODataError(f"unexpected token {parser.tokens[parser.position][1]!r}")
    return lambda document: bool(predicate(document, {}))


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens = tokens
        self.position = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, kind: str | None = None, value: Any = None) -> tuple[str, Any]:
        token = self.peek()
        if (
            token is None
            or (kind and token[0] != kind)
            or (value is not None and token[1] != value)
        ):
            raise ODataError(f"expected {value or kind}, found {token}")
        self.position += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token == ("name", word):
            self.position += 1
            return True
        return False

    def or_expression(self):
        left = self.and_expression()
        while self.keyword("or"):
            right = self.and_expression()
            left = (lambda a, b: lambda d, env: a(d, env) or b(d, env))(left, right)
        return left

    def and_expression(self):
        left = self.not_expression()
        while self.keyword("and"):
            right = self.not_expression()
            left = (lambda a, b: lambda d, env: a(d, env) and b(d, env))(left, right)
        return left

    def not_expression(self):
        if self.keyword("not"):
            inner = self.not_expression()
            return lambda d, env: not inner(d, env)
        return self.primary()

    def primary(self):
        token = self.peek()
        if token == ("punct", "("):
            self.take()
            inner = self.or_expression()
            self.take("punct", ")")
            return inner
        if token == ("name", "search.in"):
            return self.search_in()
        left = self.operand()
        operator = self.peek()
        if operator and operator[0] == "name" and operator[1] in _COMPARISONS:
            self.take()
            right = self.operand()
            return lambda d, env: _compare(operator[1], left(d, env), right(d, env))
        return lambda d, env: left(d, env) is True

    def operand(self):
        kind, value = self.take()
        if kind == "value":
            return lambda d, env: value
        if kind != "name":
            raise ODataError(f"unexpected {value!r}")
        if value.endswith(("/any", "/all")) and self.peek() == ("punct", "("):
            return self.lambda_expression(value)
        return lambda d, env: _lookup(d, env, value)

    def lambda_expression(self, path: str):
        collection, quantifier = path.rsplit("/", 1)
        self.take("punct", "(")
        if self.peek() == ("punct", ")"):
            self.take()
            return lambda d, env: bool(_lookup(d, env, collection))
        variable = self.take("name")[1]
        self.take("punct", ":")
        body = self.or_expression()
        self.take("punct", ")")
        test = any if quantifier == "any" else all

        def evaluate(d, env):
            items = _lookup(d, env, collection) or []
            return test(body(d, {**env, variable: item}) for item in items)

        return evaluate

    def search_in(self):
        self.take("name", "search.in")
        self.take("punct", "(")
        subject = self.operand()
        self.take("punct", ",")
        _, values = self.take("value")
        delimiters = " ,"
        if self.peek() == ("punct", ","):
            self.take()
            delimiters = self.take("value")[1]
        self.take("punct", ")")
        options = {v for v in re.split("[" + re.escape(delimiters) + "]", values) if v}
        return lambda d, env: subject(d, env) in options


def _lookup(document: dict, env: dict, path: str) -> Any:
    head, *rest = path.split("/")
    value = env[head] if head in env else document.get(head)
    for part in rest:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _compare(operator: str, left: Any, right: Any) -> bool:
    if operator == "eq":
        return left == right
    if operator == "ne":
        return left != right
    if left is None or right is None:
        return False
    try:
        return {"gt": left > right, "lt": left < right, "ge": left >= right, "le": left <= right}[
            operator
        ]
    except TypeError as error:
        raise ODataError(f"cannot compare {left!r} and {right!r}") from error
