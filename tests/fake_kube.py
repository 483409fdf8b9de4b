"""A fake Kubernetes API server in the test process, and a cluster that looks deployed.

The server answers the real API paths ``verify`` reads (``/api/v1/...``, ``/apis/<group>/<version>/...``,
the service proxy), with a bearer token required, ``labelSelector`` on lists and ``Status`` objects for
401/404 as the API server sends them. The objects are shaped like the real ones: helm release Secrets
encoded as helm's storage driver does (JSON, gzip, base64, then the API's base64 of Secret data), the
vendored CRD files themselves with an ``Established`` condition, Nodes with ``allocatable``.

Model endpoints are the project's own OpenAI-compatible simulator (``eks_llm_stack.bench.simulator``),
served on a background event loop; :class:`FakeForwarder` stands in for ``kubectl port-forward``.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from eks_llm_stack.bench.simulator import SimulatorConfig, running
from eks_llm_stack.third_party import CRD_DIR

TOKEN = "fake-token"


def helm_release_secret(
    name: str, namespace: str, chart: str, version: str, *, revision: int = 1, status: str = "deployed"
) -> dict[str, Any]:
    """A release Secret as helm 3/4 writes it (``pkg/storage/driver``: ``newSecretsObject``, ``encodeRelease``)."""
    release = {
        "name": name,
        "namespace": namespace,
        "version": revision,
        "info": {"status": status, "description": "Install complete"},
        "chart": {"metadata": {"name": chart, "version": version, "apiVersion": "v2"}},
        "config": {},
        "manifest": "",
    }
    helm_encoded = base64.b64encode(gzip.compress(json.dumps(release).encode(), compresslevel=9))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{name}.v{revision}",
            "namespace": namespace,
            "labels": {"name": name, "owner": "helm", "status": status, "version": str(revision)},
        },
        # The API returns Secret data base64-encoded: helm's base64 string, encoded again.
        "data": {"release": base64.b64encode(helm_encoded).decode()},
    }


@cache
def _vendored_crds() -> dict[str, str]:
    """CRD name -> its JSON (parsed once; each test gets a fresh copy)."""
    return {
        doc["metadata"]["name"]: json.dumps(doc)
        for path in sorted(CRD_DIR.glob("*.yaml"))
        for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader)
        if doc
    }


def vendored_crd(name: str) -> dict[str, Any]:
    """The vendored CRD named ``name`` as the API server returns it: with an Established condition."""
    doc: dict[str, Any] = json.loads(_vendored_crds()[name])
    doc["status"] = {
        "conditions": [{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]
    }
    return doc


def node(name: str, pool: str, instance_type: str, allocatable: dict[str, str], ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "eks-llm-stack.io/pool": pool,
                "node.kubernetes.io/instance-type": instance_type,
                "karpenter.sh/capacity-type": "spot",
            },
        },
        "status": {
            "allocatable": {"cpu": "3920m", "memory": "15000Mi", "pods": "58", **allocatable},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady"}],
        },
    }


DCGM_METRICS = (
    "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n"
    "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n"
    'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-8c1f",device="nvidia0",modelName="NVIDIA L4",Hostname="ip-10-0-1-7"} 37\n'
    "# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).\n"
    "# TYPE DCGM_FI_DEV_FB_USED gauge\n"
    'DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-8c1f",device="nvidia0",modelName="NVIDIA L4",Hostname="ip-10-0-1-7"} 18211\n'
)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}  # fmt: skip


def _matches(obj: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in (term.split("=", 1) for term in selector.split(",")))


@dataclass
class FakeApi:
    """Objects by collection path (``/api/v1/namespaces/kube-system/secrets``) and name; proxy answers by path."""

    collections: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    proxies: dict[str, tuple[int, str]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    #: Collections that answer 403 (the identity may not read them).
    forbidden: set[str] = field(default_factory=set)
    #: Paths or collections that answer this status (e.g. 500: the API server failing one read).
    failing: dict[str, int] = field(default_factory=dict)

    def put(self, collection: str, obj: dict[str, Any]) -> None:
        self.collections.setdefault(collection, {})[obj["metadata"]["name"]] = obj

    def remove(self, collection: str, name: str) -> None:
        self.collections.get(collection, {}).pop(name, None)

    def answer(self, path: str, query: dict[str, str], authorization: str | None) -> tuple[int, str, str]:
        self.requests.append(path)
        if authorization != f"Bearer {TOKEN}":
            return 401, "application/json", json.dumps(_status(401, "Unauthorized", "Unauthorized"))
        if path in self.proxies:
            code, body = self.proxies[path]
            return code, "text/plain; version=0.0.4", body
        collection, _, name = path.rpartition("/")
        code = self.failing.get(path) or self.failing.get(collection)
        if code:
            return code, "application/json", json.dumps(_status(code, "InternalError", "etcdserver: request timed out"))
        if path in self.forbidden or collection in self.forbidden:
            return 403, "application/json", json.dumps(_status(403, "Forbidden", f"{path} is forbidden"))
        if path in self.collections:
            items = [o for o in self.collections[path].values() if _matches(o, query.get("labelSelector"))]
            listing = {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "42"}, "items": items}
            return 200, "application/json", json.dumps(listing)
        obj = self.collections.get(collection, {}).get(name)
        if obj is None:
            return 404, "application/json", json.dumps(_status(404, "NotFound", f'"{name}" not found'))
        return 200, "application/json", json.dumps(obj)


@contextmanager
def serve_api(api: FakeApi) -> Iterator[str]:
    """The fake API server on a free port; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            code, ctype, body = api.answer(urllib.parse.unquote(url.path), query, self.headers.get("Authorization"))
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def write_kubeconfig(path: Path, server: str, token: str = TOKEN) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "ci", "user": {"token": token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "ci"}}],
        "current-context": "fake",
    }
    path.write_text(yaml.safe_dump(doc))
    return path


