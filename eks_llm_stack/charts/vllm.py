"""One model served by vLLM: a Deployment (one node per replica) or a LeaderWorkerSet (several).

``VllmModel(chart, "llama", props=VllmModelProps(...))`` adds to any cdk8s chart:

* the workload — a ``Deployment`` when a replica fits one node, a ``LeaderWorkerSet``
  (``leaderworkerset.x-k8s.io/v1``) when it spans nodes: tensor parallel inside each node,
  pipeline parallel across them, vLLM's native multi-node launch (``--nnodes``/``--node-rank``/
  ``--master-addr``; workers ``--headless``: the 0.29.0 image has no Ray), EFA for NCCL;
* a ``ClusterIP`` Service on port 8000 (the OpenAI-compatible API; leader pods only);
* a ``PodDisruptionBudget`` (one pod, or one multi-node group, disrupted at a time);
* the ``ServiceAccount`` the pods run as (EKS Pod Identity attaches S3 read to it for s3:// sources).

Pods are spot-safe: a preStop hook waits until vLLM has no running or waiting request (the
Service stopped sending new ones when the pod began terminating), within a grace period that
fits the two-minute spot notice. The startup probe gives the model load up to
``startup_seconds``; the liveness probe only starts after it, so a loading pod is never killed.

Security: the restricted Pod Security level. vLLM runs as uid 1000 with a read-only root file
system; what it must write (``$HOME``, the Hugging Face, Triton, FlashInfer and torch.compile
caches) goes to a ``/tmp`` emptyDir, and NCCL/PyTorch shared memory
to a memory-backed ``/dev/shm``. No capability is added: GPUs and EFA devices come from the
device plugins.
"""

from __future__ import annotations

import math
import shlex
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import cdk8s
import jsii
from constructs import Construct, IValidation

from .. import versions
from ..conventions import (
    CAPACITY_TYPE_LABEL,
    HF_TOKEN_SECRET,
    HOST_MEMORY_RESERVE_GIB,
    MANAGED_BY,
    MODEL_UID,
    SYSTEM_NODE_LABEL,
    VLLM_MULTINODE_PORT,
    VLLM_PORT,
    VLLM_PORT_NAME,
    ZONE_LABEL,
)
from ..errors import collecting
from ..gates.checkov import (
    HF_TOKEN_ENV,
    NO_CPU_LIMIT,
    NON_ROOT_CACHE_UID,
    PINNED_TAG,
    PINNED_TAG_PULL,
    k8s_skip_annotations,
)
from ..naming import check_dns_label
from .kube import (
    named_object,
    pool_scheduling,
    restricted_security_context,
    system_tolerations,
)
from .model_auth import api_key_pod_parts, auth_config_map
from .model_ingress import ModelIngress, model_ingress
from .vllm_scripts import ENDPOINT_PROPAGATION_SECONDS, MULTINODE, WAIT_FOR_FETCH, drain_script

#: Port of vLLM's OpenAI-compatible server and its name (:mod:`eks_llm_stack.conventions`).
PORT = VLLM_PORT
PORT_NAME = VLLM_PORT_NAME
#: Where the weights are mounted or downloaded.
MODELS_DIR = "/models"
#: The writable scratch directory ($HOME and every cache).
SCRATCH_DIR = "/tmp"
#: uid/gid vLLM runs as; also the owner of the EFS model-cache access point by default.
RUN_AS = MODEL_UID
#: Label with the model name on every object and pod.
MODEL_LABEL = "eks-llm-stack.io/model"
#: Label telling leader pods (which serve the API) from worker pods of a multi-node model.
ROLE_LABEL = "eks-llm-stack.io/role"
#: File a model-fetch Job writes last (see :mod:`eks_llm_stack.charts.storage`).
FETCH_MARKER = ".fetch-complete"
#: Seconds left after the preStop hook for vLLM to exit on SIGTERM.
SHUTDOWN_SECONDS = 10
#: The rendezvous port on the leader of a multi-node group (``--master-port``).
MULTINODE_PORT = VLLM_MULTINODE_PORT
#: Environment the LeaderWorkerSet controller sets in every pod of a group: the group size, the
#: pod's index in it (0 on the leader) and the leader's stable DNS name.
LWS_GROUP_SIZE_ENV = "LWS_GROUP_SIZE"
LWS_WORKER_INDEX_ENV = "LWS_WORKER_INDEX"
LWS_LEADER_ADDRESS_ENV = "LWS_LEADER_ADDRESS"
#: Share of host memory the pods of a GPU node may request, besides the reserve
#: (``conventions.HOST_MEMORY_RESERVE_GIB``) kept for the kubelet, the OS and daemon sets.
HOST_MEMORY_SHARE = 0.9
HOST_CPU_RESERVE = 1.0

