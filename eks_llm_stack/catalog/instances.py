"""Every G5, G6, G6e, P4d, P4de, P5, P5e and P5en instance size.

Hardware figures: vCPUs, memory, GPU count and memory, the network bandwidth baseline and
the number of EFA interfaces are those EC2 reports (``DescribeInstanceTypes``, as reproduced
in Karpenter's generated instance-types reference); the published "up to" network figures and
the network-card counts are from the EC2 accelerated-computing specifications page.

Prices: on-demand USD per hour, Linux, US East (N. Virginia). P4d, P4de, P5 and P5en are the
prices after AWS's June 2025 reduction of P-family on-demand prices. P5e has no on-demand
price in us-east-1 (it is sold through EC2 Capacity Blocks); its figure is a Capacity Block
effective hourly rate and the instance is marked ``capacity_blocks_only`` so the sizing
engine does not pick it unless asked to. Prices drift: check before quoting, and pass
``--hourly-usd`` to the ``cost`` command for a negotiated or spot price.
"""

from __future__ import annotations

from dataclasses import dataclass

from .gpus import GPUS, Gpu

_PRICE_PAGE = "aws.amazon.com/ec2/pricing/on-demand (us-east-1, Linux)"
_PRICE_DATE = "2026-06"
_P_CUT = f"{_PRICE_PAGE}, after the 2025-06 P-family on-demand price reduction"


@dataclass(frozen=True, kw_only=True)
class InstanceType:
    """One EC2 GPU instance size."""

    name: str
    #: ``"g5"``, ``"p4de"``, ...
    family: str
    #: EC2 generation digit of the family (5 for g5/p5*, 6 for g6/g6e, 4 for p4d/p4de).
    generation: int
    gpu: Gpu
    gpu_count: int
    #: Memory per GPU, GiB (same as ``gpu.memory_gib``).
    gpu_memory_gib: float
    vcpus: int
    #: Host memory, GiB.
    memory_gib: float
    #: Published network bandwidth, Gbps (the burst ceiling for "up to" sizes).
    network_gbps: float
    #: True when ``network_gbps`` is an "up to" burst figure, not a sustained one.
    network_burstable: bool
    efa_supported: bool
    network_cards: int
    #: Maximum EFA interfaces (the ``vpc.amazonaws.com/efa`` resource count); 0 without EFA.
    max_efa_interfaces: int
    on_demand_usd: float
    price_source: str
    price_date: str
    #: Sold only through EC2 Capacity Blocks in us-east-1 (no on-demand price).
    capacity_blocks_only: bool = False

    @property
    def total_gpu_memory_gib(self) -> float:
        return self.gpu_memory_gib * self.gpu_count

    @property
    def usd_per_gpu_hour(self) -> float:
        return self.on_demand_usd / self.gpu_count


def _row(
    name: str,
    gpu: str,
    gpus: int,
    vcpus: int,
    mem: float,
    net: float,
    burst: bool,
    efa: int,
    cards: int,
    usd: float,
    source: str = _PRICE_PAGE,
    cb_only: bool = False,
) -> InstanceType:
    family = name.split(".")[0]
    return InstanceType(
        name=name,
        family=family,
        generation=int(family[1]),
        gpu=GPUS[gpu],
        gpu_count=gpus,
        gpu_memory_gib=GPUS[gpu].memory_gib,
        vcpus=vcpus,
        memory_gib=mem,
        network_gbps=net,
        network_burstable=burst,
        efa_supported=efa > 0,
        network_cards=cards,
        max_efa_interfaces=efa,
        on_demand_usd=usd,
        price_source=source,
        price_date=_PRICE_DATE,
        capacity_blocks_only=cb_only,
    )


_UP_TO = True
_FIXED = False

