"""Each check of ``eks-llm-stack verify``: reads the cluster, yields rows (check, target, status, detail, fix)."""

from __future__ import annotations

import base64
import json
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from ...charts.model_auth import KEY_FILE_NAME
from ...conventions import EFA_RESOURCE, GPU_RESOURCE, INSTANCE_TYPE_LABEL, POOL_LABEL
from ..preflight import Status
from .expect import DCGM_PROBE_FIELD, ExpectedCrd, ExpectedDcgm, ExpectedModel, ExpectedPool, ExpectedRelease
from .helm import ReleaseDecodeError, latest_release
from .kube import KubeApi, KubeForbidden, KubeReadError


@dataclass(frozen=True, kw_only=True)
class Row:
    """One row of the verify report."""

    check: str
    target: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "target": self.target,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }


def _pass(check: str, target: str, detail: str) -> Row:
    return Row(check=check, target=target, status=Status.PASS, detail=detail)


def _fail(check: str, target: str, detail: str, fix: str) -> Row:
    return Row(check=check, target=target, status=Status.FAIL, detail=detail, fix=fix)


def _skip(check: str, target: str, detail: str) -> Row:
    return Row(check=check, target=target, status=Status.SKIP, detail=detail)


def _unreadable(check: str, target: str, exc: KubeReadError) -> Row:
    if isinstance(exc, KubeForbidden):
        return _fail(
            check,
            target,
            f"the identity may not read it: {exc}",
            "give the identity read access (an EKS access entry with AmazonEKSClusterAdminPolicy or a view policy)",
        )
    return _fail(
        check,
        target,
        f"the API server failed the read: {exc}",
        "run verify again; if it persists, check the control plane (kubectl get --raw '/readyz?verbose')",
    )


def _bare(version: str) -> str:
    # Charts publish "v0.10.0" or "0.10.0" for the same release; helm accepts both.
    return version.removeprefix("v")


# -- Helm releases ---------------------------------------------------------------------------------


def check_release(api: KubeApi, r: ExpectedRelease, deploy_hint: str) -> Row:
    name, target = "helm release", f"{r.namespace}/{r.name}"
    redeploy = f"deploy the {r.stack} stack again ({deploy_hint})"
    try:
        found = latest_release(api, r.namespace, r.name)
    except KubeReadError as exc:
        return _unreadable(name, target, exc)
    except ReleaseDecodeError as exc:
        return _fail(
            name,
            target,
            f"its newest release Secret cannot be read: {exc}",
            f"inspect it: helm -n {r.namespace} history {r.name}",
        )
    if found is None:
        return _fail(name, target, f"not installed (no helm release Secret in {r.namespace})", redeploy)
    shown = f"chart {found.chart} {found.chart_version}, revision {found.revision}, {found.status}"
    if found.status != "deployed":
        return _fail(
            name,
            target,
            shown,
            f"a failed or interrupted install/upgrade: see 'helm -n {r.namespace} history {r.name}', then {redeploy}",
        )
    if found.chart != r.chart or _bare(found.chart_version) != _bare(r.version):
        return _fail(
            name,
            target,
            f"{shown}; the pinned chart is {r.chart} {r.version}",
            f"{redeploy} to install the pinned chart (eks_llm_stack/versions.py)",
        )
    return _pass(name, target, shown)


# -- CRDs --------------------------------------------------------------------------------------------


def check_crd(api: KubeApi, c: ExpectedCrd, deploy_hint: str) -> Row:
    name, target = "CRD", f"{c.name} {c.version}"
    try:
        crd = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{c.name}")
    except KubeReadError as exc:
        return _unreadable(name, target, exc)
    fix = f"the {c.release} release installs it: {deploy_hint}"
    if crd is None:
        return _fail(name, target, "not installed", fix)
    served = [str(v.get("name")) for v in crd.get("spec", {}).get("versions", ()) if v.get("served")]
    if c.version not in served:
        return _fail(name, target, f"serves {', '.join(served) or 'no version'}, not {c.version}", fix)
    conditions = {x.get("type"): x.get("status") for x in crd.get("status", {}).get("conditions", ())}
    if conditions.get("Established") != "True":
        return _fail(name, target, "not Established", f"kubectl describe crd {c.name}; {fix}")
    return _pass(name, target, f"served ({', '.join(served)}), Established")