Engine = Literal["vllm", "simulator"]


@dataclass(frozen=True, kw_only=True)
class WeightsFromClaim:
    """Weights on a PersistentVolumeClaim of the namespace, mounted read-only.

    ``claim_name`` — the claim. ``path`` — directory inside it (default ``""``: its root).
    ``wait_for_fetch`` — wait until a model-fetch Job has written its marker there (default False).
    """

    claim_name: str
    path: str = ""
    wait_for_fetch: bool = False


@dataclass(frozen=True, kw_only=True)
class WeightsFromS3:
    """Weights copied from S3 at every start into node-local scratch (no shared cache).

    ``uri`` — ``s3://bucket/prefix``. ``size_gib`` — scratch to reserve (default 100).
    The pod's service account needs S3 read (the Serving stack attaches it with Pod Identity).
    """

    uri: str
    size_gib: int = 100


@dataclass(frozen=True, kw_only=True)
class WeightsFromHub:
    """Weights downloaded from the Hugging Face Hub by vLLM itself, at every start.

    ``repo`` — ``org/model``. ``revision`` — branch, tag or commit (default ``main``; pin a
    commit for reproducible weights). ``size_gib`` — scratch to reserve (default 100).
    """

    repo: str
    revision: str = "main"
    size_gib: int = 100


Weights = WeightsFromClaim | WeightsFromS3 | WeightsFromHub


def node_share(*, vcpus: int, memory_gib: float, gpus: int, gpu_count: int) -> tuple[float, int]:
    """CPU cores and memory (GiB) to request for ``gpus`` of a node's ``gpu_count`` GPUs.

    The node's allocatable share in proportion to the GPUs taken, after what the kubelet,
    the OS and daemon sets keep; a pod taking every GPU gets nearly the whole node.
    """
    share = gpus / gpu_count
    cpu = max(1.0, math.floor((vcpus - HOST_CPU_RESERVE) * share * 0.9 * 10) / 10)
    memory = max(2, math.floor((memory_gib * HOST_MEMORY_SHARE - HOST_MEMORY_RESERVE_GIB) * share))
    return cpu, memory


def shm_gib_for(tensor_parallel_size: int, pipeline_parallel_size: int = 1) -> int:
    """``/dev/shm`` for NCCL and PyTorch worker processes: 1 GiB alone, 2 GiB per GPU when they talk (max 16)."""
    if tensor_parallel_size * pipeline_parallel_size == 1:
        return 1
    return min(16, 2 * tensor_parallel_size)