INSTANCES: dict[str, InstanceType] = {
    i.name: i
    for i in (
        # name            gpu    n  vcpu  GiB   Gbps  burst   efa cards  $/h
        _row("g5.xlarge", "A10G", 1, 4, 16, 10, _UP_TO, 0, 1, 1.006),
        _row("g5.2xlarge", "A10G", 1, 8, 32, 10, _UP_TO, 0, 1, 1.212),
        _row("g5.4xlarge", "A10G", 1, 16, 64, 25, _UP_TO, 0, 1, 1.624),
        _row("g5.8xlarge", "A10G", 1, 32, 128, 25, _FIXED, 1, 1, 2.448),
        _row("g5.12xlarge", "A10G", 4, 48, 192, 40, _FIXED, 1, 1, 5.672),
        _row("g5.16xlarge", "A10G", 1, 64, 256, 25, _FIXED, 1, 1, 4.096),
        _row("g5.24xlarge", "A10G", 4, 96, 384, 50, _FIXED, 1, 1, 8.144),
        _row("g5.48xlarge", "A10G", 8, 192, 768, 100, _FIXED, 1, 1, 16.288),
        _row("g6.xlarge", "L4", 1, 4, 16, 10, _UP_TO, 0, 1, 0.8048),
        _row("g6.2xlarge", "L4", 1, 8, 32, 10, _UP_TO, 0, 1, 0.9776),
        _row("g6.4xlarge", "L4", 1, 16, 64, 25, _UP_TO, 0, 1, 1.3232),
        _row("g6.8xlarge", "L4", 1, 32, 128, 25, _FIXED, 1, 1, 2.0144),
        _row("g6.12xlarge", "L4", 4, 48, 192, 40, _FIXED, 1, 1, 4.6016),
        _row("g6.16xlarge", "L4", 1, 64, 256, 25, _FIXED, 1, 1, 3.3968),
        _row("g6.24xlarge", "L4", 4, 96, 384, 50, _FIXED, 1, 1, 6.6752),
        _row("g6.48xlarge", "L4", 8, 192, 768, 100, _FIXED, 1, 1, 13.3504),
        _row("g6e.xlarge", "L40S", 1, 4, 32, 20, _UP_TO, 0, 1, 1.861),
        _row("g6e.2xlarge", "L40S", 1, 8, 64, 20, _UP_TO, 0, 1, 2.24208),
        _row("g6e.4xlarge", "L40S", 1, 16, 128, 20, _FIXED, 0, 1, 3.00424),
        _row("g6e.8xlarge", "L40S", 1, 32, 256, 25, _FIXED, 1, 1, 4.52856),
        _row("g6e.12xlarge", "L40S", 4, 48, 384, 100, _FIXED, 1, 1, 10.49264),
        _row("g6e.16xlarge", "L40S", 1, 64, 512, 35, _FIXED, 1, 1, 7.57719),
        _row("g6e.24xlarge", "L40S", 4, 96, 768, 200, _FIXED, 2, 2, 15.06559),
        _row("g6e.48xlarge", "L40S", 8, 192, 1536, 400, _FIXED, 4, 4, 30.13118),
        _row("p4d.24xlarge", "A100-40GB", 8, 96, 1152, 400, _FIXED, 4, 4, 21.96, _P_CUT),
        _row("p4de.24xlarge", "A100-80GB", 8, 96, 1152, 400, _FIXED, 4, 4, 27.447, _P_CUT),
        _row(
            "p5.4xlarge",
            "H100",
            1,
            16,
            256,
            100,
            _FIXED,
            1,
            1,
            6.88,
            f"{_P_CUT}; one eighth of p5.48xlarge, the per-GPU rate AWS announced for it",
        ),
        _row("p5.48xlarge", "H100", 8, 192, 2048, 3200, _FIXED, 32, 32, 55.04, _P_CUT),
        _row(
            "p5e.48xlarge",
            "H200",
            8,
            192,
            2048,
            3200,
            _FIXED,
            32,
            32,
            43.26,
            "aws.amazon.com/ec2/capacityblocks/pricing (effective instance hourly rate, 8 x H200); "
            "no us-east-1 on-demand price",
            cb_only=True,
        ),
        _row("p5en.48xlarge", "H200", 8, 192, 2048, 3200, _FIXED, 16, 16, 63.296, _P_CUT),
    )
}

#: Families this catalog covers; every size of each is listed above.
FAMILIES: tuple[str, ...] = ("g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e", "p5en")
