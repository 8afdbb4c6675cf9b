"""A fake Kubernetes API server on loopback: only the endpoints our runners use, for the real client to talk to.

No API server can run on these machines, so the Kubernetes paths (BR pods, TiDB Operator resources, scratch
TidbClusters) are tested against this: a threaded HTTP server on 127.0.0.1 that the real ``kubernetes`` client, the
provider's ``KubernetesHook`` and ``AsyncKubernetesHook`` reach through an ordinary kubeconfig (``kubeconfig()``,
``connection_extra()``). It serves

- core/v1 ``pods`` (create/get/list/replace/patch/delete, ``pods/{name}/log``, ``pods/{name}/status``),
  ``secrets``, ``services``, ``configmaps`` and an always-empty ``events`` list; namespaces are implied;
- custom resources of any ``/apis/{group}/{version}/namespaces/{ns}/{plural}`` (create/get/list/replace/patch/
  delete, ``status`` when the CRD has that subresource).

Like an API server it stamps ``uid``, ``resourceVersion``, ``creationTimestamp``, ``generation``; answers 404/409/
422 with ``kind: Status`` bodies (reasons NotFound, AlreadyExists, Conflict, Invalid); resolves ``generateName``;
turns a Secret's ``stringData`` into ``data``; filters lists by ``labelSelector`` (equality terms); answers a log
read of a pod whose container has not started with 400 ("is waiting to start"). What clients POST is checked
against the schemas: pods and other core objects by the client's own OpenAPI models (required fields, enums), custom
resources against the CRD's ``openAPIV3Schema`` when the test registered the CRD (``add_crd``).

Nothing runs a controller: a test scripts what happens to each created object (``script``): a list of ``Step``s,
each replacing the object's ``status`` (and appending to a pod's log); the next step comes after the object was read
``gets`` times, or ``seconds`` passed, whichever the step names. Helpers build the usual scripts: a pod that
succeeds, fails, is evicted or cannot pull its image; a custom resource that goes through its conditions; a
TidbCluster that becomes Ready (and its Services appear). Every request is recorded (``requests``) for assertions.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Obj = dict[str, Any]
StatusSpec = Obj | Callable[[Obj], Obj] | None

CORE_KINDS = {"pods": "Pod", "secrets": "Secret", "services": "Service", "configmaps": "ConfigMap"}
_CORE_MODELS = {"pods": "V1Pod", "secrets": "V1Secret", "services": "V1Service", "configmaps": "V1ConfigMap"}


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Step:
    """One state of a scripted object.

    :param status: the object's whole ``status`` in this state (a dict, or a function of the object), or None to
        leave it as it is.
    :param log: text appended to a pod's log when this state begins.
    :param gets: reads of the object (GET, or a list holding it) after which the next step begins.
    :param seconds: or: seconds after which the next step begins (whichever comes first when both are set).
    :param create: objects created when this state begins (what a controller would make: a TidbCluster's Services).
    """

    status: StatusSpec = None
    log: str = ""
    gets: int | None = 1
    seconds: float | None = None
    create: Sequence[Obj] | Callable[[Obj], Sequence[Obj]] = ()


@dataclass
class _Script:
    match: Callable[[str, str], bool]  # (namespace, name) -> applies
    steps: list[Step]
    times: int | None  # how many more objects it scripts; None: every one


@dataclass
class _Stored:
    obj: Obj
    steps: list[Step] = field(default_factory=list)
    step: int = -1
    reads: int = 0
    since: float = 0.0
    log: str = ""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    content_type: str


class FakeKube:
    """The fake API server. ``start()`` / ``stop()`` (or use it as a context manager)."""

    def __init__(self, *, validate: bool = True) -> None:
        self.validate = validate
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str, str, str], _Stored] = {}  # (apiprefix, plural, ns, name)
        self._scripts: dict[tuple[str, str], list[_Script]] = {}  # (apiprefix, plural)
        self._crds: dict[tuple[str, str], dict[str, Any]] = {}  # (group/version, plural) -> {kind, schema, status}
        self._rv = itertools.count(1000)
        self.requests: list[Request] = []
        self.deleted: list[tuple[str, str, str]] = []  # (plural, ns, name) in order
        self.script_errors: list[str] = []  # scripted states the schema refuses (the fixture fails the test)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> FakeKube:
        fake = self

        class Handler(_Handler):
            kube = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-kube", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def kubeconfig(self, *, namespace: str = "default") -> Obj:
        """A kubeconfig naming this server (plain HTTP on loopback, a dummy bearer token)."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
            "current-context": "fake",
        }

    def connection_extra(self, *, namespace: str = "default") -> Obj:
        """The extra of an Airflow ``kubernetes`` connection to this server (``kube_config`` as JSON)."""
        return {"kube_config": json.dumps(self.kubeconfig(namespace=namespace)), "namespace": namespace}

    def connection_uri_json(self, *, namespace: str = "default") -> str:
        """The connection as ``AIRFLOW_CONN_<ID>`` JSON."""
        return json.dumps({"conn_type": "kubernetes", "extra": self.connection_extra(namespace=namespace)})

    # ---- test-side API -------------------------------------------------------------------------------------------
    def add_crd(self, crd: Obj, *, schema: Obj | None = None) -> None:
        """Serve a CRD's resources as the real server would: its kind, and (``schema``) validation of what is written.

        :param crd: the CustomResourceDefinition document.
        :param schema: the JSON schema of its storage version (tests.helpers.k8s_schemas.json_schema), or None to
            accept any body.
        """
        spec = crd["spec"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            self._crds[(f"{spec['group']}/{version['name']}", spec["names"]["plural"])] = {
                "kind": spec["names"]["kind"],
                "schema": schema if version.get("storage") else None,
                "status_subresource": "status" in (version.get("subresources") or {}),
                "validator": _validator(schema) if schema is not None and version.get("storage") else None,
            }

    def script(
        self,
        plural: str,
        steps: Sequence[Step],
        *,
        name: str | Callable[[str], bool] | None = None,
        namespace: str | None = None,
        api: str = "v1",
        times: int | None = None,
    ) -> None:
        """What happens to objects of ``plural`` created from now on (the earliest matching script wins).

        :param plural: ``pods``, ``backups``, ``tidbclusters``...
        :param steps: the states it goes through; the first is applied on creation.
        :param name: the object's name, a predicate on it, or None for any.
        :param namespace: only in this namespace, or None for any.
        :param api: ``v1`` for core objects, else ``group/version`` (``pingcap.com/v1alpha1``).
        :param times: script only the next ``times`` such objects (a retried create can then behave differently).
        """

        def match(ns: str, obj_name: str) -> bool:
            if namespace is not None and ns != namespace:
                return False
            if name is None:
                return True
            return name(obj_name) if callable(name) else obj_name == name

        self._scripts.setdefault((api, plural), []).append(_Script(match, list(steps), times))

    def put(self, obj: Obj, *, plural: str | None = None, steps: Sequence[Step] = ()) -> Obj:
        """Store an object as if created earlier (a leftover from an earlier try); returns it as stored."""
        api = obj["apiVersion"]
        plural = plural or _plural_of(obj["kind"])
        ns = obj["metadata"].get("namespace", "default")
        with self._lock:
            stored = self._insert(api, plural, ns, copy.deepcopy(obj))
            if steps:
                stored.steps = list(steps)
                self._enter(api, plural, ns, stored, 0)
            return copy.deepcopy(stored.obj)

    def get(self, plural: str, namespace: str, name: str, *, api: str = "v1") -> Obj | None:
        """The stored object (not counted as a read), or None."""
        with self._lock:
            stored = self._objects.get((api, plural, namespace, name))
            return copy.deepcopy(stored.obj) if stored else None

    def names(self, plural: str, namespace: str | None = None, *, api: str = "v1") -> list[str]:
        with self._lock:
            return sorted(n for (a, p, ns, n) in self._objects if a == api and p == plural and namespace in (None, ns))

    def set_status(self, plural: str, namespace: str, name: str, status: Obj, *, api: str = "v1") -> None:
        """Move an object by hand (what a controller would do)."""
        with self._lock:
            stored = self._objects[(api, plural, namespace, name)]
            stored.obj["status"] = copy.deepcopy(status)
            stored.obj["metadata"]["resourceVersion"] = str(next(self._rv))

    def calls(self, method: str | None = None, path_contains: str = "") -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method) and path_contains in r.path]

    # ---- internals ----------------------------------------------------------------------------------------------
    def _insert(self, api: str, plural: str, ns: str, obj: Obj) -> _Stored:
        meta = obj.setdefault("metadata", {})
        meta["namespace"] = ns
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339())
        meta["resourceVersion"] = str(next(self._rv))
        meta.setdefault("generation", 1)
        stored = _Stored(obj=obj, since=time.monotonic())
        self._objects[(api, plural, ns, meta["name"])] = stored
        return stored

    def _enter(self, api: str, plural: str, ns: str, stored: _Stored, index: int) -> None:
        step = stored.steps[index]
        stored.step, stored.reads, stored.since = index, 0, time.monotonic()
        if step.status is not None:
            status = step.status(stored.obj) if callable(step.status) else step.status
            stored.obj["status"] = copy.deepcopy(status)
            stored.obj["metadata"]["resourceVersion"] = str(next(self._rv))
            problem = self._schema_problem(api, plural, stored.obj) if self.validate else None
            if problem:  # a script may only put the object in a state the schema allows
                name = stored.obj["metadata"]["name"]
                self.script_errors.append(f"{plural} {ns}/{name} step {index}: {problem}")
        stored.log += step.log
        children = step.create(stored.obj) if callable(step.create) else step.create
        for child in children:
            child = copy.deepcopy(child)
            child_ns = child["metadata"].setdefault("namespace", ns)
            child_plural = _plural_of(child["kind"])
            if (child["apiVersion"], child_plural, child_ns, child["metadata"]["name"]) not in self._objects:
                self._insert(child["apiVersion"], child_plural, child_ns, child)

    def _advance(self, api: str, plural: str, ns: str, stored: _Stored, *, read: bool) -> None:
        """Count a read and move the object on along its script while its step's condition holds."""
        if not stored.steps:
            return
        if read:
            stored.reads += 1
        while stored.step + 1 < len(stored.steps):
            step = stored.steps[stored.step]
            by_reads = step.gets is not None and stored.reads >= step.gets
            by_time = step.seconds is not None and time.monotonic() - stored.since >= step.seconds
            if not (by_reads or by_time):
                return
            self._enter(api, plural, ns, stored, stored.step + 1)

    def _scripted(self, api: str, plural: str, ns: str, name: str) -> list[Step]:
        for s in self._scripts.get((api, plural), []):
            if (s.times is None or s.times > 0) and s.match(ns, name):
                if s.times is not None:
                    s.times -= 1
                return s.steps
        return []

    def _kind(self, api: str, plural: str) -> str | None:
        if api == "v1":
            return CORE_KINDS.get(plural)
        crd = self._crds.get((api, plural))
        return crd["kind"] if crd else None

    # ---- the API, called by the handler under the lock --------------------------------------------------------
    def handle(
        self,
        method: str,
        api: str,
        ns: str | None,
        plural: str,
        name: str | None,
        sub: str | None,
        query: dict[str, list[str]],
        body: Any,
        content_type: str,
    ) -> tuple[int, Any, str]:
        with self._lock:
            if api == "v1" and plural == "events" and method == "GET" and name is None:
                return (
                    200,
                    {"apiVersion": "v1", "kind": "EventList", "metadata": {"resourceVersion": "1"}, "items": []},
                    "application/json",
                )
            if api == "v1" and plural not in CORE_KINDS:
                return _status(404, "NotFound", f"the server could not find the requested resource ({plural})")
            if api != "v1" and self._crds and (api, plural) not in self._crds:
                return _status(404, "NotFound", f"the server could not find the requested resource ({plural})")
            if name is None:
                if method == "GET":
                    return 200, self._list(api, plural, ns, query), "application/json"
                if method == "POST" and ns is not None:
                    return self._create(api, plural, ns, body)
                return _status(405, "MethodNotAllowed", f"{method} on a {plural} collection")
            assert ns is not None
            key = (api, plural, ns, name)
            stored = self._objects.get(key)
            if stored is None:
                return _not_found(api, plural, name)
            if sub == "log":
                return self._log(plural, stored, query)
            if sub is not None and sub != "status":
                return _status(404, "NotFound", f"the server could not find the requested resource ({sub})")
            crd = self._crds.get((api, plural))
            if sub == "status" and api != "v1" and crd is not None and not crd["status_subresource"]:
                return _status(404, "NotFound", "the server could not find the requested resource")
            if method == "GET":
                self._advance(api, plural, ns, stored, read=True)
                if self.script_errors:
                    return _status(500, "InternalError", "fake_kube: " + "; ".join(self.script_errors))
                return 200, copy.deepcopy(stored.obj), "application/json"
            if method == "DELETE":
                del self._objects[key]
                self.deleted.append((plural, ns, name))
                gone = copy.deepcopy(stored.obj)
                gone["metadata"]["deletionTimestamp"] = now_rfc3339()
                return 200, gone, "application/json"
            if method in ("PUT", "PATCH"):
                return self._write(api, plural, stored, method, sub, body, content_type)
            return _status(405, "MethodNotAllowed", method)

    def _list(self, api: str, plural: str, ns: str | None, query: dict[str, list[str]]) -> Obj:
        wanted = _label_selector(query.get("labelSelector", [""])[0])
        items = []
        for (a, p, n, _), stored in sorted(self._objects.items()):
            if a != api or p != plural or (ns is not None and n != ns):
                continue
            labels = stored.obj["metadata"].get("labels") or {}
            if all(labels.get(k) == v for k, v in wanted.items()):
                self._advance(a, p, n, stored, read=True)
                items.append(copy.deepcopy(stored.obj))
        kind = self._kind(api, plural) or "Object"
        return {
            "apiVersion": api,
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": str(next(self._rv))},
            "items": items,
        }

    def _create(self, api: str, plural: str, ns: str, body: Any) -> tuple[int, Any, str]:
        if not isinstance(body, dict):
            return _status(400, "BadRequest", "the body of the request was not a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        kind = self._kind(api, plural)
        if obj.get("apiVersion") != api or (kind is not None and obj.get("kind") != kind):
            return _status(
                400,
                "BadRequest",
                f"the API version/kind in the body ({obj.get('apiVersion')}/{obj.get('kind')}) does not "
                f"match {api}/{kind or plural}",
            )
        if meta.get("namespace") not in (None, ns):
            return _status(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        if not meta.get("name"):
            if not meta.get("generateName"):
                return _invalid(
                    api, plural, kind, "", "metadata.name: Required value: name or generateName is required"
                )
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta["name"]
        if not _DNS_SUBDOMAIN.fullmatch(name) or len(name) > (63 if plural in ("pods", "services") else 253):
            return _invalid(
                api,
                plural,
                kind,
                name,
                f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 "
                "name must consist of lower case alphanumeric characters, "
                "'-' or '.'",
            )
        if plural == "secrets":
            try:
                for v in (obj.get("data") or {}).values():
                    base64.b64decode(v, validate=True)
            except ValueError:
                return _invalid(api, plural, kind, name, "data: Invalid value: illegal base64 data")
            for k, v in (obj.pop("stringData", None) or {}).items():
                obj.setdefault("data", {})[k] = base64.b64encode(v.encode()).decode()
        if self.validate:
            problem = self._schema_problem(api, plural, obj)
            if problem:
                return _invalid(api, plural, kind, name, problem)
        if (api, plural, ns, name) in self._objects:
            return _status(
                409,
                "AlreadyExists",
                f'{_resource(api, plural)} "{name}" already exists',
                details={"name": name, **_details(api, plural)},
            )
        if plural == "pods":
            obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})
        stored = self._insert(api, plural, ns, obj)
        stored.steps = self._scripted(api, plural, ns, name)
        if stored.steps:
            self._enter(api, plural, ns, stored, 0)
        return 201, copy.deepcopy(stored.obj), "application/json"

    def _write(
        self, api: str, plural: str, stored: _Stored, method: str, sub: str | None, body: Any, content_type: str
    ) -> tuple[int, Any, str]:
        current = stored.obj
        name = current["metadata"]["name"]
        if method == "PUT":
            if not isinstance(body, dict):
                return _status(400, "BadRequest", "the body of the request was not a JSON object")
            sent_rv = (body.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                return _status(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {_resource(api, plural)} "{name}": '
                    "the object has been modified; please apply your changes to the "
                    "latest version and try again",
                    details={"name": name, **_details(api, plural)},
                )
            new = copy.deepcopy(body)
        elif "json-patch" in content_type:
            try:
                new = _json_patch(current, body)
            except (KeyError, IndexError, ValueError) as e:
                return _status(422, "Invalid", f"the JSON patch could not be applied: {e}")
        elif "merge-patch" in content_type or "strategic-merge-patch" in content_type:
            new = _merge_patch(current, body)
        else:
            return _status(
                415, "UnsupportedMediaType", f"the body of the request was in an unknown format ({content_type})"
            )
        crd = self._crds.get((api, plural))
        has_status = api == "v1" or bool(crd and crd["status_subresource"])
        if sub == "status":
            kept = copy.deepcopy(current)
            kept["status"] = new.get("status")
            new = kept
        elif has_status and "status" in current:
            new["status"] = copy.deepcopy(current["status"])
        new["metadata"] = {
            **current["metadata"],
            **{
                k: v
                for k, v in (new.get("metadata") or {}).items()
                if k in ("labels", "annotations", "finalizers", "ownerReferences")
            },
        }
        if self.validate:
            problem = self._schema_problem(api, plural, new)
            if problem:
                return _invalid(api, plural, self._kind(api, plural), name, problem)
        if new.get("spec") != current.get("spec"):
            new["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        new["metadata"]["resourceVersion"] = str(next(self._rv))
        stored.obj = new
        return 200, copy.deepcopy(new), "application/json"

    def _log(self, plural: str, stored: _Stored, query: dict[str, list[str]]) -> tuple[int, Any, str]:
        if plural != "pods":
            return _status(404, "NotFound", "the server could not find the requested resource")
        pod = stored.obj
        name = pod["metadata"]["name"]
        containers = [c["name"] for c in pod.get("spec", {}).get("containers", [])]
        container = query.get("container", [containers[0] if len(containers) == 1 else ""])[0]
        if container not in containers:
            return _status(
                400,
                "BadRequest",
                f"a container name must be specified for pod {name}, choose one of: {containers}"
                if not container
                else f"container {container} is not valid for pod {name}",
            )
        statuses = {c["name"]: c for c in (pod.get("status") or {}).get("containerStatuses") or []}
        state = statuses.get(container, {}).get("state") or {"waiting": {"reason": "ContainerCreating"}}
        if "waiting" in state and not stored.log:
            reason = state["waiting"].get("reason", "ContainerCreating")
            return _status(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        lines = stored.log.splitlines(keepends=True)
        tail = query.get("tailLines")
        if tail:
            lines = lines[-int(tail[0]) :] if int(tail[0]) else []
        if query.get("timestamps", ["false"])[0] in _TRUE:
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
            lines = [f"{stamp} {line}" for line in lines]
        return 200, "".join(lines), "text/plain"

    def _schema_problem(self, api: str, plural: str, obj: Obj) -> str | None:
        if api == "v1":
            return _core_problem(plural, obj)
        crd = self._crds.get((api, plural))
        if crd is None or crd["validator"] is None:
            return None
        errors = sorted(crd["validator"].iter_errors(obj), key=lambda e: list(e.absolute_path))
        if not errors:
            return None
        return "; ".join(f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in errors[:5])


# ---- the HTTP side ---------------------------------------------------------------------------------------------------
_CORE = re.compile(
    r"^/api/v1(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[a-z]+))?)?$"
)
_GROUP = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[a-z]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[a-z]+))?)?$"
)
_NAMESPACE = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)$")
_TRUE = ("1", "t", "T", "true", "True", "TRUE")  # what the API server's strconv.ParseBool takes
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class _Handler(BaseHTTPRequestHandler):
    kube: FakeKube
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test's requests are in kube.requests

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = self.headers.get("Content-Type", "")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._reply(*_status(400, "BadRequest", "the body of the request was not JSON"))
            return
        self.kube.requests.append(Request(self.command, parts.path, query, body, content_type))
        if parts.path == "/version":
            self._reply(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-fake"}, "application/json")
            return
        if (m := _NAMESPACE.match(parts.path)) and self.command == "GET":
            self._reply(
                200,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": m["ns"]}, "status": {"phase": "Active"}},
                "application/json",
            )
            return
        m = _CORE.match(parts.path)
        api = "v1"
        if m is None and (m := _GROUP.match(parts.path)):
            api = f"{m['group']}/{m['version']}"
        if m is None:
            self._reply(*_status(404, "NotFound", "the server could not find the requested resource"))
            return
        if m["ns"] is None and (m["name"] is not None or self.command != "GET"):
            self._reply(*_status(404, "NotFound", "the server could not find the requested resource"))
            return
        self._reply(
            *self.kube.handle(self.command, api, m["ns"], m["plural"], m["name"], m["sub"], query, body, content_type)
        )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _reply(self, code: int, body: Any, content_type: str) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# ---- API server shapes -----------------------------------------------------------------------------------------------
def _details(api: str, plural: str) -> Obj:
    return {"kind": plural} if api == "v1" else {"group": api.split("/")[0], "kind": plural}


def _resource(api: str, plural: str) -> str:
    return plural if api == "v1" else f"{plural}.{api.split('/')[0]}"


def _status(code: int, reason: str, message: str, *, details: Obj | None = None) -> tuple[int, Obj, str]:
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return code, body, "application/json"


def _not_found(api: str, plural: str, name: str) -> tuple[int, Obj, str]:
    return _status(
        404, "NotFound", f'{_resource(api, plural)} "{name}" not found', details={"name": name, **_details(api, plural)}
    )


def _invalid(api: str, plural: str, kind: str | None, name: str, message: str) -> tuple[int, Obj, str]:
    kind = kind or plural
    details = {
        "name": name,
        "group": "" if api == "v1" else api.split("/")[0],
        "kind": kind,
        "causes": [{"reason": "FieldValueInvalid", "message": message}],
    }
    return _status(422, "Invalid", f'{kind} "{name}" is invalid: {message}', details=details)


def _plural_of(kind: str) -> str:
    for plural, k in CORE_KINDS.items():
        if k == kind:
            return plural
    return kind.lower() + "s"


def _label_selector(text: str) -> dict[str, str]:
    terms = {}
    for term in filter(None, (t.strip() for t in text.split(","))):
        key, _, value = term.replace("==", "=").partition("=")
        terms[key.strip()] = value.strip()
    return terms


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 (a strategic merge patch is treated as one: our writers patch status and labels only)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge_patch(out.get(k), v)
    return out


def _json_patch(target: Obj, ops: Any) -> Obj:
    """RFC 6902 add/replace/remove/test."""
    doc = copy.deepcopy(target)
    if not isinstance(ops, list):
        raise ValueError("a JSON patch is a list of operations")
    for op in ops:
        path = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: Any = doc
        for p in path[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = path[-1]
        kind = op["op"]
        if kind == "test":
            value = parent[int(last)] if isinstance(parent, list) else parent[last]
            if value != op["value"]:
                raise ValueError(f"test failed at {op['path']}")
        elif kind == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif kind in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif kind == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                if kind == "replace" and last not in parent:
                    raise KeyError(op["path"])
                parent[last] = op["value"]
        else:
            raise ValueError(f"unsupported op {kind}")
    return doc


def _validator(schema: Obj) -> Any:
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _core_problem(plural: str, obj: Obj) -> str | None:
    """What the client's own OpenAPI models (generated from Kubernetes' schema) refuse in a core object."""
    from kubernetes import client

    class _Response:
        data = json.dumps(obj)

    try:
        model = client.ApiClient().deserialize(_Response(), _CORE_MODELS[plural])
    except (ValueError, TypeError) as e:
        return str(e)
    if plural == "pods":
        spec = obj.get("spec") or {}
        if not spec.get("containers"):
            return "spec.containers: Required value"
        for c in spec["containers"] + (spec.get("initContainers") or []):
            if not c.get("image"):
                return f"spec.containers[{c.get('name')}].image: Required value"
        names = [v["name"] for v in spec.get("volumes") or []]
        for c in spec["containers"]:
            for mount in c.get("volumeMounts") or []:
                if mount["name"] not in names:
                    return f"spec.containers[{c['name']}].volumeMounts.name: Not found: {mount['name']!r}"
        if spec.get("restartPolicy") not in (None, "Always", "OnFailure", "Never"):
            return f"spec.restartPolicy: Unsupported value: {spec['restartPolicy']!r}"
    return None if model is not None else "the object could not be read"


# ---- scripts: what a kubelet or a controller would do ----------------------------------------------------------------
def _container(obj: Obj) -> str:
    return str(obj["spec"]["containers"][0]["name"])


def _image(obj: Obj) -> str:
    return str(obj["spec"]["containers"][0]["image"])


def pod_status(
    phase: str, state: Obj, *, reason: str | None = None, message: str | None = None, ready: bool = False
) -> Callable[[Obj], Obj]:
    """A pod's status in ``phase`` whose (single) container is in ``state`` ({"running": {...}} etc.)."""

    def build(pod: Obj) -> Obj:
        status: Obj = {
            "phase": phase,
            "hostIP": "10.0.0.7",
            "podIP": "10.244.0.9",
            "startTime": pod["metadata"]["creationTimestamp"],
            "qosClass": "Burstable",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}],
            "containerStatuses": [
                {
                    "name": _container(pod),
                    "image": _image(pod),
                    "imageID": "",
                    "ready": ready,
                    "restartCount": 0,
                    "started": "running" in state,
                    "state": state,
                }
            ],
        }
        if reason:
            status["reason"] = reason
        if message:
            status["message"] = message
        return status

    return build


