"""A small read-only Kubernetes API client: the kubeconfig's server, CA and credentials, plain HTTPS.

The ``kubernetes`` Python client is not a dependency of this library, and ``verify`` needs GETs, a
list with a label selector and the API server's service proxy only. Credentials come from the
kubeconfig as kubectl reads them: a bearer token, a client certificate, or an ``exec`` plugin
(``aws eks get-token``, what ``ephemeral up`` and ``aws eks update-kubeconfig`` write).
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import EksLlmStackError


class KubeAccessError(EksLlmStackError):
    """The API server cannot be used: no kubeconfig, unreachable, credentials rejected. Exit code 4."""

    exit_code = 4


class KubeReadError(EksLlmStackError):
    """One read failed (the API server answered 5xx, or not JSON): that check fails, the others still run."""


class KubeForbidden(KubeReadError):
    """The API server answered 403: the identity may not read this object (a failed check, not an access error)."""


_FIX_KUBECONFIG = (
    "pass --kubeconfig PATH (for an ephemeral cluster: the file 'ephemeral up --kubeconfig' wrote; otherwise "
    "'aws eks update-kubeconfig --name CLUSTER --kubeconfig PATH')"
)


@dataclass(frozen=True, kw_only=True)
class KubeTarget:
    """One context of a kubeconfig, resolved: where the API server is and how to authenticate."""

    context: str
    server: str
    ca_data: bytes | None = None
    insecure: bool = False
    token: str | None = None
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    exec_spec: Mapping[str, Any] | None = None
    kubeconfig: Path | None = None


def default_kubeconfig() -> Path:
    """``$KUBECONFIG`` (its first file), else ``~/.kube/config``, as kubectl reads it."""
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    return Path(first) if first else Path.home() / ".kube" / "config"


def load_kubeconfig(path: Path | None = None, context: str | None = None) -> KubeTarget:
    """The target of ``context`` (default: the file's ``current-context``) in the kubeconfig at ``path``."""
    import yaml

    path = path or default_kubeconfig()
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise KubeAccessError(
            f"cannot read the kubeconfig {path}: {exc.strerror or exc}\n  fix: {_FIX_KUBECONFIG}"
        ) from None
    except yaml.YAMLError as exc:
        raise KubeAccessError(f"the kubeconfig {path} is not YAML ({exc})\n  fix: {_FIX_KUBECONFIG}") from None
    if not isinstance(doc, dict):
        raise KubeAccessError(f"the kubeconfig {path} is not a kubeconfig (no mapping)\n  fix: {_FIX_KUBECONFIG}")

    def named(section: str, name: str) -> dict[str, Any]:
        for item in doc.get(section) or ():
            if isinstance(item, dict) and item.get("name") == name:
                return dict(item.get(section[:-1]) or {})
        known = [i.get("name") for i in doc.get(section) or () if isinstance(i, dict)]
        raise KubeAccessError(
            f"the kubeconfig {path} has no {section[:-1]} named '{name}' (it has {known or 'none'})\n"
            f"  fix: pass --context with one of the contexts in the file, or {_FIX_KUBECONFIG}"
        )

    chosen = context or doc.get("current-context")
    if not chosen:
        raise KubeAccessError(f"the kubeconfig {path} has no current-context\n  fix: pass --context NAME")
    ctx = named("contexts", chosen)
    cluster = named("clusters", str(ctx.get("cluster", "")))
    user = named("users", str(ctx.get("user", ""))) if ctx.get("user") else {}
    server = str(cluster.get("server") or "").rstrip("/")
    if not server.startswith(("https://", "http://")):
        raise KubeAccessError(f"context '{chosen}' of {path} has no https:// server\n  fix: {_FIX_KUBECONFIG}")

    def data(block: Mapping[str, Any], key: str) -> bytes | None:
        if block.get(f"{key}-data"):
            return base64.b64decode(str(block[f"{key}-data"]))
        if block.get(key):
            file = Path(str(block[key])).expanduser()
            file = file if file.is_absolute() else path.parent / file
            try:
                return file.read_bytes()
            except OSError as exc:
                raise KubeAccessError(f"cannot read {key} {file} named by {path}: {exc.strerror}") from None
        return None

    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(str(user["tokenFile"])).read_text().strip()
    return KubeTarget(
        context=str(chosen),
        server=server,
        ca_data=data(cluster, "certificate-authority"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token=str(token) if token else None,
        client_cert_data=data(user, "client-certificate"),
        client_key_data=data(user, "client-key"),
        exec_spec=user.get("exec"),
        kubeconfig=path,
    )


def exec_credential(spec: Mapping[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """Run a kubeconfig ``exec`` plugin and return the ``status`` of its ExecCredential."""
    command = str(spec.get("command") or "")
    argv = [command, *(str(a) for a in spec.get("args") or ())]
    env = {**os.environ, **{str(e["name"]): str(e["value"]) for e in spec.get("env") or () if "name" in e}}
    env["KUBERNETES_EXEC_INFO"] = json.dumps(
        {
            "apiVersion": spec.get("apiVersion", "client.authentication.k8s.io/v1beta1"),
            "kind": "ExecCredential",
            "spec": {"interactive": False},
        }
    )
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except FileNotFoundError:
        raise KubeAccessError(
            f"the kubeconfig's credential command '{command}' is not installed\n"
            "  fix: install it (the AWS CLI for 'aws eks get-token') or put it on PATH"
        ) from None
    except subprocess.TimeoutExpired:
        raise KubeAccessError(
            f"the credential command '{' '.join(argv[:3])}' did not finish in {timeout:.0f}s"
        ) from None
    if done.returncode != 0:
        raise KubeAccessError(
            f"the credential command '{' '.join(argv[:3])} ...' failed: {done.stderr.strip()[:300]}\n"
            "  fix: check the AWS credentials (aws sts get-caller-identity) and the cluster name"
        )
    try:
        status = json.loads(done.stdout)["status"]
    except (ValueError, KeyError, TypeError):
        raise KubeAccessError(f"the credential command '{command}' printed no ExecCredential status") from None
    return dict(status)


@dataclass
class KubeApi:
    """GET-only access to one API server. ``timeout``: seconds per request (default 10)."""

    target: KubeTarget
    timeout: float = 10.0
    _ssl: ssl.SSLContext | None = field(default=None, init=False, repr=False)
    _exec: dict[str, Any] | None = field(default=None, init=False, repr=False)

    # -- connection ---------------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext | None:
        if not self.target.server.startswith("https://"):
            return None
        if self._ssl is not None:
            return self._ssl
        ctx = ssl.create_default_context()
        if self.target.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.target.ca_data:
            ctx.load_verify_locations(cadata=self.target.ca_data.decode())
        cert, key = self.target.client_cert_data, self.target.client_key_data
        status = self._exec_status()
        if status.get("clientCertificateData"):
            cert, key = status["clientCertificateData"].encode(), status.get("clientKeyData", "").encode()
        if cert and key:
            # ssl loads a certificate chain from files only; they live as long as this call.
            with tempfile.TemporaryDirectory(prefix="eks-llm-stack-kube-") as tmp:
                (Path(tmp) / "cert").write_bytes(cert)
                (Path(tmp) / "key").write_bytes(key)
                ctx.load_cert_chain(str(Path(tmp) / "cert"), str(Path(tmp) / "key"))
        self._ssl = ctx
        return ctx

    def _exec_status(self) -> dict[str, Any]:
        if self.target.exec_spec is None:
            return {}
        if self._exec is None:
            # One token per run: EKS tokens last 15 minutes, longer than every verify.
            self._exec = exec_credential(self.target.exec_spec)
        return self._exec

    def _bearer(self) -> str | None:
        if self.target.token:
            return self.target.token
        token = self._exec_status().get("token")
        return str(token) if token else None

    def request(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> tuple[int, bytes]:
        """``(status, body)`` of one request; raises :class:`KubeAccessError` when the server cannot be used."""
        url = self.target.server + path + ("?" + urllib.parse.urlencode(params) if params else "")
        req = urllib.request.Request(url, method=method, headers={"Accept": "application/json"})
        bearer = self._bearer()
        if bearer:
            req.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout, context=self._context()) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
            if exc.code == 401:
                raise KubeAccessError(
                    f"the API server {self.target.server} rejected the credentials (401)\n"
                    "  fix: refresh them (aws sso login / assume the role again); the identity needs an EKS access "
                    "entry on the cluster ('ephemeral up --admin-arn', or cluster.admins in the profile)"
                ) from None
            return exc.code, body
        except (urllib.error.URLError, TimeoutError, ConnectionError, ssl.SSLError) as exc:
            reason = getattr(exc, "reason", exc)
            raise KubeAccessError(
                f"cannot reach the API server {self.target.server} ({reason})\n"
                "  fix: check the network; the endpoint is private by default: run from the VPC, or allow this "
                "runner's address ('ephemeral up --runner-cidr', cluster.endpoint.runner_cidrs)"
            ) from None

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """The object at ``path``; None when it does not exist (404); :class:`KubeForbidden` on 403,
        :class:`KubeReadError` on any other failed read."""
        status, body = self.request("GET", path, params=params)
        if status == 404:
            return None
        if status == 403:
            raise KubeForbidden(f"GET {path}: forbidden (403)")
        if status >= 400:
            raise KubeReadError(f"GET {path}: the API server answered {status}: {body[:300]!r}")
        try:
            loaded = json.loads(body)
        except ValueError:
            raise KubeReadError(f"GET {path}: the API server sent no JSON") from None
        return dict(loaded) if isinstance(loaded, dict) else None

    def items(self, path: str, *, label_selector: str | None = None) -> list[dict[str, Any]]:
        """The items of a list (an absent collection, e.g. a namespace that does not exist, is empty)."""
        found = self.get(path, {"labelSelector": label_selector} if label_selector else None)
        return list((found or {}).get("items") or [])

    def service_proxy(
        self, namespace: str, service: str, port: str | int, path: str, timeout: float | None = None
    ) -> tuple[int, bytes]:
        """GET ``path`` of a Service through the API server's service proxy."""
        quoted = urllib.parse.quote(f"{service}:{port}", safe=":")
        return self.request(
            "GET", f"/api/v1/namespaces/{namespace}/services/{quoted}/proxy/{path.lstrip('/')}", timeout=timeout
        )
