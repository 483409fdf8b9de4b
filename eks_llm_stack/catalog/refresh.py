"""Build the GPU instance catalog (``gpu-instances.json``) from Karpenter's generated data.

``eks-llm-stack catalog refresh`` runs :func:`build_snapshot` over Karpenter's generated
instance-type and on-demand price files (by default the ones vendored in
``eks_llm_stack/third_party/karpenter-1.14.1/generated/``; pass newer ones to move the prices)
and writes the snapshot the catalog loads. Every row names its source:

* hardware (vCPUs, memory, GPU count, GPU memory, network baseline, EFA interfaces):
  Karpenter's ``derived-gpu-efa-instance-types.json`` (EC2 ``DescribeInstanceTypes`` as
  Karpenter 1.14.1 generated it);
* prices: Karpenter's ``derived-on-demand-prices.json`` (its ``zz_generated.pricing_*.go``),
  on-demand, Linux, per region it lists;
* G6f (fractional L4) is absent from Karpenter's GPU data (a fractional GPU exposes no
  ``nvidia.com/gpu`` resource there): its hardware rows come from the EC2 G6 product page and
  are marked so; its prices do come from Karpenter's price file;
* network card counts are not in Karpenter's data: the EC2 accelerated-computing
  specifications for the types that have more than one card, else one per EFA interface.

P5e has no on-demand price in Karpenter's data (it is sold through Capacity Blocks): it has
no catalog price, and the engine considers it only when a price is given (``--price-source``).
P6e-GB200 is not in the catalog: it is sold only as UltraServers through Capacity Blocks, not
as an instance type Karpenter's generated data lists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Problem

THIRD_PARTY = Path(__file__).resolve().parent.parent / "third_party" / "karpenter-1.14.1" / "generated"
INSTANCE_TYPES_JSON = THIRD_PARTY / "derived-gpu-efa-instance-types.json"
PRICES_JSON = THIRD_PARTY / "derived-on-demand-prices.json"
SNAPSHOT = Path(__file__).resolve().parent / "gpu-instances.json"

KARPENTER_SOURCE = "Karpenter 1.14.1 generated instance types (derived-gpu-efa-instance-types.json)"
PRICE_SOURCE = "Karpenter 1.14.1 generated on-demand prices (derived-on-demand-prices.json)"
G6F_SOURCE = "EC2 G6 product page (aws.amazon.com/ec2/instance-types/g6), G6f table; not in Karpenter's GPU data"

#: Families of the catalog, in display order.
FAMILIES: tuple[str, ...] = (
    "g4dn",
    "g5",
    "g6",
    "g6f",
    "g6e",
    "g7e",
    "p4d",
    "p4de",
    "p5",
    "p5e",
    "p5en",
    "p6-b200",
    "p6-b300",
)

#: Karpenter GPU name + memory (MiB) -> catalog GPU sku.
_GPU_SKU = {
    ("t4", 16384): "T4",
    ("a10g", 22888): "A10G",
    ("l4", 22888): "L4",
    ("l40s", 45776): "L40S",
    ("rtx-pro-server-6000", 98304): "RTX-PRO-6000",
    ("a100", 40960): "A100-40GB",
    ("a100", 81920): "A100-80GB",
    ("h100", 81920): "H100",
    ("h200", 144384): "H200",
    ("b200", 183359): "B200",
    ("b300", 275040): "B300",
}

#: Network cards where EC2's specifications list more than one (Karpenter's data has none).
_NETWORK_CARDS = {
    "g6e.24xlarge": 2,
    "g6e.48xlarge": 4,
    "g7e.24xlarge": 2,
    "g7e.48xlarge": 4,
    "p4d.24xlarge": 4,
    "p4de.24xlarge": 4,
    "p5.48xlarge": 32,
    "p5e.48xlarge": 32,
    "p5en.48xlarge": 16,
    "p6-b200.48xlarge": 8,
    "p6-b300.48xlarge": 16,
}

#: "Up to" network figures of the old table (sizes whose baseline is below a burst ceiling).
_BURSTABLE = {
    "g4dn.xlarge",
    "g4dn.2xlarge",
    "g4dn.4xlarge",
    "g5.xlarge",
    "g5.2xlarge",
    "g5.4xlarge",
    "g6.xlarge",
    "g6.2xlarge",
    "g6.4xlarge",
    "g6e.xlarge",
    "g6e.2xlarge",
    "g6f.large",
    "g6f.xlarge",
    "g6f.2xlarge",
    "g6f.4xlarge",
}

# name, GPU sku (fractional L4), vCPUs, memory GiB, network Gbps (EC2 G6 page, G6f table)
_G6F_ROWS: tuple[tuple[str, str, int, int, float], ...] = (
    ("g6f.large", "L4-1/8", 2, 8, 10.0),
    ("g6f.xlarge", "L4-1/8", 4, 16, 10.0),
    ("g6f.2xlarge", "L4-1/4", 8, 32, 10.0),
    ("g6f.4xlarge", "L4-1/2", 16, 64, 20.0),
)


def _read(path: Path, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            "catalog refresh",
            [Problem(what, "file not found", "give the path to Karpenter's generated file", str(path))],
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            "catalog refresh", [Problem(what, f"is not readable JSON ({exc})", "regenerate the file", str(path))]
        ) from None
    if not isinstance(doc, dict):
        raise ConfigError("catalog refresh", [Problem(what, "is not a JSON object", "regenerate the file", str(path))])
    return doc


def _regions(prices: dict[str, Any]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for part in (prices.get("partitions") or {}).values():
        for region, table in ((part or {}).get("regions") or {}).items():
            out[region] = {k: float(v) for k, v in (table or {}).items() if isinstance(v, (int, float))}
    return out


def build_snapshot(instance_types_json: Path = INSTANCE_TYPES_JSON, prices_json: Path = PRICES_JSON) -> dict[str, Any]:
    """The catalog snapshot (a JSON-able dict) from Karpenter's two generated files."""
    types = _read(instance_types_json, "instance_types_json").get("instanceTypes")
    prices = _regions(_read(prices_json, "prices_json"))
    if not isinstance(types, dict) or not prices:
        raise ConfigError(
            "catalog refresh",
            [
                Problem(
                    "instance_types_json / prices_json",
                    "has no instanceTypes object or no regions",
                    "pass Karpenter's derived-gpu-efa-instance-types.json and derived-on-demand-prices.json",
                )
            ],
        )
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for name, entry in sorted(types.items()):
        family = name.split(".")[0]
        if family not in FAMILIES or name.endswith(".metal"):
            continue
        labels, res = entry.get("labels", {}), entry.get("resources", {})
        key = (
            labels.get("karpenter.k8s.aws/instance-gpu-name"),
            int(labels.get("karpenter.k8s.aws/instance-gpu-memory", 0)),
        )
        sku = _GPU_SKU.get(key)
        if sku is None:
            problems.append(
                Problem(name, f"has GPU {key} the catalog does not know", "add the GPU to catalog/gpus.py and _GPU_SKU")
            )
            continue
        efa = int(res.get("vpc.amazonaws.com/efa", 0) or 0)
        rows.append(
            {
                "name": name,
                "gpu": sku,
                "gpu_count": int(labels["karpenter.k8s.aws/instance-gpu-count"]),
                "vcpus": int(labels["karpenter.k8s.aws/instance-cpu"]),
                "memory_gib": int(labels["karpenter.k8s.aws/instance-memory"]) / 1024,
                "network_gbps": int(labels["karpenter.k8s.aws/instance-network-bandwidth"]) / 1000,
                "network_burstable": name in _BURSTABLE,
                "max_efa_interfaces": efa,
                "network_cards": _NETWORK_CARDS.get(name, 1),
                "generation": int(labels["karpenter.k8s.aws/instance-generation"]),
                "arch": labels.get("kubernetes.io/arch", "amd64"),
                "hardware_source": KARPENTER_SOURCE,
            }
        )
    for name, sku, vcpus, mem, net in _G6F_ROWS:
        rows.append(
            {
                "name": name,
                "gpu": sku,
                "gpu_count": 1,
                "vcpus": vcpus,
                "memory_gib": float(mem),
                "network_gbps": net,
                "network_burstable": True,
                "max_efa_interfaces": 0,
                "network_cards": 1,
                "generation": 6,
                "arch": "amd64",
                "hardware_source": G6F_SOURCE,
            }
        )
    if problems:
        raise ConfigError("catalog refresh", problems)
    for row in rows:
        row["on_demand_usd"] = {r: t[row["name"]] for r, t in sorted(prices.items()) if row["name"] in t}
    order = {f: i for i, f in enumerate(FAMILIES)}
    rows.sort(key=lambda r: (order[r["name"].split(".")[0]], r["gpu_count"], r["vcpus"]))
    meta = _read(prices_json, "prices_json")
    generated = sorted({str((p or {}).get("generated", "")) for p in (meta.get("partitions") or {}).values()})
    return {
        "hardware_source": KARPENTER_SOURCE,
        "price_source": PRICE_SOURCE,
        "price_generated": generated[-1] if generated else "",
        "instances": rows,
    }


def write_snapshot(snapshot: dict[str, Any], path: Path = SNAPSHOT) -> Path:
    path.write_text(json.dumps(snapshot, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path


__all__ = ["FAMILIES", "INSTANCE_TYPES_JSON", "PRICES_JSON", "SNAPSHOT", "build_snapshot", "write_snapshot"]