# -- GPU nodes ---------------------------------------------------------------------------------------

_PLUGIN = {
    GPU_RESOURCE: "the NVIDIA device plugin (kube-system, release nvidia-device-plugin)",
    EFA_RESOURCE: "the EFA device plugin (kube-system, release aws-efa-k8s-device-plugin)",
}


def check_pool(api: KubeApi, pool: ExpectedPool) -> list[Row]:
    name = "GPU node"
    try:
        nodes = api.items("/api/v1/nodes", label_selector=f"{POOL_LABEL}={pool.name}")
    except KubeReadError as exc:
        return [_unreadable(name, f"pool {pool.name}", exc)]
    if not nodes:
        return [_skip(name, f"pool {pool.name}", "no node is running (Karpenter launches one for a pending GPU pod)")]
    rows = []
    for node in nodes:
        meta, status = node.get("metadata", {}), node.get("status", {})
        target = f"{pool.name}/{meta.get('name', '?')}"
        itype = (meta.get("labels") or {}).get(INSTANCE_TYPE_LABEL, "?")
        ready = {x.get("type"): x.get("status") for x in status.get("conditions", ())}.get("Ready")
        if ready != "True":
            rows.append(_fail(name, target, f"{itype}: not Ready", f"kubectl describe node {meta.get('name')}"))
            continue
        allocatable = status.get("allocatable") or {}
        missing = [res for res in pool.resources if not _positive(allocatable.get(res))]
        if missing:
            shown = ", ".join(f"{res}: {allocatable.get(res, 'absent')}" for res in missing)
            plugins = " and ".join(_PLUGIN[res] for res in missing)
            rows.append(
                _fail(
                    name,
                    target,
                    f"{itype} allocatable {shown}",
                    f"{plugins} must run on the node: kubectl -n kube-system get pods -o wide "
                    f"--field-selector spec.nodeName={meta.get('name')}",
                )
            )
            continue
        rows.append(
            _pass(name, target, f"{itype}: " + ", ".join(f"{res} {allocatable[res]}" for res in pool.resources))
        )
    return rows


def _positive(value: Any) -> bool:
    return str(value or "").isdigit() and int(str(value)) > 0


# -- DCGM exporter -----------------------------------------------------------------------------------


def check_dcgm(api: KubeApi, d: ExpectedDcgm, timeout: float) -> list[Row]:
    name, target = "DCGM exporter", f"{d.namespace}/{d.name}"
    try:
        ds = api.get(f"/apis/apps/v1/namespaces/{d.namespace}/daemonsets/{d.name}")
    except KubeReadError as exc:
        return [_unreadable(name, target, exc)]
    if ds is None:
        return [_fail(name, target, "DaemonSet not found", "deploy the Platform stack (observability.enabled)")]
    st = ds.get("status", {})
    desired, ready = int(st.get("desiredNumberScheduled") or 0), int(st.get("numberReady") or 0)
    if desired == 0:
        return [_skip(name, target, "no GPU node to run on: nothing to export yet")]
    if ready < desired:
        return [
            _fail(
                name,
                target,
                f"{ready}/{desired} pods ready",
                f"kubectl -n {d.namespace} get pods -l app.kubernetes.io/name={d.name}; then its logs",
            )
        ]
    rows = [_pass(name, target, f"{ready}/{desired} pods ready")]
    metrics = f"{target} /metrics"
    code, body = api.service_proxy(d.namespace, d.name, d.port_name, "/metrics", timeout=timeout)
    fix = (
        f"kubectl -n {d.namespace} logs ds/{d.name}: the exporter must reach DCGM on the node, and its counters "
        f"ConfigMap ({d.name}-counters) must list {DCGM_PROBE_FIELD}"
    )
    if code != 200:
        rows.append(_fail(name, metrics, f"GET /metrics through its Service answered {code}", fix))
    elif not re.search(rf"^{DCGM_PROBE_FIELD}[{{ ]", body.decode(errors="replace"), re.M):
        rows.append(_fail(name, metrics, f"serves /metrics but no {DCGM_PROBE_FIELD} sample", fix))
    else:
        rows.append(_pass(name, metrics, f"serves {DCGM_PROBE_FIELD}"))
    return rows