def _waiting(reason: str, message: str | None = None) -> Obj:
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


def _running() -> Obj:
    return {"running": {"startedAt": now_rfc3339()}}


def _terminated(exit_code: int, reason: str) -> Obj:
    return {
        "terminated": {"exitCode": exit_code, "reason": reason, "startedAt": now_rfc3339(), "finishedAt": now_rfc3339()}
    }


def pod_succeeds(log: str, *, pending_gets: int = 1, running_gets: int = 1, partial_log: str = "") -> list[Step]:
    """Pending → Running (``partial_log`` so far) → Succeeded with ``log`` complete."""
    return [
        Step(pod_status("Pending", _waiting("ContainerCreating")), gets=pending_gets),
        Step(pod_status("Running", _running(), ready=True), log=partial_log, gets=running_gets),
        Step(
            pod_status("Succeeded", _terminated(0, "Completed")),
            log=log[len(partial_log) :] if log.startswith(partial_log) else log,
            gets=None,
        ),
    ]


def pod_fails(log: str, *, exit_code: int = 1, running_gets: int = 1) -> list[Step]:
    """Pending → Running → Failed: the container exits ``exit_code`` with ``log`` (BR's error in it)."""
    return [
        Step(pod_status("Pending", _waiting("ContainerCreating"))),
        Step(pod_status("Running", _running(), ready=True), gets=running_gets),
        Step(pod_status("Failed", _terminated(exit_code, "Error")), log=log, gets=None),
    ]


