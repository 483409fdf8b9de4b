"""What every chart needs from Kubernetes, in one place.

- :func:`api_object` / :func:`named_object` — a raw ``ApiObject`` with its body (cdk8s' Python
  ``ApiObject`` takes only apiVersion/kind/metadata);
- :func:`restricted_security_context` — the Pod Security "restricted" container context;
- GPU scheduling: every chart that puts a pod on a GPU node goes through :func:`gpu_scheduling`
  (or :func:`pool_scheduling` for several pools), so the taint a pool sets and the toleration a
  workload carries can never drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cdk8s
from constructs import Construct

from ..conventions import (
    EFA_RESOURCE,
    GPU_COUNT_LABEL,
    GPU_RESOURCE,
    GPU_TAINT_EFFECT,
    GPU_TAINT_KEY,
    INSTANCE_TYPE_LABEL,
    POOL_LABEL,
    SYSTEM_TAINT_KEY,
)
from ..errors import collecting

#: The patches of bodies built with ``shared_body``, by field and JSON text (key order included). A
#: ``JsonPatch`` is an immutable operation that cdk8s copies before applying, so one serves every object.
_SHARED_PATCHES: dict[tuple[str, str], cdk8s.JsonPatch] = {}


def _add_patch(key: str, value: Any, *, shared: bool) -> cdk8s.JsonPatch:
    if not shared:
        return cdk8s.JsonPatch.add(f"/{key}", value)
    known = (key, json.dumps(value))
    patch = _SHARED_PATCHES.get(known)
    if patch is None:
        patch = _SHARED_PATCHES[known] = cdk8s.JsonPatch.add(f"/{key}", value)
    return patch


def api_object(
    scope: Construct,
    id: str,
    *,
    api_version: str,
    kind: str,
    metadata: cdk8s.ApiObjectMetadata,
    body: dict[str, Any],
    shared_body: bool = False,
) -> cdk8s.ApiObject:
    """A plain ``ApiObject`` with top-level fields (``spec``, ``data`` …) beside its metadata.

    ``cdk8s.ApiObject`` takes only apiVersion/kind/metadata from Python; the rest goes in as
    JSON patches, one ``add`` per top-level field. Patches are applied after cdk8s sorts the
    object's keys, so each field keeps the key order it is written with here; anything passed
    through the constructor instead would come out sorted. Every jsii call is a round trip to the
    Node.js runtime: all patches go in with one ``add_json_patch``.

    ``shared_body`` — the body is the same for many objects (a ServiceAccount's
    ``automountServiceAccountToken``, a ConfigMap every model mounts): its patches are built once
    per process and reused, instead of sent again for every object (default False).
    """
    obj = cdk8s.ApiObject(scope, id, api_version=api_version, kind=kind, metadata=metadata)
    patches = [_add_patch(key, value, shared=shared_body) for key, value in body.items()]
    if patches:
        obj.add_json_patch(*patches)
    return obj


def named_object(
    scope: Construct,
    id: str,
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    labels: Mapping[str, str],
    body: Mapping[str, Any],
    *,
    annotations: Mapping[str, str] | None = None,
    shared_body: bool = False,
) -> cdk8s.ApiObject:
    """:func:`api_object` for the common metadata: a name, an optional namespace, labels and annotations.

    Annotations known when the object is built go in here rather than through
    ``metadata.add_annotation`` afterwards: one round trip instead of one per annotation, and the
    same document (cdk8s sorts metadata keys either way). ``shared_body`` — as for :func:`api_object`.
    """
    metadata = cdk8s.ApiObjectMetadata(
        name=name, namespace=namespace, labels=dict(labels), annotations=dict(annotations) if annotations else None
    )
    return api_object(
        scope, id, api_version=api_version, kind=kind, metadata=metadata, body=dict(body), shared_body=shared_body
    )


@dataclass(frozen=True, kw_only=True)
class GpuPlacement:
    """Where a GPU pod may run and what it asks for.

    ``gpus`` — GPUs per pod (0 for a per-node agent such as the DCGM exporter: it tolerates
    the taint and selects GPU nodes but requests no GPU). ``efa`` — EFA interfaces per pod
    (default 0). ``pool`` — pin to one of our pools by name (default: any GPU node).
    ``instance_types`` — restrict to these types (default: any).
    """

    gpus: int = 0
    efa: int = 0
    pool: str | None = None
    instance_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        with collecting("GpuPlacement") as p:
            p.check(self.gpus >= 0, "gpus", self.gpus, "must not be negative", "request 0 or more GPUs")
            p.check(self.efa >= 0, "efa", self.efa, "must not be negative", "request 0 or more EFA interfaces")


def gpu_tolerations() -> list[dict[str, Any]]:
    """Tolerate the taint every GPU pool puts on its nodes."""
    return [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": GPU_TAINT_EFFECT}]


def system_tolerations() -> list[dict[str, Any]]:
    """Tolerate the system node group's taint (controllers only)."""
    return [{"key": SYSTEM_TAINT_KEY, "operator": "Exists"}]


def gpu_scheduling(placement: GpuPlacement) -> dict[str, Any]:
    """The pod-spec fragment and container resources for ``placement``.

    Returns ``{"pod": {...tolerations, affinity...}, "resources": {"limits": ..., "requests": ...}}``;
    merge ``pod`` into the pod spec and ``resources`` into the GPU container.
    """
    terms: list[dict[str, Any]] = [{"key": GPU_COUNT_LABEL, "operator": "Exists"}]
    if placement.pool:
        terms.append({"key": POOL_LABEL, "operator": "In", "values": [placement.pool]})
    if placement.instance_types:
        terms.append({"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": list(placement.instance_types)})
    pod = {
        "tolerations": gpu_tolerations(),
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": terms}]}
            }
        },
    }
    limits: dict[str, Any] = {}
    if placement.gpus:
        limits[GPU_RESOURCE] = placement.gpus
    if placement.efa:
        limits[EFA_RESOURCE] = placement.efa
    # Extended resources must have requests equal to limits.
    resources = {"limits": dict(limits), "requests": dict(limits)} if limits else {}
    return {"pod": pod, "resources": resources}


def pool_scheduling(
    *, gpus: int, pools: tuple[str, ...], efa: int = 0, instance_types: tuple[str, ...] = ()
) -> dict[str, Any]:
    """:func:`gpu_scheduling` for any of several pools (spot first, on-demand behind).

    The helper pins one pool; with several, its GPU-node term is narrowed to all of them.
    """
    placement = GpuPlacement(
        gpus=gpus, efa=efa, pool=pools[0] if len(pools) == 1 else None, instance_types=instance_types
    )
    sched = gpu_scheduling(placement)
    if len(pools) > 1:
        affinity = sched["pod"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        for term in affinity["nodeSelectorTerms"]:
            term["matchExpressions"].append({"key": POOL_LABEL, "operator": "In", "values": list(pools)})
    return sched


def restricted_security_context(*, uid: int = 65532, read_only_root: bool = True) -> dict[str, Any]:
    """The Kubernetes 'restricted' pod security profile for a container."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
