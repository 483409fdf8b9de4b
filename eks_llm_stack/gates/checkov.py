"""checkov over the synthesized templates and manifests, with the cdk-nag discipline.

Every failed check is either fixed or acknowledged on the one resource, with a reason:

* CloudFormation: ``Metadata.checkov.skip[{id, comment}]`` through
  :func:`eks_llm_stack.nag.acknowledge_checkov`;
* Kubernetes: an annotation ``checkov.io/skip<n>: CKV_K8S_<x>=<reason>`` through
  :func:`acknowledge_k8s` (or :func:`k8s_skip_annotations` for objects built as dicts).

checkov pins its own dependency tree (boto3 among them) apart from ours, so it lives in its own
virtualenv (``make checkov``: ``.venv-checkov`` next to ``.venv``, locked by
``requirements-checkov.txt``) and runs as one subprocess over every file at once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The pinned checkov release (requirements-checkov.txt locks its dependencies).
CHECKOV_VERSION = "3.3.30"
#: Where checkov reads a Kubernetes object's skips (``checkov.io/skip1``, ``skip2``...).
K8S_SKIP_PREFIX = "checkov.io/skip"

# Reasons shared by several objects, so each acknowledgment says the same true thing.
NO_CPU_LIMIT = (
    "no CPU limit on purpose: CFS throttling stalls the engine's scheduler and token streaming; the CPU request "
    "reserves the share"
)
PINNED_TAG_PULL = (
    "images are pinned (eks_llm_stack/versions.py); IfNotPresent keeps multi-GB images cached on the node, which "
    "the pre-pull DaemonSet relies on"
)
PINNED_TAG = "images are pinned by version in eks_llm_stack/versions.py (see docs/security.md for digests and mirrors)"
NON_ROOT_CACHE_UID = (
    "runs as a fixed non-root UID that owns the model cache (EFS access point, fsGroup); 'high UID' guards "
    "against host-user collisions, and the pod has no host namespaces or host paths"
)
HF_TOKEN_ENV = (
    "HF_TOKEN is the variable huggingface_hub reads; it comes from the External Secrets-synced Secret, "
    "never from the profile"
)


#: Per cdk8s ``ApiObject`` (weakly): its metadata object and how many skips it has. Each jsii property read
#: or call is a round trip to the Node.js runtime, and a model's chart has about ten acknowledgments, so
#: the existing skips are read once per object and the next number is counted here.
_SKIPS: weakref.WeakKeyDictionary[Any, tuple[Any, int]] = weakref.WeakKeyDictionary()


def acknowledge_k8s(obj: Any, check_id: str, reason: str) -> None:
    """Acknowledge checkov's ``check_id`` on one cdk8s ``ApiObject``, with a reason."""
    _check_reason(check_id, reason)
    known = _SKIPS.get(obj)
    if known is None:
        metadata = obj.metadata
        current = (metadata.to_json() or {}).get("annotations") or {}
        known = (metadata, sum(1 for k in current if k.startswith(K8S_SKIP_PREFIX)))
    metadata, count = known
    metadata.add_annotation(f"{K8S_SKIP_PREFIX}{count + 1}", f"{check_id}={reason}")
    _SKIPS[obj] = (metadata, count + 1)


def k8s_skip_annotations(acknowledgments: Mapping[str, str]) -> dict[str, str]:
    """The annotations acknowledging ``{check_id: reason}`` on an object built as a dict."""
    for check_id, reason in acknowledgments.items():
        _check_reason(check_id, reason)
    return {f"{K8S_SKIP_PREFIX}{i}": f"{c}={r}" for i, (c, r) in enumerate(acknowledgments.items(), start=1)}


def _check_reason(check_id: str, reason: str) -> None:
    if not reason or len(reason.strip()) < 10:
        raise ValueError(f"acknowledging {check_id} needs a real reason")


@dataclass(frozen=True)
class CheckovResult:
    """One check on one resource of one file."""

    check_id: str
    resource: str
    file: str
    passed: bool
    skipped: bool
    comment: str = ""

    def __str__(self) -> str:
        return f"{self.check_id} {self.resource} ({Path(self.file).name})"


class CheckovUnavailable(RuntimeError):
    """checkov is not installed where the project expects it."""


def checkov_command() -> list[str]:
    """The checkov executable: ``$CHECKOV``, ``.venv-checkov`` beside the running virtualenv, or PATH."""
    explicit = os.environ.get("CHECKOV")
    candidates = [Path(explicit)] if explicit else []
    candidates.append(Path(sys.prefix).parent / ".venv-checkov" / "bin" / "checkov")
    for c in candidates:
        if c.is_file():
            return [str(c)]
    found = shutil.which("checkov")
    if found:
        return [found]
    raise CheckovUnavailable("checkov is not installed: run `make checkov` (a separate virtualenv, .venv-checkov)")


def run_checkov(files: Iterable[Path], *, timeout: float = 600) -> list[CheckovResult]:
    """Run checkov once over ``files`` (CloudFormation templates and Kubernetes manifests), offline."""
    args = [*checkov_command(), "--framework", "cloudformation", "kubernetes", "-o", "json", "--compact"]
    args += ["--skip-download", "--soft-fail"]
    paths = [str(f) for f in files]
    for f in paths:
        args += ["-f", f]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    env.pop("BC_API_KEY", None)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"checkov failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return parse_report(json.loads(proc.stdout))


def parse_report(report: Any) -> list[CheckovResult]:
    """Every passed, failed and skipped check of checkov's JSON report (one runner or a list)."""
    out: list[CheckovResult] = []
    for runner in report if isinstance(report, list) else [report]:
        results = runner.get("results") or {}
        for kind, passed, skipped in (("passed_checks", True, False), ("failed_checks", False, False)):
            for r in results.get(kind, []):
                out.append(CheckovResult(r["check_id"], r["resource"], r["file_abs_path"], passed, skipped))
        for r in results.get("skipped_checks", []):
            comment = (r.get("check_result") or {}).get("suppress_comment", "") or ""
            out.append(CheckovResult(r["check_id"], r["resource"], r["file_abs_path"], False, True, comment))
    return out


__all__ = [
    "CHECKOV_VERSION",
    "CheckovResult",
    "CheckovUnavailable",
    "acknowledge_k8s",
    "checkov_command",
    "k8s_skip_annotations",
    "parse_report",
    "run_checkov",
]