def pod_evicted(log: str = "", *, message: str = "The node was low on resource: memory.") -> list[Step]:
    """Pending → Running → Failed with ``reason: Evicted`` (the kubelet's, on the pod status)."""
    return [
        Step(pod_status("Pending", _waiting("ContainerCreating"))),
        Step(pod_status("Running", _running(), ready=True), log=log),
        Step(pod_status("Failed", _terminated(137, "Error"), reason="Evicted", message=message), gets=None),
    ]


def pod_image_pull_fails() -> list[Step]:
    """Pending for good: ErrImagePull, then ImagePullBackOff, naming the pod's image."""

    def waiting(reason: str) -> Callable[[Obj], Obj]:
        def build(pod: Obj) -> Obj:
            message = (
                f'Back-off pulling image "{_image(pod)}"'
                if reason == "ImagePullBackOff"
                else f'rpc error: code = NotFound desc = failed to pull and unpack image "{_image(pod)}": not found'
            )
            return pod_status("Pending", _waiting(reason, message))(pod)

        return build

    return [
        Step(pod_status("Pending", _waiting("ContainerCreating"))),
        Step(waiting("ErrImagePull")),
        Step(waiting("ImagePullBackOff"), gets=None),
    ]


def pod_runs(log: str = "") -> list[Step]:
    """Pending → Running for good (a long backup; a test kills or times it out)."""
    return [
        Step(pod_status("Pending", _waiting("ContainerCreating"))),
        Step(pod_status("Running", _running(), ready=True), log=log, gets=None),
    ]


