"""NVIDIA GPUs of the EC2 GPU families in the catalog (G4dn, G5, G6, G6f, G6e, G7e, P4d, P4de, P5, P5e, P5en, P6).

``memory_gib`` is what EC2 reports for the device (``DescribeInstanceTypes`` ->
``GpuInfo.Gpus[].MemoryInfo.SizeInMiB``, also Karpenter's ``instance-gpu-memory`` label),
not the marketing figure: an "A10G 24 GB" reports 22888 MiB = 22.35 GiB, and that is the
memory vLLM's ``--gpu-memory-utilization`` is a fraction of. Bandwidths are NVIDIA's data
sheet figures; FP8 means hardware FP8 tensor cores (compute capability >= 8.9), which vLLM
needs for FP8 W8A8 and for an FP8 KV cache in this engine. MXFP4 (gpt-oss) runs on compute
capability >= 8.0: natively on Blackwell, through vLLM's Marlin / Triton kernels below it.
Karpenter's ``instance-gpu-name`` label value is ``karpenter_name``.
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
    #: Karpenter's ``karpenter.k8s.aws/instance-gpu-name`` value for this GPU.
    karpenter_name: str = ""

    @property
    def mxfp4(self) -> bool:
        """vLLM can run MXFP4 weights (gpt-oss) on this GPU: compute capability 8.0 or newer."""
        return self.compute_capability_tuple >= (8, 0)

    @property
    def marlin(self) -> bool:
        """vLLM's Marlin kernels (AWQ/GPTQ 4/8 bit, FP8 weight-only) need compute capability 8.0+."""
        return self.compute_capability_tuple >= (8, 0)

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
            karpenter_name="a10g",
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
            karpenter_name="l4",
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
            karpenter_name="l40s",
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
            karpenter_name="a100",
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
            karpenter_name="a100",
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
            karpenter_name="h100",
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
            karpenter_name="h200",
        ),
        Gpu(
            sku="T4",
            name="T4",
            memory_gib=_mib(16384),
            memory_bandwidth_gbps=320.0,
            fp8=False,
            bf16=False,
            compute_capability="7.5",
            architecture="Turing",
            source=f"{_EC2}; NVIDIA T4 data sheet (320 GB/s GDDR6)",
            karpenter_name="t4",
        ),
        Gpu(
            sku="RTX-PRO-6000",
            name="RTX PRO 6000 Blackwell Server",
            memory_gib=_mib(98304),
            memory_bandwidth_gbps=1597.0,
            fp8=True,
            bf16=True,
            compute_capability="12.0",
            architecture="Blackwell",
            source=f"{_EC2}; NVIDIA RTX PRO 6000 Blackwell Server Edition data sheet (96 GB GDDR7, 1597 GB/s)",
            karpenter_name="rtx-pro-server-6000",
        ),
        Gpu(
            sku="B200",
            name="B200",
            memory_gib=_mib(183359),
            memory_bandwidth_gbps=8000.0,
            fp8=True,
            bf16=True,
            compute_capability="10.0",
            architecture="Blackwell",
            source=f"{_EC2}; NVIDIA HGX B200 data sheet (8 TB/s HBM3e per GPU)",
            karpenter_name="b200",
        ),
        Gpu(
            sku="B300",
            name="B300",
            memory_gib=_mib(275040),
            memory_bandwidth_gbps=8000.0,
            fp8=True,
            bf16=True,
            compute_capability="10.3",
            architecture="Blackwell Ultra",
            source=f"{_EC2}; NVIDIA HGX B300 data sheet (8 TB/s HBM3e per GPU)",
            karpenter_name="b300",
        ),
    )
}

# G6f: an L4 partitioned by NVIDIA vGPU into halves, quarters or eighths. Memory and bandwidth
# are the whole L4's share (EC2 G6 product page, G6f table); compute capability is the L4's.
for _frac in (2, 4, 8):
    _l4 = GPUS["L4"]
    GPUS[f"L4-1/{_frac}"] = Gpu(
        sku=f"L4-1/{_frac}",
        name=f"L4 (1/{_frac})",
        memory_gib=_l4.memory_gib / _frac,
        memory_bandwidth_gbps=_l4.memory_bandwidth_gbps / _frac,
        fp8=_l4.fp8,
        bf16=_l4.bf16,
        compute_capability=_l4.compute_capability,
        architecture=_l4.architecture,
        source="EC2 G6 product page (G6f: fractional L4 GPUs); the L4's figures divided by the fraction",
        karpenter_name="l4",
    )
