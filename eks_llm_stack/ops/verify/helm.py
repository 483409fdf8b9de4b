"""Helm's release records, read the way helm reads them (its ``Secret`` storage driver).

Helm 3 and 4 keep each revision of a release in a Secret ``sh.helm.release.v1.<release>.v<revision>``
of the release's namespace, type ``helm.sh/release.v1``, labelled ``owner=helm``, ``name=<release>``,
``status=<status>`` and ``version=<revision>``. Its ``release`` key holds the release as JSON,
gzip-compressed and base64-encoded (helm's ``pkg/storage/driver/util.go``: ``encodeRelease``); the
Kubernetes API base64-encodes Secret data once more. Records stored before compression existed are
plain JSON, which ``decodeRelease`` accepts too (no gzip magic).
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from typing import Any

from .kube import KubeApi

_GZIP_MAGIC = b"\x1f\x8b\x08"


class ReleaseDecodeError(ValueError):
    """A release Secret whose ``release`` key is not what helm writes."""


def decode_release(secret_data: str) -> dict[str, Any]:
    """The release JSON of a release Secret's ``data.release`` value, as the API returns it."""
    try:
        helm_encoded = base64.b64decode(secret_data, validate=True)
        raw = base64.b64decode(helm_encoded, validate=True)
        if raw[:3] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
        release = json.loads(raw)
    except (ValueError, OSError, EOFError) as exc:
        raise ReleaseDecodeError(f"not a helm release record ({exc})") from None
    if not isinstance(release, dict):
        raise ReleaseDecodeError("not a helm release record (no JSON object)")
    return release


@dataclass(frozen=True, kw_only=True)
class DeployedRelease:
    """The newest revision of a release."""

    name: str
    namespace: str
    revision: int
    status: str
    chart: str
    chart_version: str
    app_version: str


def latest_release(api: KubeApi, namespace: str, name: str) -> DeployedRelease | None:
    """The newest revision of release ``name`` in ``namespace`` (None: helm never installed it there)."""
    secrets = api.items(f"/api/v1/namespaces/{namespace}/secrets", label_selector=f"owner=helm,name={name}")
    records = [s for s in secrets if s.get("type") == "helm.sh/release.v1" and (s.get("data") or {}).get("release")]
    if not records:
        return None

    def revision(secret: dict[str, Any]) -> int:
        label = (secret.get("metadata", {}).get("labels") or {}).get("version", "")
        return int(label) if str(label).isdigit() else -1

    newest = max(records, key=revision)
    release = decode_release(newest["data"]["release"])
    meta = (release.get("chart") or {}).get("metadata") or {}
    return DeployedRelease(
        name=str(release.get("name", name)),
        namespace=str(release.get("namespace", namespace)),
        revision=int(release.get("version") or revision(newest)),
        status=str((release.get("info") or {}).get("status", "unknown")),
        chart=str(meta.get("name", "")),
        chart_version=str(meta.get("version", "")),
        app_version=str(meta.get("appVersion", "")),
    )
