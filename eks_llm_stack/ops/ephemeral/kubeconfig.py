"""A kubeconfig for an ephemeral cluster (``aws eks get-token`` exec auth; no secret in the file)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..aws import Aws


def kubeconfig_yaml(cluster: Mapping[str, Any], region: str) -> str:
    import yaml

    name = cluster["name"]
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": cluster["endpoint"],
                    "certificate-authority-data": cluster["certificateAuthority"]["data"],
                },
            }
        ],
        "users": [
            {
                "name": name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": ["eks", "get-token", "--cluster-name", name, "--region", region, "--output", "json"],
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write_kubeconfig(aws: Aws, cluster_name: str, path: Path) -> dict[str, Any]:
    cluster = aws.client("eks").describe_cluster(name=cluster_name)["cluster"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(kubeconfig_yaml(cluster, aws.region_name))
    path.chmod(0o600)
    return dict(cluster)