# -- models -------------------------------------------------------------------------------------------


class Forwarder(Protocol):
    """Opens a local connection to a Service's port; yields the base URL (``http://127.0.0.1:PORT``)."""

    def __call__(self, namespace: str, service: str, port: int) -> AbstractContextManager[str]: ...


@dataclass(frozen=True, kw_only=True)
class HttpAnswer:
    status: int
    body: bytes
    seconds: float


class EndpointError(Exception):
    """The endpoint did not answer (refused, reset, timed out, TLS failed)."""


def http_call(
    method: str,
    url: str,
    *,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    host: str | None = None,
) -> HttpAnswer:
    """One HTTP request; an error status is an answer, no answer is :class:`EndpointError`."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if host:
        req.add_header("Host", host)
    start = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ssl.create_default_context()) as resp:
            return HttpAnswer(status=resp.status, body=resp.read(), seconds=time.monotonic() - start)
    except urllib.error.HTTPError as exc:
        return HttpAnswer(status=exc.code, body=exc.read(), seconds=time.monotonic() - start)
    except (urllib.error.URLError, TimeoutError, ConnectionError, ssl.SSLError, OSError) as exc:
        raise EndpointError(str(getattr(exc, "reason", exc))) from None


def model_api_key(api: KubeApi, m: ExpectedModel) -> tuple[str | None, Row | None]:
    """``(key, None)``, or ``(None, failed row)`` when the model's API-key Secret is missing or empty."""
    assert m.api_key_secret is not None
    target = f"{m.namespace}/{m.api_key_secret}"
    fix = (
        f"the ExternalSecret {m.api_key_secret} syncs it from Secrets Manager: "
        f"kubectl -n {m.namespace} describe externalsecret {m.api_key_secret}"
    )
    try:
        secret = api.get(f"/api/v1/namespaces/{m.namespace}/secrets/{m.api_key_secret}")
    except KubeReadError as exc:
        return None, _unreadable("model API key", target, exc)
    if secret is None:
        return None, _fail("model API key", target, "Secret not found", fix)
    raw = (secret.get("data") or {}).get(KEY_FILE_NAME)
    lines = base64.b64decode(raw).decode(errors="replace").splitlines() if raw else []
    key = next((line.strip() for line in lines if line.strip()), None)
    if key is None:
        return None, _fail("model API key", target, f"the Secret has no '{KEY_FILE_NAME}' value", fix)
    return key, None


def _completion_row(check: str, target: str, call: Callable[[], HttpAnswer], fix: str) -> Row:
    try:
        answer = call()
    except EndpointError as exc:
        return _fail(check, target, f"POST /v1/completions got no answer: {exc}", fix)
    excerpt = answer.body[:200].decode(errors="replace")
    if answer.status != 200:
        return _fail(check, target, f"POST /v1/completions answered {answer.status}: {excerpt}", fix)
    try:
        doc = json.loads(answer.body)
        text = doc["choices"][0]["text"]
    except (ValueError, KeyError, IndexError, TypeError):
        return _fail(check, target, f"POST /v1/completions answered 200 without choices[0].text: {excerpt}", fix)
    if not isinstance(text, str):
        return _fail(check, target, "choices[0].text is not a string", fix)
    tokens = (doc.get("usage") or {}).get("completion_tokens", "?")
    return _pass(check, target, f"{tokens} tokens in {answer.seconds:.2f}s")


def completion_body(m: ExpectedModel) -> dict[str, Any]:
    return {"model": m.name, "prompt": "Say hello.", "max_tokens": 8, "temperature": 0}


