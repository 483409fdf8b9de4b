"""A Kubernetes Job that load-tests a model's Service from inside the cluster and keeps the results.

The Job runs ``eks-llm-stack bench run`` (the same harness as on a laptop) against the Service
URL, writing ``summary.json``, ``requests.jsonl``, ``summary.csv`` and the plots either to a
PersistentVolumeClaim (``/results/<name>/``) or to S3 (``s3://bucket/prefix/<name>/``, through
EKS Pod Identity on the given service account), so a CI pipeline can publish them.

* One attempt, no retries (``backoffLimit: 0``): a retried benchmark would mix two runs' load.
* Bounded: ``activeDeadlineSeconds`` stops a run that hangs; finished Jobs are garbage-collected
  after ``ttl_after_finished_s``.
* Restricted pod security: non-root, read-only root file system, no privilege escalation, all
  capabilities dropped, seccomp ``RuntimeDefault``; ``/tmp`` is an emptyDir for matplotlib.
* No GPU: GPU nodes are tainted, so the Job lands on general-purpose nodes and does not steal
  the capacity it measures.
* Its own NetworkPolicy (``network_policy``, default on), so it works under a default-deny in its
  namespace: DNS, the model's pods on the URL's port, the other harness pods on the barrier port
  (:data:`~eks_llm_stack.conventions.BENCH_BARRIER_PORT`), HTTPS and the Pod Identity agent for
  S3 results; no other egress, and no ingress but the barrier's.
* Several pods (``harnesses``): an Indexed Job behind a barrier; with results on a claim, pod 0
  waits for the others' finished parts and merges them into ``merged/`` (``bench merge --wait``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import cdk8s
from constructs import Construct

from .. import versions
from ..bench.workload import LengthSpec, ThinkTime
from ..config.data import parse_s3_path
from ..conventions import BENCH_BARRIER_PORT, MANAGED_BY, VLLM_PORT
from ..errors import Problems, collecting
from ..naming import check_dns_label
from ..versions import ImagePin
from .kube import api_object, restricted_security_context
from .network_policies import (
    API,
    API_CLIENT_LABEL,
    DNS_POD_LABELS,
    MODEL_POD_LABELS,
    NAMESPACE_NAME_LABEL,
    POD_IDENTITY_AGENT_CIDR,
    POD_IDENTITY_AGENT_PORT,
)

_UID = 65532
_KEY_DIR = "/etc/eks-llm-stack/api-key"
# First line of the key file (a rotation may list several keys) into the harness's environment.
_READ_KEY = "read -r BENCH_API_KEY < /etc/eks-llm-stack/api-key/api-key; export BENCH_API_KEY; "
_WITH_KEY = _READ_KEY + 'exec eks-llm-stack "$@"'
_RESULTS_DIR = "/results"
#: Where the data claim (datasets, traces, sessions) is mounted, read-only.
DATA_DIR = "/data"
#: Where harness 0 of a multi-pod run meets the others (``bench run --barrier``).
BARRIER_PORT = BENCH_BARRIER_PORT
#: The pod's completion index, from the Indexed Job's annotation.
INDEX_ENV = "HARNESS_INDEX"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_SCENARIOS = ("baseline", "saturation", "production", "dataset", "long-context")
_ARRIVALS = ("poisson", "gamma", "constant")
# A cluster-local Service URL: http://NAME.NAMESPACE[.svc[.cluster.local]][:PORT]
_SERVICE_URL = re.compile(r"https?://[a-z0-9-]+\.([a-z0-9-]+)(?:\.svc(?:\.[a-z0-9.-]+)?)?(?::(\d+))?(?:/.*)?")


@dataclass(frozen=True, kw_only=True)
class PvcResults:
    """Keep results on an existing PersistentVolumeClaim, under ``<claim>/<job name>/``."""

    claim_name: str
    """Name of the claim, in the Job's namespace."""


@dataclass(frozen=True, kw_only=True)
class S3Results:
    """Upload results to ``<uri>/<job name>/`` with the pod's Pod Identity credentials."""

    uri: str
    """``s3://bucket/prefix``."""