def cr_goes_through(
    *phases: str, fields: Obj | None = None, reason: str = "", message: str = "", gets: int = 1
) -> list[Step]:
    """A TiDB Operator Backup/Restore whose ``status.phase`` walks ``phases`` (Scheduled, Running, Complete...).

    Each phase adds a condition of its type (``status: "True"``), as the operator's ``UpdateBackupCondition`` does;
    ``fields`` (backupPath, commitTs...) join the last phase's status; ``reason``/``message`` go on the last
    condition (a Failed one's reason).
    """
    steps = []
    conditions: list[Obj] = []
    for i, phase in enumerate(phases):
        last = i == len(phases) - 1
        cond: Obj = {"type": phase, "status": "True", "lastTransitionTime": now_rfc3339()}
        if last and reason:
            cond["reason"] = reason
        if last and message:
            cond["message"] = message
        conditions = [*conditions, cond]
        status: Obj = {"phase": phase, "conditions": conditions}
        if i == 0:
            status["timeStarted"] = now_rfc3339()
        if last:
            status.update(fields or {})
        steps.append(Step(status, gets=None if last else gets))
    return steps


def tidbcluster_services(tc: Obj) -> list[Obj]:
    """The Services TiDB Operator makes for a TidbCluster: ``<name>-pd`` (2379) and ``<name>-tidb`` (4000, 10080)."""
    name = tc["metadata"]["name"]
    labels = {
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "tidb-operator",
        "app.kubernetes.io/name": "tidb-cluster",
    }

    def svc(component: str, ports: list[tuple[str, int]]) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{name}-{component}", "labels": {**labels, "app.kubernetes.io/component": component}},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.10",
                "ports": [{"name": p, "port": n, "protocol": "TCP", "targetPort": n} for p, n in ports],
                "selector": {**labels, "app.kubernetes.io/component": component},
            },
        }

    return [svc("pd", [("client", 2379)]), svc("tidb", [("mysql-client", 4000), ("status", 10080)])]