@dataclass(frozen=True, kw_only=True)
class VllmModelProps:
    """One served model.

    ``name`` — Deployment / Service / served model name (DNS label, at most 40 characters).
    ``namespace`` — of every object (required). ``engine`` — vllm (default) or simulator (the
    library's CPU-only stand-in, for clusters without GPUs). ``weights`` — where the weights are
    (required for vllm; ignored by the simulator). ``image`` — default the pinned
    ``vllm/vllm-openai`` (vllm) or the project's own image (simulator).
    ``args`` — vLLM engine arguments (the sizing engine's ``Plan.vllm_args``; default none).
    ``tensor_parallel_size`` — GPUs requested per pod (default 1). ``pipeline_parallel_size`` —
    nodes per replica; above 1 the model is a LeaderWorkerSet (default 1).
    ``efa_interfaces`` — EFA interfaces per pod (default 0; multi-node models need them).
    ``pools`` / ``instance_type`` — the GPU pools (any of them) and the instance type to run on
    (default any).
    ``cpu`` / ``memory_gib`` — requests per pod (default: from ``instance_type`` through
    :func:`node_share`, else 4 cores / 16 GiB; the simulator 0.5 / 1 GiB). Memory is also the limit.
    ``shm_gib`` — ``/dev/shm`` size (default :func:`shm_gib_for`). ``replicas`` — initial
    replicas (default 1; ``None`` leaves the count to an autoscaler).
    ``hf_token_secret`` / ``hf_token_key`` — Secret with the Hugging Face token (default
    ``huggingface-token`` / ``token``, optional in the pod: public models need none; ``None`` for no token).
    ``termination_grace_seconds`` — default 110, inside the 120-second spot notice.
    ``startup_seconds`` — longest model load (default 1800; simulator 120).
    ``ingress`` — a load balancer in front of the Service (default none: ClusterIP only).
    ``labels`` — extra labels on every object and pod (default none).
    ``api_key_secret`` — Secret holding the model's API key (key ``api-key``), mounted as a file and
    required by the API-key middleware on every path but health and metrics (default ``None``: no key;
    vllm engine only).
    """

    name: str
    namespace: str
    engine: Engine = "vllm"
    weights: Weights | None = None
    image: str | None = None
    args: tuple[str, ...] = ()
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    efa_interfaces: int = 0
    pools: tuple[str, ...] = ()
    instance_type: str | None = None
    cpu: float | None = None
    memory_gib: int | None = None
    shm_gib: int | None = None
    replicas: int | None = 1
    hf_token_secret: str | None = HF_TOKEN_SECRET
    hf_token_key: str = "token"
    termination_grace_seconds: int = 110
    startup_seconds: int | None = None
    ingress: ModelIngress | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    api_key_secret: str | None = None

    def __post_init__(self) -> None:
        with collecting(f"VllmModelProps '{self.name}'") as p:
            if check_dns_label(p, "name", self.name):
                p.check(
                    len(self.name) <= 40,
                    "name",
                    self.name,
                    "is longer than 40 characters",
                    "shorten it: pod and StatefulSet names are derived from it",
                )
            check_dns_label(p, "namespace", self.namespace)
            p.check(
                self.engine in ("vllm", "simulator"), "engine", self.engine, "is not an engine", "use vllm or simulator"
            )
            if self.engine == "vllm":
                p.check(
                    self.weights is not None,
                    "weights",
                    None,
                    "is required for engine vllm",
                    "pass WeightsFromClaim, WeightsFromS3 or WeightsFromHub",
                )
            for name in ("tensor_parallel_size", "pipeline_parallel_size"):
                value = getattr(self, name)
                p.check(
                    isinstance(value, int) and value >= 1,
                    name,
                    value,
                    "must be a whole number of at least 1",
                    f"use {name}=1 or more",
                )
            p.check(
                self.efa_interfaces >= 0, "efa_interfaces", self.efa_interfaces, "must not be negative", "use 0 or more"
            )
            if self.engine == "simulator":
                p.check(
                    self.tensor_parallel_size == 1 and self.pipeline_parallel_size == 1,
                    "engine",
                    self.engine,
                    "the simulator runs on CPU, in one pod per replica",
                    "use tensor_parallel_size=1 and pipeline_parallel_size=1",
                )
            if self.pipeline_parallel_size > 1:
                p.check(
                    self.efa_interfaces > 0,
                    "efa_interfaces",
                    self.efa_interfaces,
                    "a multi-node model needs EFA between its nodes",
                    "run it on an EFA pool and pass that instance's EFA interface count",
                )
            if self.replicas is not None:
                p.check(
                    self.replicas >= 0,
                    "replicas",
                    self.replicas,
                    "must not be negative",
                    "use 0 or more, or None for an autoscaler",
                )
            p.check(
                10 <= self.termination_grace_seconds <= 3600,
                "termination_grace_seconds",
                self.termination_grace_seconds,
                "is outside 10-3600",
                "use 110 on spot (inside the 2-minute notice)",
            )
            if self.startup_seconds is not None:
                p.check(
                    self.startup_seconds >= 30,
                    "startup_seconds",
                    self.startup_seconds,
                    "is too short to load a model",
                    "use at least 30",
                )
            if self.cpu is not None:
                p.check(self.cpu > 0, "cpu", self.cpu, "must be positive", "request at least 0.1 cores")
            if self.memory_gib is not None:
                p.check(
                    self.memory_gib >= 1, "memory_gib", self.memory_gib, "must be at least 1", "request at least 1 GiB"
                )
            if self.shm_gib is not None:
                p.check(self.shm_gib >= 1, "shm_gib", self.shm_gib, "must be at least 1", "use 1 GiB or more")
            if self.hf_token_secret is not None:
                check_dns_label(p, "hf_token_secret", self.hf_token_secret)
            if self.api_key_secret is not None:
                check_dns_label(p, "api_key_secret", self.api_key_secret)
                p.check(
                    self.engine == "vllm",
                    "api_key_secret",
                    self.api_key_secret,
                    "the simulator takes no API key",
                    "use engine vllm, or no api_key_secret",
                )
            if isinstance(self.weights, WeightsFromClaim):
                check_dns_label(p, "weights.claim_name", self.weights.claim_name)
                p.check(
                    ".." not in self.weights.path.split("/") and not self.weights.path.startswith("/"),
                    "weights.path",
                    self.weights.path,
                    "is not a relative directory inside the claim",
                    "write e.g. models/llama-3-8b",
                )
            if isinstance(self.weights, WeightsFromS3):
                p.check(
                    self.weights.uri.startswith("s3://"),
                    "weights.uri",
                    self.weights.uri,
                    "is not an S3 URI",
                    "write s3://bucket/prefix",
                )
            if self.instance_type is not None:
                from ..catalog import INSTANCES

                inst = INSTANCES.get(self.instance_type)
                if p.check(
                    inst is not None,
                    "instance_type",
                    self.instance_type,
                    "is not in the GPU instance catalog",
                    "use a catalog type such as g6e.xlarge",
                ):
                    assert inst is not None
                    p.check(
                        self.tensor_parallel_size <= inst.gpu_count,
                        "tensor_parallel_size",
                        self.tensor_parallel_size,
                        f"is larger than the {inst.gpu_count} GPUs of {inst.name}",
                        f"use at most {inst.gpu_count}, or a larger instance",
                    )
                    if self.efa_interfaces:
                        p.check(
                            self.efa_interfaces <= inst.max_efa_interfaces,
                            "efa_interfaces",
                            self.efa_interfaces,
                            f"is more than the {inst.max_efa_interfaces} EFA interfaces of {inst.name}",
                            f"use at most {inst.max_efa_interfaces}",
                        )

    # -- derived ---------------------------------------------------------------------------

    @property
    def multi_node(self) -> bool:
        return self.pipeline_parallel_size > 1

    @property
    def gpus(self) -> int:
        return 0 if self.engine == "simulator" else self.tensor_parallel_size

    @property
    def effective_image(self) -> str:
        if self.image is not None:
            return self.image
        if self.engine != "vllm":
            return versions.BENCH_HARNESS_IMAGE.uri
        # The stock vllm/vllm-openai image has neither libfabric nor aws-ofi-nccl: on EFA, NCCL
        # would silently fall back to TCP while the pod holds every EFA interface.
        return versions.VLLM_EFA_IMAGE.uri if self.efa_interfaces > 0 else versions.VLLM_IMAGE.uri

    @property
    def effective_startup_seconds(self) -> int:
        if self.startup_seconds is not None:
            return self.startup_seconds
        return 1800 if self.engine == "vllm" else 120

    @property
    def effective_shm_gib(self) -> int:
        return (
            self.shm_gib
            if self.shm_gib is not None
            else shm_gib_for(self.tensor_parallel_size, self.pipeline_parallel_size)
        )

    def requests(self) -> tuple[float, int]:
        """(CPU cores, memory GiB) per pod."""
        if self.engine == "simulator":
            return self.cpu or 0.5, self.memory_gib or 1
        cpu, memory = 4.0, 16
        if self.instance_type is not None:
            from ..catalog import get_instance

            inst = get_instance(self.instance_type)
            cpu, memory = node_share(
                vcpus=inst.vcpus, memory_gib=inst.memory_gib, gpus=self.tensor_parallel_size, gpu_count=inst.gpu_count
            )
        return (self.cpu if self.cpu is not None else cpu), (self.memory_gib if self.memory_gib is not None else memory)

    @property
    def selector_labels(self) -> dict[str, str]:
        """Labels that select this model's pods (and only them)."""
        return {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": self.name}

    @property
    def pod_labels(self) -> dict[str, str]:
        return {
            **dict(self.labels),
            **MANAGED_BY,
            **self.selector_labels,
            "app.kubernetes.io/component": "model-server",
            MODEL_LABEL: self.name,
        }

    @property
    def workload_name(self) -> str:
        """Deployment name (= ``name``), or LeaderWorkerSet name (``<name>-group``: LWS names its own
        headless Service after itself, and ``<name>`` is the API Service)."""
        return f"{self.name}-group" if self.multi_node else self.name


# -- scripts --------------------------------------------------------------------------------


class VllmModel(Construct):
    """A served model (see the module docstring). Public attributes: ``props``, ``workload``
    (the Deployment or LeaderWorkerSet), ``service``, ``pdb``, ``service_account``, ``ingress``
    (the Ingress or LoadBalancer Service, or None)."""

    def __init__(self, scope: Construct, id: str, *, props: VllmModelProps) -> None:
        super().__init__(scope, id)
        self.props = props
        labels = {**dict(props.labels), **MANAGED_BY, **props.selector_labels, MODEL_LABEL: props.name}
        self.service_account = named_object(
            self,
            "ServiceAccount",
            "v1",
            "ServiceAccount",
            props.name,
            props.namespace,
            labels,
            # vLLM never calls the Kubernetes API: no token in the pod.
            {"automountServiceAccountToken": False},
            shared_body=True,
        )
        if props.multi_node:
            self.workload = named_object(
                self,
                "Workload",
                "leaderworkerset.x-k8s.io/v1",
                "LeaderWorkerSet",
                props.workload_name,
                props.namespace,
                labels,
                {"spec": self._lws_spec()},
            )
        else:
            self.workload = named_object(
                self,
                "Workload",
                "apps/v1",
                "Deployment",
                props.name,
                props.namespace,
                labels,
                {"spec": self._deployment_spec()},
                annotations=k8s_skip_annotations(
                    {
                        "CKV_K8S_11": NO_CPU_LIMIT,
                        "CKV_K8S_15": PINNED_TAG_PULL,
                        "CKV_K8S_43": PINNED_TAG,
                        "CKV_K8S_35": HF_TOKEN_ENV,
                        "CKV_K8S_40": NON_ROOT_CACHE_UID,
                    }
                ),
            )
        selector = dict(props.selector_labels)
        if props.multi_node:
            selector[ROLE_LABEL] = "leader"
        self.service = named_object(
            self,
            "Service",
            "v1",
            "Service",
            props.name,
            props.namespace,
            labels,
            {
                "spec": {
                    "type": "ClusterIP",
                    "selector": selector,
                    "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
                }
            },
        )
        # One pod (or, for a multi-node model, one group: losing any pod restarts its group) at a
        # time. maxUnavailable rather than minAvailable, so a single replica can still be drained
        # by Karpenter for consolidation or a spot interruption instead of blocking it forever.
        self.pdb = named_object(
            self,
            "Pdb",
            "policy/v1",
            "PodDisruptionBudget",
            props.name,
            props.namespace,
            labels,
            {"spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(props.selector_labels)}}},
        )
        self.ingress = (
            model_ingress(
                self, props.ingress, name=props.name, namespace=props.namespace, labels=labels, selector=selector
            )
            if props.ingress is not None
            else None
        )
        self.auth_config: cdk8s.ApiObject | None = None
        if props.api_key_secret is not None:
            self.auth_config = auth_config_map(
                self, "AuthConfig", model=props.name, namespace=props.namespace, labels=labels
            )

    # -- workloads -------------------------------------------------------------------------

    def _deployment_spec(self) -> dict[str, Any]:
        p = self.props
        spec: dict[str, Any] = {
            "selector": {"matchLabels": dict(p.selector_labels)},
            # A replacement must be ready before the old pod goes: a model takes minutes to load.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "progressDeadlineSeconds": p.effective_startup_seconds + 600,
            "template": {"metadata": {"labels": p.pod_labels}, "spec": self.pod_spec("server")},
        }
        if p.replicas is not None:
            spec["replicas"] = p.replicas
        return spec

    def _lws_spec(self) -> dict[str, Any]:
        p = self.props
        spec: dict[str, Any] = {
            "startupPolicy": "LeaderCreated",
            "networkConfig": {"subdomainPolicy": "Shared"},
            # Replace one group at a time, with no extra group: a surge would need a whole placement group more.
            "rolloutStrategy": {
                "type": "RollingUpdate",
                "rollingUpdateConfiguration": {"maxUnavailable": 1, "maxSurge": 0},
            },
            "leaderWorkerTemplate": {
                "size": p.pipeline_parallel_size,
                # NCCL communicators do not survive a lost peer: restart the whole group.
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": {
                    "metadata": {"labels": {**p.pod_labels, ROLE_LABEL: "leader"}},
                    "spec": self.pod_spec("leader"),
                },
                "workerTemplate": {
                    "metadata": {"labels": {**p.pod_labels, ROLE_LABEL: "worker"}},
                    "spec": self.pod_spec("worker"),
                },
            },
        }
        if p.replicas is not None:
            spec["replicas"] = p.replicas
        return spec

    # -- pods ------------------------------------------------------------------------------

    def serve_command(self, role: Literal["server", "leader", "worker"] = "server") -> list[str]:
        """``vllm serve <model> ...`` with the served name, the port and the engine arguments.

        For a multi-node group (``leader`` / ``worker``) it adds vLLM's native launch, from the
        variables LeaderWorkerSet sets in every pod (left as ``$VAR`` for the pod's shell):
        ``--nnodes $LWS_GROUP_SIZE --node-rank $LWS_WORKER_INDEX --master-addr $LWS_LEADER_ADDRESS
        --master-port`` :data:`MULTINODE_PORT` ``--distributed-executor-backend mp``, and
        ``--headless`` on workers (no API server; the leader's engine drives them).
        """
        p = self.props
        w = p.weights
        if isinstance(w, WeightsFromHub):
            model, extra = w.repo, ["--revision", w.revision]
        elif isinstance(w, WeightsFromClaim):
            model, extra = "/".join(x for x in (MODELS_DIR, w.path) if x), []
        else:
            model, extra = MODELS_DIR, []
        cmd = ["vllm", "serve", model, "--served-model-name", p.name, "--host", "0.0.0.0", "--port", str(PORT), *extra]
        if p.multi_node and role != "server":
            cmd += [
                "--nnodes",
                f"${LWS_GROUP_SIZE_ENV}",
                "--node-rank",
                f"${LWS_WORKER_INDEX_ENV}",
                "--master-addr",
                f"${LWS_LEADER_ADDRESS_ENV}",
                "--master-port",
                str(MULTINODE_PORT),
                "--distributed-executor-backend",
                "mp",
            ]
            if role == "worker":
                cmd.append("--headless")
        if p.api_key_secret is not None and role != "worker":
            # Headless workers serve no API: only the pods that do check the key.
            cmd += self._auth()["args"]
        return [*cmd, *p.args]

    def _auth(self) -> dict[str, Any]:
        assert self.props.api_key_secret is not None
        return api_key_pod_parts(model=self.props.name, secret_name=self.props.api_key_secret)

    def multinode_script(self, role: Literal["leader", "worker"]) -> str:
        """The ``bash -c`` program of a leader or worker pod: ``exec vllm serve ...`` with the
        LeaderWorkerSet variables expanded by the shell (quoted: no word splitting)."""
        words = [f'"{w}"' if w.startswith("$") else shlex.quote(w) for w in self.serve_command(role)]
        return MULTINODE.format(
            rank_doc="0 (leader)" if role == "leader" else "$LWS_WORKER_INDEX",
            port=MULTINODE_PORT,
            serve=" ".join(words),
        )

    def pod_spec(self, role: Literal["server", "leader", "worker"]) -> dict[str, Any]:
        p = self.props
        serves = role != "worker"
        container: dict[str, Any] = {
            "name": "vllm" if p.engine == "vllm" else "simulator",
            "image": p.effective_image,
            "env": self._env(),
            "securityContext": restricted_security_context(uid=RUN_AS),
            "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH_DIR}],
        }
        if p.engine == "simulator":
            # The project's image carries the simulator: nothing is installed at pod start.
            container["command"] = ["eks-llm-stack", "simulate", "--host", "0.0.0.0", "--port", str(PORT)]
            container["args"] = ["--model", p.name]
        elif role == "server":
            container["command"] = self.serve_command()
        else:
            container["command"] = ["/bin/bash", "-c", self.multinode_script(role)]
        if serves:
            container["ports"] = [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}]
            container.update(self._probes())
            budget = p.termination_grace_seconds - SHUTDOWN_SECONDS - ENDPOINT_PROPAGATION_SECONDS
            container["lifecycle"] = {
                "preStop": {"exec": {"command": ["python3", "-c", drain_script(budget=max(budget, 0))]}}
            }
        cpu, memory = p.requests()
        volumes: list[dict[str, Any]] = [{"name": "scratch", "emptyDir": {"sizeLimit": "20Gi"}}]
        if p.engine == "vllm":
            container["volumeMounts"].append({"name": "shm", "mountPath": "/dev/shm"})
            # Memory-backed: it counts against the pod's memory, which is why requests leave room for it.
            volumes.append({"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{p.effective_shm_gib}Gi"}})
        if p.api_key_secret is not None and serves:
            auth = self._auth()
            volumes += auth["volumes"]
            container["volumeMounts"] += auth["mounts"]
            container["env"] += auth["env"]
        init: list[dict[str, Any]] = []
        w = p.weights if p.engine == "vllm" else None
        if isinstance(w, WeightsFromClaim):
            volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": w.claim_name, "readOnly": True}})
            container["volumeMounts"].append({"name": "models", "mountPath": MODELS_DIR, "readOnly": True})
            if w.wait_for_fetch and serves:
                target = "/".join(x for x in (MODELS_DIR, w.path) if x)
                init.append(
                    self._helper(
                        "wait-for-weights",
                        p.effective_image,
                        WAIT_FOR_FETCH.format(marker=f"{target}/{FETCH_MARKER}", path=target),
                        True,
                    )
                )
        elif isinstance(w, (WeightsFromS3, WeightsFromHub)):
            volumes.append({"name": "models", "emptyDir": {"sizeLimit": f"{w.size_gib}Gi"}})
            container["volumeMounts"].append(
                {"name": "models", "mountPath": MODELS_DIR, "readOnly": isinstance(w, WeightsFromS3)}
            )
            if isinstance(w, WeightsFromS3) and serves:
                sync = f"aws s3 sync {shlex.quote(w.uri)} {MODELS_DIR} --no-progress --only-show-errors"
                init.append(self._helper("fetch-weights", versions.AWS_CLI_IMAGE.uri, f"set -eu\n{sync}\n", False))
        resources: dict[str, Any] = {
            "requests": {"cpu": f"{cpu:g}", "memory": f"{memory}Gi"},
            "limits": {"memory": f"{memory}Gi"},
        }
        pod: dict[str, Any] = {
            "serviceAccountName": p.name,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": p.termination_grace_seconds,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUN_AS,
                "runAsGroup": RUN_AS,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        }
        if p.engine == "vllm":
            sched = pool_scheduling(
                gpus=p.gpus,
                efa=p.efa_interfaces,
                pools=p.pools,
                instance_types=(p.instance_type,) if p.instance_type else (),
            )
            pod.update(sched["pod"])
            for kind in ("limits", "requests"):
                resources[kind].update(sched["resources"].get(kind, {}))
        else:
            # CPU only: the system node group (the only nodes of a cluster without GPU pools).
            pod["nodeSelector"] = {SYSTEM_NODE_LABEL: "true"}
            pod["tolerations"] = system_tolerations()
        container["resources"] = resources
        if not p.multi_node:
            # Replicas across zones and across spot / on-demand, so one zone outage or one spot
            # reclaim wave takes out one replica, not all. ScheduleAnyway: GPU capacity is
            # scarce and a skewed replica beats a pending one. (A multi-node group sits in its
            # pool's placement group, in one zone by construction.)
            pod["topologySpreadConstraints"] = [
                {
                    "maxSkew": 1,
                    "topologyKey": key,
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": dict(p.selector_labels)},
                }
                for key in (ZONE_LABEL, CAPACITY_TYPE_LABEL)
            ]
        pod["containers"] = [container]
        if init:
            pod["initContainers"] = init
        pod["volumes"] = volumes
        return pod

    def _helper(self, name: str, image: str, script: str, read_only: bool) -> dict[str, Any]:
        return {
            "name": name,
            "image": image,
            "command": ["/bin/sh", "-c", script],
            "env": [{"name": "HOME", "value": SCRATCH_DIR}],
            "securityContext": restricted_security_context(uid=RUN_AS),
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
            "volumeMounts": [
                {"name": "models", "mountPath": MODELS_DIR, "readOnly": read_only},
                {"name": "scratch", "mountPath": SCRATCH_DIR},
            ],
        }

    def _env(self) -> list[dict[str, Any]]:
        p = self.props
        env: list[dict[str, Any]] = [
            # Read-only root file system: every cache goes to the scratch emptyDir.
            {"name": "HOME", "value": SCRATCH_DIR},
            {"name": "XDG_CACHE_HOME", "value": f"{SCRATCH_DIR}/.cache"},
            {"name": "HF_HOME", "value": f"{SCRATCH_DIR}/hf"},
            {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
            {"name": "DO_NOT_TRACK", "value": "1"},
        ]
        if p.engine != "vllm":
            return env
        if isinstance(p.weights, WeightsFromHub):
            env.append({"name": "HF_HUB_CACHE", "value": MODELS_DIR})
        else:
            # The weights are local: never reach out to the Hub.
            env.append({"name": "HF_HUB_OFFLINE", "value": "1"})
        if p.hf_token_secret is not None:
            env.append(
                {
                    "name": "HF_TOKEN",
                    # From the Secret External Secrets keeps in sync; optional so public models start without it.
                    "valueFrom": {"secretKeyRef": {"name": p.hf_token_secret, "key": p.hf_token_key, "optional": True}},
                }
            )
        if p.multi_node:
            env.append({"name": "VLLM_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
        if p.efa_interfaces > 0:
            env += [
                # NCCL over EFA through libfabric and the aws-ofi-nccl plugin of the EFA image.
                {"name": "FI_PROVIDER", "value": "efa"},
                {"name": "FI_EFA_USE_DEVICE_RDMA", "value": "1"},
                {"name": "FI_EFA_FORK_SAFE", "value": "1"},
                # INFO for the network subsystems only: the smoke test reads "NET/OFI" from this log
                # (and fails on a fallback to NET/Socket).
                {"name": "NCCL_DEBUG", "value": "INFO"},
                {"name": "NCCL_DEBUG_SUBSYS", "value": "INIT,NET"},
            ]
        return env

    def _probes(self) -> dict[str, Any]:
        p = self.props
        http = {"path": "/health", "port": PORT_NAME}
        period = 10
        return {
            # Up to startup_seconds to load weights, compile and capture CUDA graphs.
            "startupProbe": {
                "httpGet": http,
                "periodSeconds": period,
                "timeoutSeconds": 5,
                "failureThreshold": math.ceil(p.effective_startup_seconds / period),
            },
            "readinessProbe": {"httpGet": http, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 3},
            # Only after the startup probe passed; a minute of failures means a wedged engine.
            "livenessProbe": {"httpGet": http, "periodSeconds": 15, "timeoutSeconds": 5, "failureThreshold": 4},
        }


@jsii.implements(IValidation)
class _NamespaceInApp:
    """Synth-time check: each model chart's namespace is created by some chart of the same cdk8s app.

    One check per cdk8s app, for all its model charts (:meth:`expect`), and the namespaces it found are
    kept: cdk8s validates the whole app at every chart's ``to_json()``, so one check per chart, each
    scanning the app, made ``dist/manifests`` quadratic in the number of models.
    """

    def __init__(self, app: cdk8s.App) -> None:
        self._app = app
        self._expected: list[tuple[str, str]] = []
        self._found: set[str] = set()

    @classmethod
    def expect(
        cls, chart: cdk8s.Chart, namespace: str, *, scope: Construct | None = None, id: str | None = None
    ) -> None:
        """Check at synth that ``namespace`` is created in ``chart``'s app.

        ``scope`` / ``id`` — what the chart was created with, when the caller has them: a chart made
        directly in an app needs no ``App.of`` nor ``node.id`` round trip to the Node.js runtime.
        """
        app = scope if isinstance(scope, cdk8s.App) else cdk8s.App.of(chart)
        check = _NAMESPACE_CHECKS.get(app)
        if check is None:
            check = _NAMESPACE_CHECKS[app] = cls(app)
            app.node.add_validation(check)
        check._expected.append((id if id is not None else chart.node.id, namespace))

    def validate(self) -> list[str]:
        if any(ns not in self._found for _, ns in self._expected):
            # Namespaces are only ever added: rescan only when one is still missing.
            self._found = {
                c.name for c in self._app.node.find_all() if isinstance(c, cdk8s.ApiObject) and c.kind == "Namespace"
            }
        return [
            f"model chart '{chart}': no Namespace '{namespace}' in this cdk8s app, so its "
            "objects cannot be applied — fix: add NamespacesChart(app, 'namespaces', props=NamespacesChartProps("
            f"namespaces=(NamespaceSpec(name='{namespace}'),))) (from eks_llm_stack.charts) to the same app, "
            "or pass external_namespace=True if the namespace is created elsewhere"
            for chart, namespace in self._expected
            if namespace not in self._found
        ]


#: The one namespace check of each cdk8s app (weak: an app and its check go together).
_NAMESPACE_CHECKS: weakref.WeakKeyDictionary[cdk8s.App, _NamespaceInApp] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, kw_only=True)
class VllmChartProps:
    """A chart holding one model (``model``) and, optionally, what goes with it.

    ``extra`` — further manifests (dicts) to include, e.g. a model-fetch Job (default none).
    ``external_namespace`` — the model's namespace is created outside this cdk8s app (default False: a
    Namespace of that name must be in the same app, e.g. a :class:`~eks_llm_stack.charts.NamespacesChart`;
    checked when the chart is synthesized).
    """

    model: VllmModelProps
    extra: tuple[Mapping[str, Any], ...] = ()
    external_namespace: bool = False


class VllmChart(cdk8s.Chart):
    """A cdk8s chart with one :class:`VllmModel` (``.model``) and ``props.extra`` manifests."""

    def __init__(self, scope: Construct, id: str, *, props: VllmChartProps) -> None:
        super().__init__(scope, id, disable_resource_name_hashes=True)
        self.model = VllmModel(self, "Model", props=props.model)
        if not props.external_namespace:
            _NamespaceInApp.expect(self, props.model.namespace, scope=scope, id=id)
        for i, doc in enumerate(props.extra):
            meta = doc.get("metadata", {})
            named_object(
                self,
                f"Extra{i}",
                doc["apiVersion"],
                doc["kind"],
                meta["name"],
                meta.get("namespace"),
                meta.get("labels", {}),
                {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")},
            )