@dataclass(frozen=True, kw_only=True)
class BenchmarkJobProps:
    """One benchmark run. Exactly one of ``scenario``, ``concurrency``, ``rate``, ``sla_sweep`` or
    ``trace`` sets the load."""

    name: str
    """Name of the Job (and of the results folder); distinct per run so runs coexist."""
    url: str
    """Base URL of the model's Service, e.g. ``http://llama-3-8b.models.svc.cluster.local:8000``."""
    model: str
    """Model name the server serves."""
    results: PvcResults | S3Results
    """Where the results go."""
    namespace: str = "benchmarks"
    """Namespace of the Job (default ``benchmarks``)."""
    api: str = "completions"
    """``completions`` (default) or ``chat``."""
    scenario: str | None = None
    """A REFERENCE scenario: baseline, saturation, production, long-context, or dataset (with
    ``dataset``) (default None)."""
    concurrency: tuple[int, ...] = ()
    """Closed-loop levels, e.g. (1, 5, 10, 20, 50, 100) (default empty)."""
    rate: float | None = None
    """Open-loop arrivals per second (default None)."""
    arrival: str = "poisson"
    """Open-loop arrival process, ``poisson``, ``gamma`` or ``constant`` (default poisson)."""
    burstiness: float | None = None
    """Gamma arrivals: shape of the inter-arrival times, below 1 burstier (default None: 1, Poisson)."""
    ramp_s: float | None = None
    """Closed loop: spread each level's first requests over this many seconds (``bench run --ramp``),
    reported as ``ramp_s`` in summary.json (default None: all users start together)."""
    requests: int | None = None
    """Requests per level (default None: the harness's default, 100 for a closed loop)."""
    duration_s: float | None = None
    """Seconds per level (default None: bounded by requests)."""
    warmup: int = 0
    """Requests per level sent first and left out of its figures (default 0)."""
    prompt_tokens: str | None = None
    """Prompt length spec, e.g. ``512`` or ``uniform:128:1024`` (default None: the harness's 128)."""
    output_tokens: str | None = None
    """Output length spec (default None: the harness's 128)."""
    instance_type: str | None = None
    """Instance type serving the model, priced from the catalog (default None: no cost figures)."""
    hourly_usd: float | None = None
    """Price per hour instead of ``instance_type`` (default None)."""
    spot_hourly_usd: float | None = None
    """Also cost the tokens at this spot price per hour (default None)."""
    capacity_block_hourly_usd: float | None = None
    """Also cost the tokens at this Capacity Block price per hour (default None)."""
    slo_ttft_ms: float | None = None
    """Goodput TTFT limit in ms (default None: the harness's 500)."""
    slo_itl_ms: float | None = None
    """Goodput ITL limit in ms (default None: the harness's 50)."""
    slo_e2e_ms: float | None = None
    """Goodput end-to-end limit in ms (default None: no E2E objective)."""
    max_error_rate_percent: float | None = None
    """Percent of failed requests (any level) above which the run fails, exit 3 (default None:
    the harness's 5)."""
    sla_sweep: str | None = None
    """``concurrency`` or ``rate``: find the highest load meeting the SLOs by bisection over
    ``sweep_range`` (sets the load; needs ``requests`` and/or ``duration_s``; default None)."""
    sweep_range: tuple[float, float] | None = None
    """``(LO, HI)`` of the SLA sweep, e.g. ``(1, 256)`` (default None)."""
    slo_attainment_percent: float | None = None
    """SLA sweep: percent of requests that must meet every SLO (default None: the harness's 90)."""
    data_claim: str | None = None
    """PersistentVolumeClaim (in the Job's namespace) mounted read-only at ``/data``, holding
    datasets, traces and sessions - e.g. one bound to the model cache's file system
    (default None: no data volume; synthetic datasets need none)."""
    dataset: str | None = None
    """ShareGPT JSON or JSONL of prompts, a path on ``data_claim`` (default None)."""
    trace: str | None = None
    """A timestamped trace to replay (sets the load), a path on ``data_claim`` (default None)."""
    sessions: str | None = None
    """Multi-turn chat sessions from ShareGPT JSON, a path on ``data_claim``; ``concurrency`` is
    then the number of chat users (default None)."""
    synthetic_sessions: tuple[int, int] | None = None
    """``(SESSIONS, TURNS)`` of synthetic chat sessions, with ``concurrency`` users (default None)."""
    think_time: str | None = None
    """Sessions: the users' think time, ``S``, ``uniform:LO:HI``, ``exp:MEAN`` or ``normal:MEAN:SD``
    seconds (default None: 0)."""
    max_turns: int | None = None
    """Sessions: turns per session at most (default None: all)."""
    shared_prefix: tuple[int, int] | None = None
    """``(GROUPS, PROMPTS)``: synthetic prompts sharing a prefix per group (default None)."""
    prefix_tokens: int | None = None
    """``shared_prefix``: tokens of each group's prefix (default None: the harness's 512)."""
    service_account_name: str | None = None
    """Service account of the pod; required with S3 results (its Pod Identity association grants
    ``s3:PutObject``). Default None: the namespace's default account."""
    create_service_account: bool = False
    """Render the ServiceAccount too (default False: the stack that creates the Pod Identity
    association usually owns it)."""
    image: ImagePin = versions.BENCH_HARNESS_IMAGE
    """Harness image (default :data:`versions.BENCH_HARNESS_IMAGE`, the project's own image)."""
    image_digest: str | None = None
    """``sha256:...`` of the image (the release workflow prints it): the Job then pulls
    ``repository:tag@digest``, exactly what was built. Default None: the image's own reference."""
    request_timeout_s: float = 600.0
    """Per-request timeout of the harness (default 600)."""
    active_deadline_s: int = 4 * 3600
    """Hard stop of the whole Job in seconds (default 4 hours)."""
    ttl_after_finished_s: int | None = 7 * 24 * 3600
    """Delete the finished Job after this many seconds (default 7 days; None keeps it)."""
    harnesses: int = 1
    """Harness pods sharing the load (default 1). Above 1 the Job is an Indexed Job of that many
    pods started together; each takes 1/N of the rate, of the requests and of the users, and
    they meet before every level at pod 0 (a headless Service gives it a stable name), so every
    level starts at one instant everywhere. Each pod writes ``part-<index>/`` under the results
    folder; ``eks-llm-stack bench merge`` makes one report of them."""
    cpu: str = "2"
    """CPU request and limit (default 2: one core for the event loop, one for plots and GC)."""
    memory: str = "2Gi"
    """Memory request and limit (default 2Gi: room for 128K-token prompts and requests.jsonl)."""
    api_key_secret: str | None = None
    """Secret (in the Job's namespace) holding the model's API key under ``api-key`` — the serving
    namespace's ``<model>-api-key``. Mounted as a file; the first line is sent as the bearer token
    (default None: no key, for the simulator or ``api_key: false`` models)."""
    merge_wait_s: int = 1800
    """Several harnesses with results on a claim: how long pod 0 waits, after its own run, for
    the other parts to finish before merging them (default 1800 s; the Job's deadline still
    applies)."""
    network_policy: bool = True
    """Render the Job's NetworkPolicy (default True: the Job keeps working under a default-deny
    in its namespace). False leaves the namespace's own policies in charge."""
    model_namespace: str | None = None
    """Namespace of the model's pods, for the NetworkPolicy (default None: read from ``url``,
    ``http://NAME.NAMESPACE.svc...``)."""

    def __post_init__(self) -> None:
        with collecting("BenchmarkJobProps") as p:
            check_dns_label(p, "name", self.name)
            check_dns_label(p, "namespace", self.namespace)
            p.check(
                self.url.startswith(("http://", "https://")),
                "url",
                self.url,
                "is not an http(s) URL",
                "use the Service's URL, e.g. http://NAME.NAMESPACE.svc.cluster.local:8000",
            )
            p.check(bool(self.model), "model", self.model, "is empty", "name the served model")
            p.check(
                self.api in ("completions", "chat"),
                "api",
                self.api,
                "is not an API the harness speaks",
                "use completions or chat",
            )
            self._check_load(p)
            self._check_data(p)
            self._check_goodput(p)
            if self.network_policy:
                p.check(
                    self.policy_namespace is not None,
                    "model_namespace",
                    None,
                    f"cannot be read from url {self.url!r}",
                    "set model_namespace to the namespace of the model's pods, or network_policy=False",
                )
                if self.model_namespace is not None:
                    check_dns_label(p, "model_namespace", self.model_namespace)
            p.check(self.merge_wait_s > 0, "merge_wait_s", self.merge_wait_s, "must be positive", "e.g. 1800")
            p.check(
                1 <= self.harnesses <= 64,
                "harnesses",
                self.harnesses,
                "must be between 1 and 64",
                "use 1 for one pod, or the number of pods to spread the load over, e.g. 4",
            )
            p.check(
                self.harnesses == 1 or not self.concurrency or min(self.concurrency) >= self.harnesses,
                "concurrency/harnesses",
                (self.concurrency, self.harnesses),
                "a level below the number of harnesses leaves a pod without users",
                "use levels of at least `harnesses`, or fewer harnesses",
            )
            p.check(
                self.image_digest is None or _DIGEST.fullmatch(self.image_digest) is not None,
                "image_digest",
                self.image_digest,
                "is not an image digest",
                "pass sha256: and 64 lower-case hex digits, as the release workflow or the registry reports",
            )
            p.check(
                not (self.instance_type and self.hourly_usd is not None),
                "instance_type/hourly_usd",
                (self.instance_type, self.hourly_usd),
                "both give a price",
                "set one of them",
            )
            p.check(
                self.hourly_usd is None or self.hourly_usd > 0,
                "hourly_usd",
                self.hourly_usd,
                "must be a positive price",
                "e.g. 1.212",
            )
            if isinstance(self.results, S3Results):
                try:
                    parse_s3_path(self.results.uri)
                except ValueError:
                    p.add("results.uri", "is not an S3 URI", "use s3://bucket/prefix", self.results.uri)
                p.check(
                    self.service_account_name is not None,
                    "service_account_name",
                    None,
                    "is required to upload to S3",
                    "name the service account whose Pod Identity association may write to the bucket",
                )
            elif isinstance(self.results, PvcResults):
                check_dns_label(p, "results.claim_name", self.results.claim_name)
            else:
                p.add(
                    "results",
                    "must be PvcResults or S3Results",
                    "pass PvcResults(claim_name=...) or S3Results(uri=...)",
                    self.results,
                )
            if self.service_account_name is not None:
                check_dns_label(p, "service_account_name", self.service_account_name)
            p.check(
                not self.create_service_account or self.service_account_name is not None,
                "create_service_account",
                True,
                "needs a name",
                "set service_account_name",
            )
            p.check(
                self.active_deadline_s > 0,
                "active_deadline_s",
                self.active_deadline_s,
                "must be positive",
                "e.g. 14400 for 4 hours",
            )
            p.check(
                self.request_timeout_s > 0, "request_timeout_s", self.request_timeout_s, "must be positive", "e.g. 600"
            )

    def _check_load(self, p: Problems) -> None:
        set_by = [
            n
            for n, v in (
                ("scenario", self.scenario),
                ("concurrency", self.concurrency or None),
                ("rate", self.rate),
                ("sla_sweep", self.sla_sweep),
                ("trace", self.trace),
            )
            if v is not None
        ]
        p.check(
            len(set_by) == 1,
            "/".join(set_by) or "scenario/concurrency/rate",
            tuple(set_by),
            "exactly one of scenario, concurrency, rate, sla_sweep or trace must set the load",
            "set scenario='saturation', concurrency=(1, 5, 10), rate=5.0 with duration_s, "
            "sla_sweep='concurrency' with sweep_range, or trace='traces/t.jsonl'",
        )
        p.check(
            self.scenario is None
            or (self.scenario in _SCENARIOS and (self.scenario != "dataset" or self.dataset is not None)),
            "scenario",
            self.scenario,
            "is not a scenario the Job can run",
            "use baseline, saturation, production or long-context; 'dataset' needs dataset='PATH' on data_claim",
        )
        if self.sla_sweep is not None:
            p.check(
                self.sla_sweep in ("concurrency", "rate"),
                "sla_sweep",
                self.sla_sweep,
                "is not a kind of SLA sweep",
                "use 'concurrency' or 'rate'",
            )
            lo, hi = self.sweep_range or (0.0, 0.0)
            p.check(
                0 < lo < hi and (self.sla_sweep != "concurrency" or (lo == int(lo) and hi == int(hi))),
                "sweep_range",
                self.sweep_range,
                "must be (LO, HI) with 0 < LO < HI (whole numbers for concurrency)",
                "e.g. sweep_range=(1, 256) for concurrency, (0.5, 50) for a rate",
            )
            p.check(
                self.requests is not None or self.duration_s is not None,
                "sla_sweep",
                self.sla_sweep,
                "each trial level needs a bound",
                "set requests and/or duration_s",
            )
            p.check(
                self.harnesses == 1,
                "sla_sweep/harnesses",
                (self.sla_sweep, self.harnesses),
                "an SLA sweep picks each next level from its own results, so the pods would diverge",
                "run the sweep with harnesses=1, then the load it finds with several harnesses",
            )
        else:
            p.check(
                self.sweep_range is None and self.slo_attainment_percent is None,
                "sweep_range/slo_attainment_percent",
                (self.sweep_range, self.slo_attainment_percent),
                "only apply to an SLA sweep",
                "set sla_sweep='concurrency' or 'rate', or drop them",
            )
        p.check(
            self.slo_attainment_percent is None or 0 < self.slo_attainment_percent <= 100,
            "slo_attainment_percent",
            self.slo_attainment_percent,
            "must be a percentage above 0",
            "e.g. 90",
        )
        p.check(
            all(c >= 1 for c in self.concurrency),
            "concurrency",
            self.concurrency,
            "has a level below 1",
            "use positive integers, e.g. (1, 5, 10)",
        )
        p.check(self.rate is None or self.rate > 0, "rate", self.rate, "must be positive", "e.g. 5.0")
        p.check(
            self.rate is None or self.requests is not None or self.duration_s is not None,
            "rate",
            self.rate,
            "an open loop needs a bound",
            "set duration_s (and/or requests)",
        )
        p.check(
            self.arrival in _ARRIVALS,
            "arrival",
            self.arrival,
            "is not an arrival process",
            "use poisson, gamma or constant",
        )
        p.check(
            self.ramp_s is None or (0 <= self.ramp_s < 3600 and self.rate is None),
            "ramp_s",
            self.ramp_s,
            "must be 0-3600 seconds and only applies to a closed loop (concurrency levels, no rate)",
            "e.g. ramp_s=1.5 with concurrency=(128,), or leave it out",
        )
        p.check(
            self.burstiness is None or (self.arrival == "gamma" and self.burstiness > 0),
            "burstiness",
            self.burstiness,
            "needs arrival='gamma' and a positive value",
            "e.g. arrival='gamma', burstiness=0.5",
        )
        for name in ("prompt_tokens", "output_tokens"):
            value = getattr(self, name)
            if value is not None:
                LengthSpec.parse(value, name, p)
        p.check(self.requests is None or self.requests > 0, "requests", self.requests, "must be positive", "e.g. 200")
        p.check(self.warmup >= 0, "warmup", self.warmup, "must be 0 or more", "e.g. the concurrency")
        p.check(
            self.duration_s is None or self.duration_s > 0,
            "duration_s",
            self.duration_s,
            "must be positive",
            "e.g. 120",
        )

    def _check_data(self, p: Problems) -> None:
        files = {"dataset": self.dataset, "trace": self.trace, "sessions": self.sessions}
        sources = [
            n
            for n, v in (
                *files.items(),
                ("synthetic_sessions", self.synthetic_sessions),
                ("shared_prefix", self.shared_prefix),
            )
            if v is not None
        ]
        p.check(
            len(sources) <= 1,
            "/".join(sources),
            tuple(sources),
            "give the prompts in different ways",
            "set one of dataset, trace, sessions, synthetic_sessions or shared_prefix",
        )
        for name, path in files.items():
            if path is None:
                continue
            p.check(
                self.data_claim is not None,
                "data_claim",
                None,
                f"is needed: {name} is a file on it",
                "set data_claim to the PersistentVolumeClaim that holds the file",
            )
            p.check(
                bool(path) and not path.startswith("/") and ".." not in path.split("/"),
                name,
                path,
                "must be a relative path inside the data claim",
                f"write it relative to the claim's root (mounted at {DATA_DIR}), e.g. 'sharegpt/chats.json'",
            )
        if self.data_claim is not None:
            check_dns_label(p, "data_claim", self.data_claim)
        for name, pair in (("synthetic_sessions", self.synthetic_sessions), ("shared_prefix", self.shared_prefix)):
            if pair is not None:
                p.check(
                    len(pair) == 2 and all(isinstance(x, int) and x >= 1 for x in pair),
                    name,
                    pair,
                    "must be two positive whole numbers",
                    f"e.g. {name}=(32, 5)",
                )
        chat = self.sessions is not None or self.synthetic_sessions is not None
        if chat:
            p.check(
                bool(self.concurrency) and self.requests is None and self.warmup == 0,
                "concurrency",
                self.concurrency,
                "sessions run with a number of chat users, bounded by the set (and duration_s)",
                "set concurrency=(USERS, ...) and no requests/warmup",
            )
            if self.think_time is not None:
                ThinkTime.parse(self.think_time, "think_time", p)
        else:
            p.check(
                self.think_time is None and self.max_turns is None,
                "think_time/max_turns",
                (self.think_time, self.max_turns),
                "only apply to chat sessions",
                "set sessions or synthetic_sessions, or drop them",
            )
        p.check(
            self.max_turns is None or self.max_turns >= 1, "max_turns", self.max_turns, "must be at least 1", "e.g. 8"
        )
        p.check(
            self.prefix_tokens is None or (self.shared_prefix is not None and self.prefix_tokens >= 1),
            "prefix_tokens",
            self.prefix_tokens,
            "needs shared_prefix and a positive count",
            "set shared_prefix=(GROUPS, PROMPTS) with it, e.g. prefix_tokens=1024",
        )

    def _check_goodput(self, p: Problems) -> None:
        for name in (
            "slo_ttft_ms",
            "slo_itl_ms",
            "slo_e2e_ms",
            "spot_hourly_usd",
            "capacity_block_hourly_usd",
        ):
            value = getattr(self, name)
            p.check(
                value is None or value > 0, name, value, "must be positive", "pass a positive number, or leave it out"
            )
        p.check(
            self.max_error_rate_percent is None or 0 <= self.max_error_rate_percent <= 100,
            "max_error_rate_percent",
            self.max_error_rate_percent,
            "must be a percentage between 0 and 100",
            "e.g. 5 (percent of failed requests)",
        )

    @property
    def policy_namespace(self) -> str | None:
        """The model pods' namespace for the NetworkPolicy: ``model_namespace``, else from ``url``."""
        if self.model_namespace is not None:
            return self.model_namespace
        m = _SERVICE_URL.fullmatch(self.url)
        return m.group(1) if m else None

    @property
    def model_port(self) -> int:
        """The model's port in ``url`` (default: 8000, vLLM's, for http; 443 for https)."""
        m = re.match(r"https?://[^/:]+:(\d+)", self.url)
        if m:
            return int(m.group(1))
        return 443 if self.url.startswith("https://") else VLLM_PORT

    @property
    def part_dirs(self) -> list[str]:
        """The results folders of the harness pods on the claim (several harnesses)."""
        return [f"{_RESULTS_DIR}/{self.name}/part-{i}" for i in range(self.harnesses)]

    @property
    def merges(self) -> bool:
        """Pod 0 merges the parts itself: several harnesses writing to a shared claim."""
        return self.harnesses > 1 and isinstance(self.results, PvcResults)

    @property
    def image_uri(self) -> str:
        """The image reference the pod pulls: by digest when one is given."""
        if self.image_digest is None:
            return self.image.uri
        return dataclasses.replace(self.image, digest=self.image_digest).uri

    def bench_args(self) -> list[str]:
        """The ``eks-llm-stack`` arguments the Job runs."""
        args = [
            "bench",
            "run",
            "--url",
            self.url,
            "--model",
            self.model,
            "--api",
            self.api,
            "--no-progress",
            "--timeout",
            f"{self.request_timeout_s:g}",
        ]
        if self.scenario:
            args += ["--scenario", self.scenario]
        if self.concurrency:
            args += ["--concurrency", ",".join(str(c) for c in self.concurrency)]
        if self.rate is not None:
            args += ["--rate", f"{self.rate:g}", "--arrival", self.arrival]
        if self.sla_sweep is not None and self.sweep_range is not None:
            lo, hi = self.sweep_range
            args += ["--sla-sweep", self.sla_sweep, "--sweep-range", f"{lo:g}:{hi:g}"]
            if self.sla_sweep == "rate" and self.arrival != "poisson":
                args += ["--arrival", self.arrival]

        def on_data(path: str | None) -> str | None:
            return None if path is None else f"{DATA_DIR}/{path}"

        def pair(xy: tuple[int, int] | None) -> str | None:
            return None if xy is None else f"{xy[0]}x{xy[1]}"

        for flag, value in (
            ("--burstiness", self.burstiness),
            ("--ramp", self.ramp_s),
            ("--requests", self.requests),
            ("--warmup", self.warmup or None),
            ("--duration", self.duration_s),
            ("--prompt-tokens", self.prompt_tokens),
            ("--output-tokens", self.output_tokens),
            ("--dataset", on_data(self.dataset)),
            ("--trace", on_data(self.trace)),
            ("--sessions", on_data(self.sessions)),
            ("--synthetic-sessions", pair(self.synthetic_sessions)),
            ("--think-time", self.think_time),
            ("--max-turns", self.max_turns),
            ("--shared-prefix", pair(self.shared_prefix)),
            ("--prefix-tokens", self.prefix_tokens),
            ("--instance", self.instance_type),
            ("--hourly-usd", self.hourly_usd),
            ("--spot-hourly-usd", self.spot_hourly_usd),
            ("--capacity-block-hourly-usd", self.capacity_block_hourly_usd),
            ("--slo-ttft-ms", self.slo_ttft_ms),
            ("--slo-itl-ms", self.slo_itl_ms),
            ("--slo-e2e-ms", self.slo_e2e_ms),
            ("--slo-attainment", self.slo_attainment_percent),
            ("--max-error-rate", self.max_error_rate_percent),
        ):
            if value is not None:
                args += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
        if isinstance(self.results, S3Results):
            upload = f"{self.results.uri.rstrip('/')}/{self.name}"
            if self.harnesses > 1:
                upload += f"/part-$({INDEX_ENV})"
            args += ["--out", _RESULTS_DIR, "--upload-s3", upload]
        else:
            folder = f"{_RESULTS_DIR}/{self.name}"
            args += ["--out", folder + (f"/part-$({INDEX_ENV})" if self.harnesses > 1 else "")]
        if self.harnesses > 1:
            # $(VAR) is expanded by the kubelet from the container's environment.
            args += [
                "--shard",
                f"$({INDEX_ENV})/{self.harnesses}",
                "--barrier",
                f"{self.name}-0.{self.name}.{self.namespace}.svc.cluster.local:{BARRIER_PORT}",
            ]
        return args