def tidbcluster_status(
    *, ready: bool, pd: str = "Normal", tikv: str = "Normal", tidb: str = "Normal", reason: str = "", message: str = ""
) -> Obj:
    """A TidbCluster's status: its ``Ready`` condition and each component's phase (v1.6.6 status shape)."""
    cond: Obj = {
        "type": "Ready",
        "status": "True" if ready else "False",
        "lastTransitionTime": now_rfc3339(),
        "lastUpdateTime": now_rfc3339(),
        "reason": reason or ("Ready" if ready else "TiKVStoreNotUp"),
        "message": message or ("TiDB cluster is fully up and running" if ready else "TiKV store(s) are not up"),
    }
    return {
        "clusterID": "7300000000000000001",
        "conditions": [cond],
        "pd": {"phase": pd, "synced": ready},
        "tikv": {"phase": tikv, "synced": ready},
        "tidb": {"phase": tidb},
    }


def tidbcluster_becomes_ready(*, starting_gets: int = 1) -> list[Step]:
    """Created → components scaling, not Ready (Services appear) → Ready with every component Normal."""
    return [
        Step(None, gets=1),
        Step(
            tidbcluster_status(ready=False, pd="Normal", tikv="Scale", tidb="Scale"),
            gets=starting_gets,
            create=tidbcluster_services,
        ),
        Step(tidbcluster_status(ready=True), gets=None),
    ]


def iter_kinds(fake: FakeKube) -> Iterator[tuple[str, str]]:
    """(api, plural) of everything stored (for a test's 'nothing left behind' assertion)."""
    with fake._lock:
        yield from sorted({(a, p) for (a, p, _, _) in fake._objects})
