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
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import cdk8s
from constructs import Construct

from .. import versions
from ..config.data import parse_s3_path
from ..conventions import MANAGED_BY
from ..errors import Problems, collecting
from ..naming import check_dns_label
from ..versions import ImagePin
from .kube import api_object, restricted_security_context
from .network_policies import API_CLIENT_LABEL

_UID = 65532
_KEY_DIR = "/etc/eks-llm-stack/api-key"
# First line of the key file (a rotation may list several keys) into the harness's environment.
_WITH_KEY = 'read -r BENCH_API_KEY < /etc/eks-llm-stack/api-key/api-key; export BENCH_API_KEY; exec eks-llm-stack "$@"'
_RESULTS_DIR = "/results"
#: Where harness 0 of a multi-pod run meets the others (``bench run --barrier``).
BARRIER_PORT = 7000
#: The pod's completion index, from the Indexed Job's annotation.
INDEX_ENV = "HARNESS_INDEX"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_SCENARIOS = ("baseline", "saturation", "production", "dataset", "long-context")


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
    """One benchmark run. Exactly one of ``scenario``, ``concurrency`` or ``rate`` sets the load."""

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
    """A REFERENCE scenario: baseline, saturation, production, long-context (default None)."""
    concurrency: tuple[int, ...] = ()
    """Closed-loop levels, e.g. (1, 5, 10, 20, 50, 100) (default empty)."""
    rate: float | None = None
    """Open-loop arrivals per second (default None)."""
    arrival: str = "poisson"
    """Open-loop arrival process, ``poisson`` or ``constant`` (default poisson)."""
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
            for n, v in (("scenario", self.scenario), ("concurrency", self.concurrency or None), ("rate", self.rate))
            if v is not None
        ]
        p.check(
            len(set_by) == 1,
            "/".join(set_by) or "scenario/concurrency/rate",
            tuple(set_by),
            "exactly one of scenario, concurrency or rate must set the load",
            "set scenario='saturation', concurrency=(1, 5, 10) or rate=5.0 with duration_s",
        )
        p.check(
            self.scenario is None or (self.scenario in _SCENARIOS and self.scenario != "dataset"),
            "scenario",
            self.scenario,
            "is not a scenario the Job can run",
            "use baseline, saturation, production or long-context (a dataset file needs a custom image)",
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
            self.arrival in ("poisson", "constant"),
            "arrival",
            self.arrival,
            "is not an arrival process",
            "use poisson or constant",
        )
        p.check(self.requests is None or self.requests > 0, "requests", self.requests, "must be positive", "e.g. 200")
        p.check(self.warmup >= 0, "warmup", self.warmup, "must be 0 or more", "e.g. the concurrency")
        p.check(
            self.duration_s is None or self.duration_s > 0,
            "duration_s",
            self.duration_s,
            "must be positive",
            "e.g. 120",
        )

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
        for flag, value in (
            ("--requests", self.requests),
            ("--warmup", self.warmup or None),
            ("--duration", self.duration_s),
            ("--prompt-tokens", self.prompt_tokens),
            ("--output-tokens", self.output_tokens),
            ("--instance", self.instance_type),
            ("--hourly-usd", self.hourly_usd),
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
