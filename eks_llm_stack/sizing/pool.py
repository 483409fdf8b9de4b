"""The infrastructure a plan needs, as profile YAML fragments (``size --emit-pool``).

``gpu_pool_fragment`` is one entry of the profile's ``compute.pools`` (``GpuPoolConfig``):
the chosen instance type, the capacity type, EFA and a cluster placement group when the plan
spans nodes, and a GPU limit for every replica. ``storage_fragment`` is ``storage.fsx``
(``FsxConfig``): a PERSISTENT_2 capacity that holds the weights and the cheapest throughput tier
that lets every node of every replica read them within ``LOAD_SECONDS``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .engine import GIB, Plan

#: Target time for all nodes to read the weights at once from FSx for Lustre.
LOAD_SECONDS = 300
#: PERSISTENT_2 throughput tiers, MB/s per TiB (as config/data.py accepts them).
FSX_TIERS = (125, 250, 500, 1000)
#: FSx for Lustre PERSISTENT_2 capacities: 1200 GiB, then multiples of 2400 GiB.
FSX_MIN_GIB, FSX_STEP_GIB = 1200, 2400

_CAPACITY = {"on-demand": "on-demand", "spot": "spot", "capacity-block": "reserved"}


def pool_name(plan: Plan) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", plan.model.lower().split("/")[-1]).strip("-")
    return (slug or "model")[:40].strip("-") + "-gpu"


def gpu_pool_fragment(plan: Plan) -> dict[str, Any]:
    """One ``compute.pools`` entry for ``plan``."""
    pool: dict[str, Any] = {
        "name": pool_name(plan),
        "preset": "custom",
        "instance_types": [plan.instance_type],
        "capacity_types": [_CAPACITY[plan.capacity]],
        "limits": {"gpus": plan.nodes * _gpus_per_node(plan) * plan.replicas},
    }
    if plan.capacity == "capacity-block":
        # Karpenter launches Capacity Blocks as reserved capacity; select them by tag.
        pool["capacity_reservation_tags"] = {"eks-llm-stack/pool": pool_name(plan)}
    if plan.pipeline_parallel_size > 1:
        pool["efa"] = True
        pool["placement_group"] = {"strategy": "cluster"}
    return pool


def _gpus_per_node(plan: Plan) -> int:
    from ..catalog import get_instance

    return get_instance(plan.instance_type).gpu_count


def storage_fragment(plan: Plan) -> dict[str, Any]:
    """``storage.fsx`` sized for ``plan``'s weights."""
    weights_gib = plan.weights_gib
    need_mbps = weights_gib * GIB / 1e6 * plan.nodes * plan.replicas / LOAD_SECONDS
    capacity = FSX_MIN_GIB
    while capacity < weights_gib * 1.25:
        capacity = FSX_STEP_GIB * math.ceil((weights_gib * 1.25) / FSX_STEP_GIB)
    while True:
        tib = capacity / 1024
        tier = next((t for t in FSX_TIERS if t * tib >= need_mbps), None)
        if tier is not None:
            return {"fsx": {"storage_capacity_gib": capacity, "throughput_per_unit": tier}}
        capacity = FSX_STEP_GIB * (capacity // FSX_STEP_GIB + 1)


def profile_fragment_yaml(plan: Plan) -> str:
    """``compute.pools`` and ``storage.fsx`` for ``plan`` as YAML to paste into a profile."""
    import yaml

    doc = {"compute": {"pools": [gpu_pool_fragment(plan)]}, "storage": storage_fragment(plan)}
    head = (
        f"# {plan.model}: {plan.nodes} x {plan.instance_type} (TP {plan.tensor_parallel_size}, "
        f"PP {plan.pipeline_parallel_size}) x {plan.replicas} replica(s), {plan.weights_gib:.1f} GiB of weights\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False)


__all__ = ["LOAD_SECONDS", "gpu_pool_fragment", "pool_name", "profile_fragment_yaml", "storage_fragment"]