def check_model(
    api: KubeApi,
    m: ExpectedModel,
    *,
    forward: Forwarder,
    via: str,
    timeout: float,
    completion_timeout: float,
    ingress_url: Callable[[str], str],
) -> list[Row]:
    """``/health`` through the Service, one completion through the endpoint of the plan (or the Service)."""
    target = f"{m.namespace}/{m.service}"
    rows: list[Row] = []
    key: str | None = None
    if m.api_key_secret is not None:
        key, problem = model_api_key(api, m)
        if problem is not None:
            return [problem]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    logs = f"kubectl -n {m.namespace} get pods -l app.kubernetes.io/instance={m.name}; kubectl -n {m.namespace} logs"
    try:
        with forward(m.namespace, m.service, m.port) as base:
            try:
                health = http_call("GET", f"{base}/health", timeout=timeout)
            except EndpointError as exc:
                rows.append(_fail("model /health", target, f"no answer: {exc}", f"the pods do not serve: {logs}"))
                return rows
            if health.status != 200:
                return [
                    _fail(
                        "model /health",
                        target,
                        f"GET /health answered {health.status}",
                        f"the model is not ready: {logs}",
                    )
                ]
            rows.append(_pass("model /health", target, f"200 in {health.seconds:.2f}s"))
            if key:
                rows.append(_auth_row(base, m, target, timeout))
            if m.ingress is None or via == "service":
                rows.append(
                    _completion_row(
                        "model completion",
                        f"{target} (Service)",
                        lambda: http_call(
                            "POST",
                            f"{base}/v1/completions",
                            body=completion_body(m),
                            headers=headers,
                            timeout=completion_timeout,
                        ),
                        f"the server answers /health but cannot complete: {logs}",
                    )
                )
    except EndpointError as exc:
        return [
            _fail(
                "model /health",
                target,
                f"cannot open a connection to the Service: {exc}",
                f"check the Service and its pods: {logs}",
            )
        ]
    if m.ingress is not None and via == "plan":
        rows.append(_ingress_completion(api, m, headers, completion_timeout, ingress_url))
    return rows


def _auth_row(base: str, m: ExpectedModel, target: str, timeout: float) -> Row:
    """The key must be required, not merely accepted: a completion without it is refused with 401."""
    try:
        answer = http_call("POST", f"{base}/v1/completions", body=completion_body(m), timeout=timeout)
    except EndpointError as exc:
        return _fail("model auth", target, f"a completion without the API key got no answer: {exc}", "retry")
    if answer.status != 401:
        return _fail(
            "model auth",
            target,
            f"a completion without the API key answered {answer.status}, not 401",
            "the API-key middleware is not active: check the pod's --middleware argument and key file",
        )
    return _pass("model auth", target, "401 without the API key")


def load_balancer_address(api: KubeApi, m: ExpectedModel) -> str | None:
    """The hostname (or IP) the AWS Load Balancer Controller wrote in the Ingress / Service status."""
    assert m.ingress_object is not None
    path = (
        f"/apis/networking.k8s.io/v1/namespaces/{m.namespace}/ingresses/{m.ingress_object}"
        if m.ingress == "alb"
        else f"/api/v1/namespaces/{m.namespace}/services/{m.ingress_object}"
    )
    obj = api.get(path) or {}
    entries = (obj.get("status", {}).get("loadBalancer") or {}).get("ingress") or []
    return next((str(e.get("hostname") or e.get("ip")) for e in entries if e.get("hostname") or e.get("ip")), None)


def _ingress_completion(
    api: KubeApi, m: ExpectedModel, headers: dict[str, str], timeout: float, ingress_url: Callable[[str], str]
) -> Row:
    kind = "Ingress" if m.ingress == "alb" else "Service"
    target = f"{m.namespace}/{m.ingress_object} ({m.ingress.upper() if m.ingress else ''})"
    try:
        address = load_balancer_address(api, m)
    except KubeReadError as exc:
        return _unreadable("model completion", target, exc)
    if address is None:
        return _fail(
            "model completion",
            target,
            f"the {kind} has no load balancer address",
            "the AWS Load Balancer Controller did not create it: kubectl -n kube-system logs "
            f"deploy/aws-load-balancer-controller; kubectl -n {m.namespace} describe {kind.lower()} {m.ingress_object}",
        )
    url = ingress_url(m.ingress_host or address)
    return _completion_row(
        "model completion",
        f"{target} {url}",
        lambda: http_call("POST", f"{url}/v1/completions", body=completion_body(m), headers=headers, timeout=timeout),
        "the load balancer must be reachable from here (an internal one only from the VPC: run verify there, or "
        "--via service) and its TLS certificate valid for the name used",
    )
