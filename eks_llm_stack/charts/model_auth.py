"""What a vLLM pod needs to require an API key: the middleware, the key file, the serve flag.

* a ``ConfigMap`` ``<model>-auth`` holding :mod:`eks_llm_stack.charts.api_key_auth` as a Python
  file, mounted read-only and put on ``PYTHONPATH``;
* the model's key Secret (synced by External Secrets) mounted read-only as a file — never an
  environment variable, never on the command line — and named by ``$LLM_API_KEY_FILE``;
* ``--middleware eks_llm_api_key.ApiKeyMiddleware`` on ``vllm serve``.

The kubelet refreshes a mounted Secret in place when External Secrets updates it, and the
middleware re-reads the file when it changes: a rotated key is in force without a redeploy or
a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cdk8s
from constructs import Construct

from ..conventions import MANAGED_BY
from . import api_key_auth
from .kube import api_object

#: Module name of the middleware inside the pod (the ConfigMap's file, without ``.py``).
MODULE = "eks_llm_api_key"
MIDDLEWARE = f"{MODULE}.ApiKeyMiddleware"
#: Where the middleware module is mounted (on PYTHONPATH).
MODULE_DIR = "/etc/eks-llm-stack/auth"
#: Where the key Secret is mounted; the file inside is :data:`KEY_FILE_NAME`.
KEY_DIR = "/etc/eks-llm-stack/api-key"
KEY_FILE_NAME = "api-key"


def middleware_source() -> str:
    """The middleware's source, as shipped into the pod."""
    return Path(api_key_auth.__file__).read_text()


def auth_config_map(
    scope: Construct, id: str, *, model: str, namespace: str, labels: dict[str, str]
) -> cdk8s.ApiObject:
    """``<model>-auth``: the middleware module."""
    return api_object(
        scope,
        id,
        api_version="v1",
        kind="ConfigMap",
        metadata=cdk8s.ApiObjectMetadata(name=f"{model}-auth", namespace=namespace, labels={**MANAGED_BY, **labels}),
        body={"data": {f"{MODULE}.py": middleware_source()}},
        # The same module for every model: sent to the Node.js runtime once, not once per model.
        shared_body=True,
    )


def api_key_pod_parts(*, model: str, secret_name: str) -> dict[str, Any]:
    """Volumes, mounts, environment and ``vllm serve`` arguments for a pod of ``model``."""
    return {
        "volumes": [
            {"name": "api-auth", "configMap": {"name": f"{model}-auth"}},
            # Not optional: a pod without its key would refuse every request; better not to start. World-readable
            # inside the pod: vLLM runs as uid 1000 and the pod sets no fsGroup.
            {"name": "api-key", "secret": {"secretName": secret_name, "defaultMode": 0o444}},
        ],
        "mounts": [
            {"name": "api-auth", "mountPath": MODULE_DIR, "readOnly": True},
            {"name": "api-key", "mountPath": KEY_DIR, "readOnly": True},
        ],
        "env": [
            {"name": api_key_auth.KEY_FILE_ENV, "value": f"{KEY_DIR}/{KEY_FILE_NAME}"},
            {"name": "PYTHONPATH", "value": MODULE_DIR},
        ],
        "args": ["--middleware", MIDDLEWARE],
    }


__all__ = ["MIDDLEWARE", "api_key_pod_parts", "auth_config_map", "middleware_source"]