class BenchmarkJobChart(cdk8s.Chart):
    """The benchmark Job (and optionally its ServiceAccount)."""

    def __init__(self, scope: Construct, id: str, *, props: BenchmarkJobProps) -> None:
        super().__init__(scope, id, disable_resource_name_hashes=True)
        self.props = props
        labels = {
            **MANAGED_BY,
            "app.kubernetes.io/name": "benchmark",
            "app.kubernetes.io/instance": props.name,
            "app.kubernetes.io/component": "load-test",
            # Lets the serving namespace's NetworkPolicies admit the Job (its namespace must carry it too,
            # unless it is the serving namespace).
            API_CLIENT_LABEL: "true",
        }
        if props.create_service_account and props.service_account_name:
            self.service_account: cdk8s.ApiObject | None = api_object(
                self,
                "ServiceAccount",
                api_version="v1",
                kind="ServiceAccount",
                metadata=cdk8s.ApiObjectMetadata(
                    name=props.service_account_name, namespace=props.namespace, labels=labels
                ),
                body={"automountServiceAccountToken": False},
                shared_body=True,
            )
        else:
            self.service_account = None
        results_volume: dict[str, Any] = (
            {"name": "results", "persistentVolumeClaim": {"claimName": props.results.claim_name}}
            if isinstance(props.results, PvcResults)
            else {"name": "results", "emptyDir": {"sizeLimit": "1Gi"}}
        )
        container: dict[str, Any] = {
            "name": "bench",
            "image": props.image_uri,
            "imagePullPolicy": "IfNotPresent",
            "command": ["eks-llm-stack"],
            "args": props.bench_args(),
            "env": [
                # Read-only root: matplotlib and Python need a writable home and cache.
                {"name": "HOME", "value": "/tmp"},
                {"name": "MPLCONFIGDIR", "value": "/tmp/matplotlib"},
                {"name": "PYTHONUNBUFFERED", "value": "1"},
            ],
            "resources": {
                "requests": {"cpu": props.cpu, "memory": props.memory},
                "limits": {"cpu": props.cpu, "memory": props.memory},
            },
            "securityContext": restricted_security_context(uid=_UID),
            "volumeMounts": [{"name": "results", "mountPath": _RESULTS_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
        }
        volumes: list[dict[str, Any]] = [results_volume, {"name": "tmp", "emptyDir": {"sizeLimit": "512Mi"}}]
        if props.api_key_secret is not None:
            # The key stays in a file: read into the process's environment at start, never in the manifest.
            container["command"] = ["/bin/sh", "-c", _WITH_KEY, "eks-llm-stack"]
            container["args"] = [*props.bench_args(), "--api-key-env", "BENCH_API_KEY"]
            container["volumeMounts"].append({"name": "api-key", "mountPath": _KEY_DIR, "readOnly": True})
            volumes.append({"name": "api-key", "secret": {"secretName": props.api_key_secret, "defaultMode": 0o440}})
        if props.merges:
            # Pod 0 runs its part, then waits for every part on the shared claim to finish and
            # merges them; the pod's exit code stays the run's (a failed merge fails it too).
            container["command"] = ["/bin/sh", "-c", merge_script(props), "eks-llm-stack"]
        if props.data_claim is not None:
            container["volumeMounts"].append({"name": "data", "mountPath": DATA_DIR, "readOnly": True})
            volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": props.data_claim, "readOnly": True}})
        pod_spec: dict[str, Any] = {
            "restartPolicy": "Never",
            # The harness talks to the model, never to the Kubernetes API. (Pod Identity's own
            # token is a separate projected volume that the EKS webhook adds.)
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": _UID,
                "runAsGroup": _UID,
                "fsGroup": _UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": volumes,
        }
        if props.service_account_name:
            pod_spec["serviceAccountName"] = props.service_account_name
        if props.harnesses > 1:
            # Pod i of the Indexed Job is <job>-<i>.<service>: pod 0's name is the barrier's address.
            pod_spec["subdomain"] = props.name
            container["env"].append(
                {
                    "name": INDEX_ENV,
                    "valueFrom": {
                        "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
                    },
                }
            )
            container["ports"] = [{"name": "barrier", "containerPort": BARRIER_PORT, "protocol": "TCP"}]
            self.service: cdk8s.ApiObject | None = api_object(
                self,
                "Service",
                api_version="v1",
                kind="Service",
                metadata=cdk8s.ApiObjectMetadata(name=props.name, namespace=props.namespace, labels=labels),
                body={
                    "spec": {
                        "clusterIP": "None",
                        # The harnesses meet before they are Ready: publish their names at once.
                        "publishNotReadyAddresses": True,
                        "selector": {"app.kubernetes.io/instance": props.name, "app.kubernetes.io/name": "benchmark"},
                        "ports": [{"name": "barrier", "port": BARRIER_PORT, "targetPort": BARRIER_PORT}],
                    }
                },
            )
        else:
            self.service = None
        job_spec: dict[str, Any] = {
            "backoffLimit": 0,
            "activeDeadlineSeconds": props.active_deadline_s,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        }
        if props.harnesses > 1:
            job_spec.update(completionMode="Indexed", completions=props.harnesses, parallelism=props.harnesses)
        if props.ttl_after_finished_s is not None:
            job_spec["ttlSecondsAfterFinished"] = props.ttl_after_finished_s
        self.job = api_object(
            self,
            "Job",
            api_version="batch/v1",
            kind="Job",
            metadata=cdk8s.ApiObjectMetadata(name=props.name, namespace=props.namespace, labels=labels),
            body={"spec": job_spec},
        )
        self.network_policy: cdk8s.ApiObject | None = None
        if props.network_policy:
            self.network_policy = api_object(
                self,
                "NetworkPolicy",
                api_version=API,
                kind="NetworkPolicy",
                metadata=cdk8s.ApiObjectMetadata(
                    name=f"{props.name}-harness", namespace=props.namespace, labels=labels
                ),
                body={"spec": harness_policy_spec(props)},
            )


def _pods_of(props: BenchmarkJobProps) -> dict[str, Any]:
    return {"matchLabels": {"app.kubernetes.io/name": "benchmark", "app.kubernetes.io/instance": props.name}}


def harness_policy_spec(props: BenchmarkJobProps) -> dict[str, Any]:
    """The Job's NetworkPolicy: what its pods need under a default-deny, and nothing more."""
    pods = _pods_of(props)
    barrier = [{"protocol": "TCP", "port": BENCH_BARRIER_PORT}]
    egress: list[dict[str, Any]] = [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}},
                    "podSelector": {"matchLabels": dict(DNS_POD_LABELS)},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: props.policy_namespace}},
                    "podSelector": {"matchLabels": dict(MODEL_POD_LABELS)},
                }
            ],
            "ports": [{"protocol": "TCP", "port": props.model_port}],
        },
    ]
    ingress: list[dict[str, Any]] = []
    if props.harnesses > 1:
        # The barrier: every harness pod connects to pod 0; only this Job's pods, only that port.
        ingress.append({"from": [{"podSelector": pods}], "ports": barrier})
        egress.append({"to": [{"podSelector": pods}], "ports": barrier})
    if isinstance(props.results, S3Results):
        # S3 has no fixed addresses: HTTPS anywhere, and the Pod Identity agent for credentials.
        egress += [
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]},
            {
                "to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT_CIDR}}],
                "ports": [{"protocol": "TCP", "port": POD_IDENTITY_AGENT_PORT}],
            },
        ]
    return {"podSelector": pods, "policyTypes": ["Ingress", "Egress"], "ingress": ingress, "egress": egress}


def merge_script(props: BenchmarkJobProps) -> str:
    """The shell of a multi-pod Job on a claim: run this pod's part; pod 0 then merges every part."""
    key = _READ_KEY if props.api_key_secret is not None else ""
    parts = " ".join(props.part_dirs)
    merged = f"{_RESULTS_DIR}/{props.name}/merged"
    return (
        f'{key}eks-llm-stack "$@"; rc=$?; '
        # 0 and 3 (error rate above the limit) leave results to merge; anything else did not run.
        f'if [ "${INDEX_ENV}" = 0 ] && {{ [ $rc = 0 ] || [ $rc = 3 ]; }}; then '
        f"eks-llm-stack bench merge --wait {props.merge_wait_s} {parts} --out {merged} || rc=$?; "
        "fi; exit $rc"
    )
