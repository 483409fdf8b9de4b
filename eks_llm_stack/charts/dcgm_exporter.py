"""The NVIDIA DCGM exporter: a DaemonSet on every GPU node, its counters, Service and ServiceMonitor.

* Runs on GPU nodes only (node affinity on the GPU-count label, tolerating the GPU taint,
  through :func:`~eks_llm_stack.charts.kube.gpu_scheduling`), requesting no GPU.
* Exports exactly the fields of :data:`eks_llm_stack.metrics.DCGM_FIELDS` from a ConfigMap.
* Attributes each GPU to the pod using it through the kubelet pod-resources socket
  (``namespace``/``pod``/``container`` labels); the ServiceMonitor honours those labels and
  adds ``node``, ``pool``, ``capacity_type`` and ``instance_type`` from the node's labels.
* Privileges: root with ``CAP_SYS_ADMIN`` only (all other capabilities dropped) — DCGM's
  host engine refuses to watch fields otherwise, and the ``DCGM_FI_PROF_*`` profiling metrics
  need it. Its namespace therefore needs the ``privileged`` Pod Security level.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cdk8s
from constructs import Construct

from .. import versions
from ..conventions import CAPACITY_TYPE_LABEL, INSTANCE_TYPE_LABEL, MANAGED_BY, POOL_LABEL
from ..errors import collecting
from ..gates.checkov import NO_CPU_LIMIT, PINNED_TAG, PINNED_TAG_PULL, k8s_skip_annotations
from ..monitoring import metrics as m
from ..naming import check_dns_label
from ..versions import ImagePin
from .kube import GpuPlacement, api_object, gpu_scheduling
from .monitoring import MONITORING_API, check_interval, check_labels, component_relabeling

#: Where the kubelet serves the pod-resources API (which pod holds which device).
POD_RESOURCES_DIR = "/var/lib/kubelet/pod-resources"
_COUNTERS_DIR = "/etc/dcgm-exporter/eks-llm-stack"
_COUNTERS_FILE = "counters.csv"


def _node_label_source(label: str) -> str:
    """``karpenter.sh/capacity-type`` -> ``__meta_kubernetes_node_label_karpenter_sh_capacity_type``."""
    return "__meta_kubernetes_node_label_" + "".join(c if c.isalnum() else "_" for c in label)


@dataclass(frozen=True, kw_only=True)
class DcgmExporterProps:
    """The exporter.

    ``namespace`` — where it runs; needs the ``privileged`` Pod Security level (default ``monitoring``).
    ``name`` — of every object (default ``dcgm-exporter``). ``image`` — default :data:`versions.DCGM_EXPORTER`.
    ``port`` — metrics port (default 9400). ``scrape_interval`` — of the ServiceMonitor (default ``15s``).
    ``profiling_metrics`` — export the ``DCGM_FI_PROF_*`` fields (default on).
    ``pod_attribution`` — label GPU series with the pod using the GPU (default on).
    ``pool`` — only nodes of this GPU pool (default: every GPU node).
    ``cpu_request`` / ``memory_request`` / ``memory_limit`` — container resources
    (default ``100m`` / ``256Mi`` / ``1Gi``). ``monitor_labels`` — extra labels on the ServiceMonitor (default none).
    """

    namespace: str = "monitoring"
    name: str = "dcgm-exporter"
    image: ImagePin = versions.DCGM_EXPORTER
    port: int = 9400
    scrape_interval: str = "15s"
    profiling_metrics: bool = True
    pod_attribution: bool = True
    pool: str | None = None
    cpu_request: str = "100m"
    memory_request: str = "256Mi"
    memory_limit: str = "1Gi"
    monitor_labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        with collecting("DcgmExporterProps") as p:
            check_dns_label(p, "namespace", self.namespace)
            check_dns_label(p, "name", self.name)
            p.check(
                1024 <= self.port <= 65535,
                "port",
                self.port,
                "is not an unprivileged port",
                "use 1024..65535, e.g. 9400",
            )
            check_interval(p, "scrape_interval", self.scrape_interval)
            check_labels(p, "monitor_labels", self.monitor_labels)
            p.check(
                bool(self.image.repository and self.image.tag),
                "image",
                self.image,
                "has no repository or tag",
                "use an ImagePin with both, e.g. versions.DCGM_EXPORTER",
            )


class DcgmExporterChart(cdk8s.Chart):
    """ServiceAccount, counters ConfigMap, DaemonSet, Service and ServiceMonitor of the DCGM exporter."""

    def __init__(self, scope: Construct, id: str, *, props: DcgmExporterProps | None = None) -> None:
        super().__init__(scope, id, disable_resource_name_hashes=True)
        props = props or DcgmExporterProps()
        self.props = props
        labels = {**MANAGED_BY, "app.kubernetes.io/name": props.name, "app.kubernetes.io/component": "gpu-metrics"}
        selector = {"app.kubernetes.io/name": props.name}

        def meta(name: str = props.name, **extra: Any) -> cdk8s.ApiObjectMetadata:
            return cdk8s.ApiObjectMetadata(name=name, namespace=props.namespace, labels=labels, **extra)

        api_object(
            self,
            "ServiceAccount",
            api_version="v1",
            kind="ServiceAccount",
            metadata=meta(),
            # The exporter reads the kubelet socket, not the Kubernetes API: no token needed.
            body={"automountServiceAccountToken": False},
            shared_body=True,
        )
        self.config_map = api_object(
            self,
            "Counters",
            api_version="v1",
            kind="ConfigMap",
            metadata=meta(f"{props.name}-counters"),
            body={"data": {_COUNTERS_FILE: m.dcgm_counters_csv(profiling=props.profiling_metrics)}},
        )

        placement = gpu_scheduling(GpuPlacement(gpus=0, pool=props.pool))
        env: list[dict[str, Any]] = [
            {"name": "DCGM_EXPORTER_LISTEN", "value": f":{props.port}"},
            {"name": "DCGM_EXPORTER_KUBERNETES", "value": "true" if props.pod_attribution else "false"},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        ]
        # The root file system is read-only; the embedded host engine's scratch goes to /tmp.
        mounts: list[dict[str, Any]] = [
            {"name": "counters", "mountPath": _COUNTERS_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ]
        volumes: list[dict[str, Any]] = [
            {"name": "counters", "configMap": {"name": f"{props.name}-counters"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        ]
        if props.pod_attribution:
            mounts.append({"name": "pod-resources", "mountPath": POD_RESOURCES_DIR, "readOnly": True})
            volumes.append({"name": "pod-resources", "hostPath": {"path": POD_RESOURCES_DIR, "type": "Directory"}})
        probe = {"httpGet": {"path": "/health", "port": props.port}}
        container = {
            "name": "exporter",
            "image": props.image.uri,
            "args": ["-f", f"{_COUNTERS_DIR}/{_COUNTERS_FILE}"],
            "env": env,
            "ports": [{"name": "metrics", "containerPort": props.port, "protocol": "TCP"}],
            "volumeMounts": mounts,
            "resources": {
                "requests": {"cpu": props.cpu_request, "memory": props.memory_request},
                "limits": {"memory": props.memory_limit},
            },
            "securityContext": {
                # DCGM's embedded host engine must run as root with CAP_SYS_ADMIN to watch fields
                # (and to read the profiling counters). allowPrivilegeEscalation is left unset:
                # the API server rejects false together with CAP_SYS_ADMIN.
                "runAsUser": 0,
                "runAsNonRoot": False,
                "privileged": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "livenessProbe": {**probe, "initialDelaySeconds": 45, "periodSeconds": 10},
            "readinessProbe": {**probe, "initialDelaySeconds": 10, "periodSeconds": 10},
        }
        profiling = (
            "DCGM's profiling metrics need CAP_SYS_ADMIN (with it Kubernetes allows privilege escalation and the "
            "check counts root-equivalence); GPU nodes only, in the privileged monitoring-node-agents namespace, "
            "read-only root filesystem, every other capability dropped"
        )
        skips = {
            "CKV_K8S_11": NO_CPU_LIMIT,
            "CKV_K8S_15": PINNED_TAG_PULL,
            "CKV_K8S_43": PINNED_TAG,
            "CKV_K8S_20": profiling,
            "CKV_K8S_23": profiling,
            "CKV_K8S_25": profiling,
            "CKV_K8S_39": profiling,
            "CKV_K8S_40": "runs as the image's user, which DCGM's host engine socket and GPU device files expect",
        }
        self.daemon_set = api_object(
            self,
            "DaemonSet",
            api_version="apps/v1",
            kind="DaemonSet",
            metadata=meta(annotations=k8s_skip_annotations(skips)),
            body={
                "spec": {
                    "selector": {"matchLabels": selector},
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "serviceAccountName": props.name,
                            "automountServiceAccountToken": False,
                            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                            # A GPU node without its exporter is blind: evict something else first.
                            "priorityClassName": "system-node-critical",
                            **placement["pod"],
                            "containers": [container],
                            "volumes": volumes,
                        },
                    },
                }
            },
        )
        self.service = api_object(
            self,
            "Service",
            api_version="v1",
            kind="Service",
            metadata=meta(),
            body={
                "spec": {
                    "type": "ClusterIP",
                    "selector": selector,
                    # Scrapes go to the exporter of the node, never through another node.
                    "internalTrafficPolicy": "Local",
                    "ports": [{"name": "metrics", "port": props.port, "targetPort": "metrics", "protocol": "TCP"}],
                }
            },
        )
        node_relabelings = [
            {"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": m.NODE_LABEL},
            {"action": "replace", "sourceLabels": [_node_label_source(POOL_LABEL)], "targetLabel": m.POOL_LABEL},
            {
                "action": "replace",
                "sourceLabels": [_node_label_source(CAPACITY_TYPE_LABEL)],
                "targetLabel": m.CAPACITY_TYPE_LABEL,
            },
            {
                "action": "replace",
                "sourceLabels": [_node_label_source(INSTANCE_TYPE_LABEL)],
                "targetLabel": m.INSTANCE_TYPE_LABEL,
            },
            component_relabeling(m.DCGM_COMPONENT),
        ]
        self.service_monitor = api_object(
            self,
            "ServiceMonitor",
            api_version=MONITORING_API,
            kind="ServiceMonitor",
            metadata=cdk8s.ApiObjectMetadata(
                name=props.name, namespace=props.namespace, labels={**labels, **props.monitor_labels}
            ),
            body={
                "spec": {
                    "selector": {"matchLabels": selector},
                    "namespaceSelector": {"matchNames": [props.namespace]},
                    # Node labels (pool, capacity type) become target labels through the relabelings.
                    "attachMetadata": {"node": True},
                    "endpoints": [
                        {
                            "port": "metrics",
                            "path": "/metrics",
                            "interval": props.scrape_interval,
                            # Keep the exporter's namespace/pod/container: they name the pod using the GPU.
                            "honorLabels": props.pod_attribution,
                            "relabelings": node_relabelings,
                        }
                    ],
                }
            },
        )
