"""NVIDIA GPUs found in the EC2 G5, G6, G6e, P4d, P4de, P5, P5e and P5en families.

``memory_gib`` is what EC2 reports for the device (``DescribeInstanceTypes`` ->
``GpuInfo.Gpus[].MemoryInfo.SizeInMiB``, also Karpenter's ``instance-gpu-memory`` label),
not the marketing figure: an "A10G 24 GB" reports 22888 MiB = 22.35 GiB, and that is the
memory vLLM's ``--gpu-memory-utilization`` is a fraction of. Bandwidths are NVIDIA's data
sheet figures; FP8 means hardware FP8 tensor cores (compute capability >= 8.9), which vLLM
needs for FP8 W8A8 and for an FP8 KV cache in this engine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Gpu:
    """One GPU model as EC2 exposes it."""

    #: Catalog key, unique per memory variant (``"A100-80GB"``).
    sku: str
    #: Marketing name of the chip (``"A100"``).
    name: str
    #: Device memory as EC2 reports it, in GiB.
    memory_gib: float
    #: Peak device memory bandwidth, GB/s (10^9 bytes per second).
    memory_bandwidth_gbps: float
    #: Hardware FP8 tensor cores (Ada, Hopper).
    fp8: bool
    #: Hardware BF16 support (Ampere and later).
    bf16: bool
    #: CUDA compute capability, e.g. ``"8.6"``.
    compute_capability: str
    #: Architecture name, for messages.
    architecture: str
    #: Where the figures come from.
    source: str

    @property
    def compute_capability_tuple(self) -> tuple[int, int]:
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)


def _mib(mib: int) -> float:
    return mib / 1024.0


_EC2 = "EC2 DescribeInstanceTypes GpuInfo (as in Karpenter's instance-types reference)"

GPUS: dict[str, Gpu] = {
    g.sku: g
    for g in (
        Gpu(
            sku="A10G",
            name="A10G",
            memory_gib=_mib(22888),
            memory_bandwidth_gbps=600.0,
            fp8=False,
            bf16=True,
            compute_capability="8.6",
            architecture="Ampere",
            source=f"{_EC2}; NVIDIA A10 data sheet (600 GB/s GDDR6)",
        ),
        Gpu(
            sku="L4",
            name="L4",
            memory_gib=_mib(22888),
            memory_bandwidth_gbps=300.0,
            fp8=True,
            bf16=True,
            compute_capability="8.9",
            architecture="Ada Lovelace",
            source=f"{_EC2}; NVIDIA L4 data sheet (300 GB/s GDDR6)",
        ),
        Gpu(
            sku="L40S",
            name="L40S",
            memory_gib=_mib(45776),
            memory_bandwidth_gbps=864.0,
            fp8=True,
            bf16=True,
            compute_capability="8.9",
            architecture="Ada Lovelace",
            source=f"{_EC2}; NVIDIA L40S data sheet (864 GB/s GDDR6)",
        ),
        Gpu(
            sku="A100-40GB",
            name="A100",
            memory_gib=_mib(40960),
            memory_bandwidth_gbps=1555.0,
            fp8=False,
            bf16=True,
            compute_capability="8.0",
            architecture="Ampere",
            source=f"{_EC2}; NVIDIA A100 data sheet (SXM4 40 GB HBM2, 1555 GB/s)",
        ),
        Gpu(
            sku="A100-80GB",
            name="A100",
            memory_gib=_mib(81920),
            memory_bandwidth_gbps=2039.0,
            fp8=False,
            bf16=True,
            compute_capability="8.0",
            architecture="Ampere",
            source=f"{_EC2}; NVIDIA A100 data sheet (SXM4 80 GB HBM2e, 2039 GB/s)",
        ),
        Gpu(
            sku="H100",
            name="H100",
            memory_gib=_mib(81920),
            memory_bandwidth_gbps=3350.0,
            fp8=True,
            bf16=True,
            compute_capability="9.0",
            architecture="Hopper",
            source=f"{_EC2}; NVIDIA H100 data sheet (SXM5 80 GB HBM3, 3.35 TB/s)",
        ),
        Gpu(
            sku="H200",
            name="H200",
            memory_gib=_mib(144384),
            memory_bandwidth_gbps=4800.0,
            fp8=True,
            bf16=True,
            compute_capability="9.0",
            architecture="Hopper",
            source=f"{_EC2}; NVIDIA H200 data sheet (141 GB HBM3e, 4.8 TB/s)",
        ),
    )
}