class ModelServers:
    """OpenAI-compatible endpoints on one background event loop: the simulator, or a canned status."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stack = AsyncExitStack()

    def simulator(self, config: SimulatorConfig) -> str:
        async def start() -> str:
            _, url = await self.stack.enter_async_context(running(config))
            return url

        return asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=10)

    def canned(self, status: int) -> str:
        """A server answering ``status`` to everything (a model that is not ready)."""
        from aiohttp import web

        async def answer(request: web.Request) -> web.Response:
            return web.Response(status=status, text="not ready")

        async def start() -> str:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", answer)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.stack.push_async_callback(runner.cleanup)
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            return f"http://127.0.0.1:{port}"

        return asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.stack.aclose(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@dataclass
class FakeForwarder:
    """Stands in for ``kubectl port-forward``: (namespace, service) -> the base URL of its endpoint."""

    urls: dict[tuple[str, str], str] = field(default_factory=dict)
    opened: list[tuple[str, str, int]] = field(default_factory=list)

    @contextmanager
    def __call__(self, namespace: str, service: str, port: int) -> Iterator[str]:
        from eks_llm_stack.ops.verify.checks import EndpointError

        self.opened.append((namespace, service, port))
        if (namespace, service) not in self.urls:
            raise EndpointError(f'services "{service}" not found')
        yield self.urls[(namespace, service)]


def healthy_cluster(
    api: FakeApi, expect: Any, servers: ModelServers, forward: FakeForwarder, keys: dict[str, str] | None = None
) -> Callable[[str], str]:
    """Put into ``api`` everything ``expect`` asks for, serve every model; returns the ingress URL function."""
    keys = keys or {}
    for r in expect.releases:
        api.put(
            f"/api/v1/namespaces/{r.namespace}/secrets", helm_release_secret(r.name, r.namespace, r.chart, r.version)
        )
    for c in expect.crds:
        api.put("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", vendored_crd(c.name))
    for pool in expect.pools:
        alloc = {res: "1" if res.endswith("/gpu") else "4" for res in pool.resources}
        api.put(
            "/api/v1/nodes",
            node(
                f"ip-10-0-{len(api.collections.get('/api/v1/nodes', {}))}-7.ec2.internal", pool.name, "g6.xlarge", alloc
            ),
        )
    if expect.dcgm is not None:
        d = expect.dcgm
        api.put(
            f"/apis/apps/v1/namespaces/{d.namespace}/daemonsets",
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": d.name, "namespace": d.namespace},
             "status": {"desiredNumberScheduled": len(expect.pools), "numberReady": len(expect.pools),
                        "numberAvailable": len(expect.pools)}},
        )  # fmt: skip
        api.proxies[f"/api/v1/namespaces/{d.namespace}/services/{d.name}:{d.port_name}/proxy/metrics"] = (
            200,
            DCGM_METRICS,
        )
    hosts: dict[str, str] = {}
    for m in expect.models:
        key = keys.get(m.name)
        url = servers.simulator(SimulatorConfig(model=m.name, ttft_ms=1, itl_ms=0, api_key=key))
        forward.urls[(m.namespace, m.service)] = url
        if m.api_key_secret is not None:
            assert key, f"model {m.name} needs an API key in keys"
            api.put(
                f"/api/v1/namespaces/{m.namespace}/secrets",
                {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                 "metadata": {"name": m.api_key_secret, "namespace": m.namespace},
                 "data": {"api-key": base64.b64encode(f"{key}\n".encode()).decode()}},
            )  # fmt: skip
        if m.ingress is not None:
            host = f"internal-k8s-{m.name}-0a1b2c.us-east-1.elb.amazonaws.com"
            status = {"loadBalancer": {"ingress": [{"hostname": host}]}}
            if m.ingress == "alb":
                collection = f"/apis/networking.k8s.io/v1/namespaces/{m.namespace}/ingresses"
                kind, api_version = "Ingress", "networking.k8s.io/v1"
            else:
                collection, kind, api_version = f"/api/v1/namespaces/{m.namespace}/services", "Service", "v1"
            api.put(
                collection,
                {"apiVersion": api_version, "kind": kind,
                 "metadata": {"name": m.ingress_object, "namespace": m.namespace}, "status": status},
            )  # fmt: skip
            hosts[m.ingress_host or host] = url
    return lambda host: hosts.get(host, f"https://{host}")
