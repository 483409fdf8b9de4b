"""Kubernetes side of model storage: StorageClasses, static PV/PVC pairs, and model-fetch Jobs.

The file systems are created by the Data stack; their ids, DNS and mount names come in as
props (CDK tokens when applied through CloudFormation, ``${...}`` placeholders in
``dist/manifests``). PersistentVolumes are *static*: bound to one claim in the serving
namespace (``claimRef``) and retained, so deleting a claim never deletes model weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cdk8s
from constructs import Construct

from .. import versions
from ..config.data import parse_s3_path
from ..conventions import CACHE_CLAIMS, HF_TOKEN_SECRET, MANAGED_BY, POOL_LABEL, SYSTEM_NODE_LABEL
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
from .kube import gpu_tolerations, restricted_security_context, system_tolerations

FSX_DRIVER = "fsx.csi.aws.com"
EFS_DRIVER = "efs.csi.aws.com"
#: Where a fetch Job mounts the cache volume.
CACHE_MOUNT = "/cache"
#: File a fetch Job writes last; its content names the source, so a changed source re-syncs.
COMPLETE_MARKER = ".fetch-complete"


@dataclass(frozen=True, kw_only=True)
class FsxVolume:
    """The FSx for Lustre file system as a static volume.

    ``file_system_id`` / ``dns_name`` / ``mount_name`` — from the file system (tokens allowed).
    ``capacity_gib`` — its storage capacity. ``claim_name`` — PVC name (default ``model-cache-fsx``).
    """

    file_system_id: str
    dns_name: str
    mount_name: str
    capacity_gib: int
    claim_name: str = CACHE_CLAIMS["fsx"]


@dataclass(frozen=True, kw_only=True)
class EfsVolume:
    """The EFS model-cache access point as a static volume.

    ``file_system_id`` / ``access_point_id`` — from the Data stack (tokens allowed).
    ``claim_name`` — PVC name (default ``model-cache-efs``).
    """

    file_system_id: str
    access_point_id: str
    claim_name: str = CACHE_CLAIMS["efs"]


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


@dataclass(frozen=True, kw_only=True)
class StorageChartProps:
    """The storage objects of one platform.

    ``namespace`` — of the claims and Jobs. ``name_prefix`` — prefix of the cluster-scoped
    objects (StorageClasses, PVs) so two platforms can share a cluster (default ``llm``).
    ``fsx`` / ``efs`` — the volumes (default none). ``fetch_jobs`` — model-fetch Jobs (default none).
    """

    namespace: str
    name_prefix: str = "llm"
    fsx: FsxVolume | None = None
    efs: EfsVolume | None = None
    fetch_jobs: tuple[ModelFetch, ...] = ()

    def __post_init__(self) -> None:
        with collecting("StorageChartProps") as p:
            check_dns_label(p, "namespace", self.namespace)
            check_dns_label(p, "name_prefix", self.name_prefix)
            p.check(self.fsx is not None or self.efs is not None, "fsx", None, "no volume given", "pass fsx and/or efs")
            if self.fsx is not None:
                check_dns_label(p, "fsx.claim_name", self.fsx.claim_name)
                p.check(
                    self.fsx.capacity_gib > 0,
                    "fsx.capacity_gib",
                    self.fsx.capacity_gib,
                    "must be positive",
                    "use the file system's capacity",
                )
            if self.efs is not None:
                check_dns_label(p, "efs.claim_name", self.efs.claim_name)
            claims = {v.claim_name for v in (self.fsx, self.efs) if v is not None}
            for job in self.fetch_jobs:
                p.check(
                    job.claim_name in claims,
                    "fetch_jobs.claim_name",
                    job.claim_name,
                    "is not a claim of this chart",
                    f"use one of {sorted(claims)}",
                )
            names = [j.name for j in self.fetch_jobs]
            p.check(
                len(set(names)) == len(names), "fetch_jobs", names, "two jobs share a name", "name each fetch job once"
            )

    @property
    def fsx_storage_class(self) -> str:
        return f"{self.name_prefix}-fsx-lustre-static"

    @property
    def efs_storage_class(self) -> str:
        return f"{self.name_prefix}-efs"


class StorageChart(cdk8s.Chart):
    """StorageClasses, a PV/PVC pair per file system, and the model-fetch Jobs."""

    def __init__(self, scope: Construct, id: str, *, props: StorageChartProps) -> None:
        super().__init__(scope, id, disable_resource_name_hashes=True)
        self.props = props
        labels = dict(MANAGED_BY)
        if props.fsx is not None:
            v = props.fsx
            # Static volumes only: the class names the binding, it provisions nothing.
            self._obj(
                "sc-fsx",
                "storage.k8s.io/v1",
                "StorageClass",
                props.fsx_storage_class,
                None,
                labels,
                extra={
                    "provisioner": "kubernetes.io/no-provisioner",
                    "reclaimPolicy": "Retain",
                    "volumeBindingMode": "Immediate",
                },
            )
            self._volume_pair(
                "fsx",
                v.claim_name,
                f"{v.capacity_gib}Gi",
                props.fsx_storage_class,
                {
                    "driver": FSX_DRIVER,
                    "volumeHandle": v.file_system_id,
                    "volumeAttributes": {"dnsname": v.dns_name, "mountname": v.mount_name},
                },
                # flock: several vLLM replicas may take file locks on shared weights.
                mount_options=["flock"],
            )
        if props.efs is not None:
            efs = props.efs
            # Dynamic access points under the same file system, for workloads beyond the model cache.
            self._obj(
                "sc-efs",
                "storage.k8s.io/v1",
                "StorageClass",
                props.efs_storage_class,
                None,
                labels,
                extra={
                    "provisioner": EFS_DRIVER,
                    "reclaimPolicy": "Retain",
                    "volumeBindingMode": "Immediate",
                    "mountOptions": ["tls", "iam"],
                    "parameters": {
                        "provisioningMode": "efs-ap",
                        "fileSystemId": efs.file_system_id,
                        "directoryPerms": "750",
                        "basePath": "/dynamic",
                    },
                },
            )
            self._volume_pair(
                "efs",
                efs.claim_name,
                # EFS has no size; Kubernetes requires one and ignores it for NFS volumes.
                "1Ti",
                props.efs_storage_class,
                {"driver": EFS_DRIVER, "volumeHandle": f"{efs.file_system_id}::{efs.access_point_id}"},
                # The file system refuses anonymous clients: mount over TLS with the node's IAM identity.
                mount_options=["tls", "iam"],
            )
        for job in props.fetch_jobs:
            doc = model_fetch_job(job, props.namespace)
            meta = doc["metadata"]
            self._obj(
                f"fetch-{job.name}",
                doc["apiVersion"],
                doc["kind"],
                meta["name"],
                meta["namespace"],
                meta["labels"],
                extra={"spec": doc["spec"]},
            )

    def _obj(
        self, cid: str, api: str, kind: str, name: str, ns: str | None, labels: dict, extra: dict[str, Any]
    ) -> cdk8s.ApiObject:
        obj = cdk8s.ApiObject(
            self,
            cid,
            api_version=api,
            kind=kind,
            metadata=cdk8s.ApiObjectMetadata(name=name, namespace=ns, labels=labels),
        )
        # ApiObject takes only apiVersion/kind/metadata as arguments; the rest goes in as patches.
        for key, value in extra.items():
            obj.add_json_patch(cdk8s.JsonPatch.add(f"/{key}", value))
        return obj

    def _volume_pair(
        self, kind: str, claim: str, size: str, storage_class: str, csi: dict, *, mount_options: list[str]
    ) -> None:
        props = self.props
        labels = dict(MANAGED_BY)
        pv_name = f"{props.name_prefix}-{props.namespace}-{claim}"[:253]
        self._obj(
            f"pv-{kind}",
            "v1",
            "PersistentVolume",
            pv_name,
            None,
            labels,
            extra={
                "spec": {
                    "capacity": {"storage": size},
                    "volumeMode": "Filesystem",
                    "accessModes": ["ReadWriteMany"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": storage_class,
                    "mountOptions": mount_options,
                    # Pre-bound: no other claim can take this volume.
                    "claimRef": {"namespace": props.namespace, "name": claim},
                    "csi": csi,
                }
            },
        )
        self._obj(
            f"pvc-{kind}",
            "v1",
            "PersistentVolumeClaim",
            claim,
            props.namespace,
            labels,
            extra={
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "storageClassName": storage_class,
                    "volumeName": pv_name,
                    "resources": {"requests": {"storage": size}},
                }
            },
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


def model_fetch_job(job: ModelFetch, namespace: str) -> dict[str, Any]:
    """The ``batch/v1`` Job manifest that fetches ``job``'s model into its cache volume."""
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
    labels = {**MANAGED_BY, "app.kubernetes.io/name": "model-fetch", "app.kubernetes.io/instance": job.name}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"fetch-{job.name}"[:63],
            "namespace": namespace,
            "labels": labels,
            "annotations": k8s_skip_annotations(
                {
                    "CKV_K8S_11": NO_CPU_LIMIT,
                    "CKV_K8S_15": PINNED_TAG_PULL,
                    "CKV_K8S_43": PINNED_TAG,
                    "CKV_K8S_35": HF_TOKEN_ENV,
                    "CKV_K8S_40": NON_ROOT_CACHE_UID,
                }
            ),
        },
        "spec": {
            # Each retry resumes the copy; six attempts ride out throttling and node replacement.
            "backoffLimit": 6,
            "activeDeadlineSeconds": 6 * 3600,
            "ttlSecondsAfterFinished": 24 * 3600,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }
