"""``ModelFetchJob``: a Job that copies one model's weights into a cache volume, once.

The model chart (:class:`~eks_llm_stack.charts.model.ModelChart`) adds one per model whose weights
come from S3 or the Hugging Face Hub onto a cache claim; the vLLM pod of that model waits for the
Job's completion marker (:data:`COMPLETE_MARKER`). :func:`model_fetch_job` is the same Job as a plain
manifest, for callers outside cdk8s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cdk8s
from constructs import Construct

from .. import versions
from ..config.data import parse_s3_path
from ..conventions import HF_TOKEN_SECRET, MANAGED_BY, POOL_LABEL, SYSTEM_NODE_LABEL
from ..errors import Problems, collecting
from ..gates.checkov import (
    HF_TOKEN_ENV,
    NO_CPU_LIMIT,
    NON_ROOT_CACHE_UID,
    PINNED_TAG,
    PINNED_TAG_PULL,
    k8s_skip_annotations,
)
from ..naming import check_dns_label
from .external_secrets import SECRET_VALUE_KEY
from .kube import api_object, gpu_tolerations, restricted_security_context, system_tolerations

#: Where a fetch Job mounts the cache volume.
CACHE_MOUNT = "/cache"
#: File a fetch Job writes last; its content names the source, so a changed source re-syncs.
COMPLETE_MARKER = ".fetch-complete"


@dataclass(frozen=True, kw_only=True)
class ModelFetch:
    """A Job that copies one model into a cache volume, once.

    Exactly one source: ``s3_uri`` (``s3://bucket/prefix``, copied with ``aws s3 sync``) or
    ``hf_repo`` (a Hugging Face Hub repository, at ``hf_revision``, default ``main`` — pin a
    commit for reproducible weights). ``claim_name`` — the cache PVC. ``target_dir`` — directory
    under the volume (default: the job name). ``hf_token_secret`` — Kubernetes Secret holding the
    Hugging Face token under key ``token`` (default ``huggingface-token``, optional: public
    models need none). ``service_account`` — for S3 access through Pod Identity (default: the
    namespace's default account). ``uid`` / ``gid`` — owner of the files (default 1000/1000,
    matching the EFS access point). ``pools`` — GPU pools whose nodes run the Job (default none);
    they carry the storage-client security group the EFS / FSx mounts need, and the Job tolerates
    their GPU taint without requesting a GPU. ``on_system_nodes`` — without ``pools``, run on the
    system node group (default true); only right when those nodes can reach the file system.

    Idempotent: a marker file naming the source is written last, and a Job that finds it exits at
    once. Resumable: ``aws s3 sync`` and ``snapshot_download`` skip files already complete, so a
    retried pod (``backoffLimit``) continues where the last one stopped.
    """

    name: str
    claim_name: str
    s3_uri: str | None = None
    hf_repo: str | None = None
    hf_revision: str = "main"
    target_dir: str | None = None
    hf_token_secret: str = HF_TOKEN_SECRET
    service_account: str | None = None
    uid: int = 1000
    gid: int = 1000
    pools: tuple[str, ...] = ()
    on_system_nodes: bool = True

    def __post_init__(self) -> None:
        with collecting("ModelFetch") as p:
            check_dns_label(p, "name", self.name)
            check_dns_label(p, "claim_name", self.claim_name)
            check_dns_label(p, "hf_token_secret", self.hf_token_secret)
            if self.service_account is not None:
                check_dns_label(p, "service_account", self.service_account)
            if p.check(
                (self.s3_uri is None) != (self.hf_repo is None),
                "s3_uri",
                self.s3_uri,
                "give exactly one source",
                "set s3_uri='s3://bucket/prefix' or hf_repo='org/model', not both",
            ):
                if self.s3_uri is not None:
                    try:
                        parse_s3_path(self.s3_uri)
                    except ValueError:
                        p.add("s3_uri", "is not an S3 path", "write s3://bucket/prefix", self.s3_uri)
                if self.hf_repo is not None:
                    p.check(
                        bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+|[A-Za-z0-9][\w.-]*", self.hf_repo)),
                        "hf_repo",
                        self.hf_repo,
                        "is not a Hugging Face repository id",
                        "write org/model, e.g. Qwen/Qwen3-8B",
                    )
                    p.check(
                        bool(re.fullmatch(r"[\w./-]{1,200}", self.hf_revision)),
                        "hf_revision",
                        self.hf_revision,
                        "is not a revision",
                        "use a branch, tag or commit hash",
                    )
            _check_relative(p, "target_dir", self.target_dir)
            p.check(self.uid >= 0 and self.gid >= 0, "uid", (self.uid, self.gid), "must not be negative", "use 1000")
            p.check(
                self.uid != 0,
                "uid",
                self.uid,
                "root is refused by the restricted Pod Security level",
                "use a non-zero uid",
            )


def _check_relative(p: Problems, field: str, path: str | None) -> None:
    if path is None:
        return
    p.check(
        bool(re.fullmatch(r"[\w.-]+(/[\w.-]+)*", path)) and ".." not in path.split("/"),
        field,
        path,
        "is not a relative directory inside the volume",
        "write a path such as models/qwen3-8b (no leading '/', no '..')",
    )


_S3_SCRIPT = """set -eu
marker="$TARGET/{marker}"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$SOURCE" ]; then echo "already fetched: $SOURCE"; exit 0; fi
mkdir -p "$TARGET"
# sync copies only what is missing or changed, so a retry resumes rather than restarts.
aws s3 sync "$SOURCE" "$TARGET" --no-progress --only-show-errors --exclude "{marker}"
printf '%s' "$SOURCE" > "$marker"
echo "fetched: $SOURCE"
"""

_HF_SCRIPT = """set -eu
marker="$TARGET/{marker}"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$SOURCE" ]; then echo "already fetched: $SOURCE"; exit 0; fi
mkdir -p "$TARGET"
# huggingface_hub as the pinned vLLM image ships it: nothing is installed at start.
# snapshot_download skips complete files and resumes partial ones; HF_TOKEN comes from the synced Secret.
python3 -c 'import os; from huggingface_hub import snapshot_download as d
d(repo_id=os.environ["HF_REPO"], revision=os.environ["HF_REVISION"], local_dir=os.environ["TARGET"])'
printf '%s' "$SOURCE" > "$marker"
echo "fetched: $SOURCE"
"""


def _pod_spec(job: ModelFetch) -> dict[str, Any]:
    target = f"{CACHE_MOUNT}/{job.target_dir or job.name}"
    env: list[dict[str, Any]] = [
        {"name": "TARGET", "value": target},
        {"name": "HOME", "value": "/tmp"},
    ]
    if job.s3_uri is not None:
        image = versions.AWS_CLI_IMAGE.uri
        script = _S3_SCRIPT.format(marker=COMPLETE_MARKER)
        env.append({"name": "SOURCE", "value": job.s3_uri})
    else:
        # The image the model runs (pinned, pulled on the GPU nodes anyway) has huggingface_hub and its
        # tested version; a plain Python image would need a `pip install` at every start.
        image = versions.VLLM_IMAGE.uri
        script = _HF_SCRIPT.format(marker=COMPLETE_MARKER)
        env += [
            {"name": "SOURCE", "value": f"hf://{job.hf_repo}@{job.hf_revision}"},
            {"name": "HF_REPO", "value": job.hf_repo},
            {"name": "HF_REVISION", "value": job.hf_revision},
            {"name": "HF_HOME", "value": "/tmp/hf"},
            # From the Secret External Secrets keeps in sync -- never a literal in the pod spec.
            {
                "name": "HF_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": job.hf_token_secret, "key": SECRET_VALUE_KEY, "optional": True}},
            },
        ]
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        # No Kubernetes API token: the copy talks to S3 / the Hub only (EKS Pod Identity projects its own token).
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": job.uid,
            "runAsGroup": job.gid,
            "fsGroup": job.gid,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "fetch",
                "image": image,
                "command": ["/bin/sh", "-c", script],
                "env": env,
                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
                "securityContext": restricted_security_context(uid=job.uid),
                "volumeMounts": [{"name": "cache", "mountPath": CACHE_MOUNT}, {"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [
            {"name": "cache", "persistentVolumeClaim": {"claimName": job.claim_name}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "20Gi"}},
        ],
    }
    pod["containers"][0]["securityContext"]["runAsGroup"] = job.gid
    if job.service_account is not None:
        pod["serviceAccountName"] = job.service_account
    if job.pools:
        # Where the mounts work: GPU-pool nodes carry the storage-client security group (the
        # system nodes do not, so an EFS / FSx mount there hangs). The vLLM pod of the same
        # model waits on that node for the marker, so the Job adds no node of its own.
        pod["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": list(job.pools)}]}
                    ]
                }
            }
        }
        pod["tolerations"] = gpu_tolerations()
    elif job.on_system_nodes:
        pod["nodeSelector"] = {SYSTEM_NODE_LABEL: "true"}
        pod["tolerations"] = system_tolerations()
    return pod


def _labels(job: ModelFetch) -> dict[str, str]:
    return {**MANAGED_BY, "app.kubernetes.io/name": "model-fetch", "app.kubernetes.io/instance": job.name}


def _annotations() -> dict[str, str]:
    return k8s_skip_annotations(
        {
            "CKV_K8S_11": NO_CPU_LIMIT,
            "CKV_K8S_15": PINNED_TAG_PULL,
            "CKV_K8S_43": PINNED_TAG,
            "CKV_K8S_35": HF_TOKEN_ENV,
            "CKV_K8S_40": NON_ROOT_CACHE_UID,
        }
    )


def _job_spec(job: ModelFetch) -> dict[str, Any]:
    return {
        # Each retry resumes the copy; six attempts ride out throttling and node replacement.
        "backoffLimit": 6,
        "activeDeadlineSeconds": 6 * 3600,
        "ttlSecondsAfterFinished": 24 * 3600,
        "template": {"metadata": {"labels": _labels(job)}, "spec": _pod_spec(job)},
    }


def job_name(job: ModelFetch) -> str:
    """``metadata.name`` of the fetch Job of ``job`` (``fetch-<name>``, cut to a DNS label)."""
    return f"fetch-{job.name}"[:63]


class ModelFetchJob(Construct):
    """The fetch Job of ``props`` in ``namespace``, as a cdk8s construct.

    Attribute: ``job`` (the ``ApiObject``; make it depend on the service account it runs as).
    """

    def __init__(self, scope: Construct, id: str, *, props: ModelFetch, namespace: str) -> None:
        super().__init__(scope, id)
        _check_namespace(namespace)
        self.props = props
        self.job = api_object(
            self,
            "Job",
            api_version="batch/v1",
            kind="Job",
            metadata=cdk8s.ApiObjectMetadata(
                name=job_name(props), namespace=namespace, labels=_labels(props), annotations=_annotations()
            ),
            body={"spec": _job_spec(props)},
        )

    def add_dependency(self, *dependencies: Any) -> None:
        """Apply the Job after ``dependencies`` (cdk8s constructs or ApiObjects)."""
        self.job.add_dependency(*dependencies)


def model_fetch_job(job: ModelFetch, namespace: str) -> dict[str, Any]:
    """The ``batch/v1`` Job manifest that fetches ``job``'s model into its cache volume (outside cdk8s)."""
    _check_namespace(namespace)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(job),
            "namespace": namespace,
            "labels": _labels(job),
            "annotations": _annotations(),
        },
        "spec": _job_spec(job),
    }


def _check_namespace(namespace: str) -> None:
    with collecting("ModelFetchJob") as p:
        check_dns_label(p, "namespace", namespace)
