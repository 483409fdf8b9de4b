"""Programs the vLLM pods run besides vLLM: the preStop drain, the wait for the model-fetch Job and
the multi-node launch. Kept as text templates here so the pod spec reads as a pod spec."""

from __future__ import annotations

import re

from ..conventions import VLLM_PORT

#: Seconds the preStop hook waits before looking at the queue: the time it takes kube-proxy and
#: load balancers to stop sending new requests to a terminating pod.
ENDPOINT_PROPAGATION_SECONDS = 5
#: vLLM metrics the preStop drain waits on (both gauges of vLLM 0.29.0).
DRAIN_METRICS = ("vllm:num_requests_running", "vllm:num_requests_waiting")

_DRAIN = """import re, time, urllib.request
deadline = time.monotonic() + {budget}
# Let endpoint removal reach kube-proxy and load balancers: no new request arrives after this.
time.sleep({propagation})
while time.monotonic() < deadline:
    try:
        text = urllib.request.urlopen("http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except Exception:
        break
    pattern = r"^(?:{names})(?:\\{{[^}}]*\\}})? (\\S+)"
    busy = sum(float(v) for v in re.findall(pattern, text, re.M))
    if busy == 0:
        break
    time.sleep(1)
"""


def drain_script(*, budget: float, propagation: float = ENDPOINT_PROPAGATION_SECONDS, port: int = VLLM_PORT) -> str:
    """The preStop program: wait ``propagation`` s, then until vLLM has no running or waiting
    request, at most ``budget`` s in all. Any error reading the metrics ends the wait."""
    names = "|".join(re.escape(n) for n in DRAIN_METRICS)
    return _DRAIN.format(budget=budget, propagation=propagation, port=port, names=names)


WAIT_FOR_FETCH = """set -eu
until [ -f "{marker}" ]; do echo "waiting for the model-fetch Job to fill {path}"; sleep 15; done
echo "weights ready: $(cat "{marker}")"
"""

MULTINODE = """set -eu
# EFA registers GPU and host memory for RDMA: a locked-memory limit makes libfabric fail and NCCL
# fall back to TCP. The EKS GPU AMIs run containerd with LimitMEMLOCK=infinity; refuse anything less.
if [ "$(ulimit -l)" != unlimited ]; then
  echo "locked-memory limit is $(ulimit -l) KiB: EFA RDMA needs unlimited (containerd LimitMEMLOCK=infinity)" >&2
  exit 1
fi
# vLLM's native multi-node launch: node {rank_doc} of the group; the leader ($LWS_LEADER_ADDRESS) is
# rank 0, holds the rendezvous on port {port} and serves the API; workers run headless.
exec {serve}
"""
