"""Kubernetes side of model storage: StorageClasses and static PV/PVC pairs (and, optionally, fetch Jobs).

The file systems are created by the Data stack; their ids, DNS and mount names come in as
props (CDK tokens when applied through CloudFormation, ``${...}`` placeholders in
``dist/manifests``). PersistentVolumes are *static*: bound to one claim in the serving
namespace (``claimRef``) and retained, so deleting a claim never deletes model weights.
The model-fetch Job lives in :mod:`eks_llm_stack.charts.model_fetch` (re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cdk8s
from constructs import Construct

from ..conventions import CACHE_CLAIMS, MANAGED_BY
from ..errors import collecting
from ..naming import check_dns_label
from .kube import api_object
from .model_fetch import (  # noqa: F401  (re-exported: their former home)
    CACHE_MOUNT,
    COMPLETE_MARKER,
    ModelFetch,
    ModelFetchJob,
    model_fetch_job,
)

FSX_DRIVER = "fsx.csi.aws.com"
EFS_DRIVER = "efs.csi.aws.com"


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
            ModelFetchJob(self, f"fetch-{job.name}", props=job, namespace=props.namespace)

    def _obj(
        self, cid: str, api: str, kind: str, name: str, ns: str | None, labels: dict, extra: dict[str, Any]
    ) -> cdk8s.ApiObject:
        return api_object(
            self,
            cid,
            api_version=api,
            kind=kind,
            metadata=cdk8s.ApiObjectMetadata(name=name, namespace=ns, labels=labels),
            body=extra,
        )

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
