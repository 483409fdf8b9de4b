"""Pod Security Standards, checked on manifests as data: what admission would refuse in a namespace.

``violations(manifest, level)`` lists why the pods a manifest creates (Pod, Deployment,
StatefulSet, DaemonSet, Job, CronJob, ReplicaSet, LeaderWorkerSet, and the pod templates of
prometheus-operator's Prometheus/Alertmanager are not covered: the operator writes their
security context) would be rejected at ``baseline`` or ``restricted``, following the rules of
the Kubernetes Pod Security Standards (v1.35):

* baseline: no host namespaces (``hostNetwork``/``hostPID``/``hostIPC``), no ``privileged``, no
  ``hostPath`` volumes, no ``hostPort``, capabilities added only from the default set, no
  ``Unconfined`` seccomp, no custom SELinux user/role, no ``procMount`` other than Default, only
  safe sysctls;
* restricted, in addition: volumes of the allowed kinds only, ``allowPrivilegeEscalation: false``,
  ``runAsNonRoot: true`` (pod or every container) and no uid 0, seccomp ``RuntimeDefault`` or
  ``Localhost`` (pod or every container), every capability dropped (``ALL``) and at most
  ``NET_BIND_SERVICE`` added.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_BASELINE_CAPS = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip
_RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip
LEVELS = ("privileged", "baseline", "restricted")


def pod_specs(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pod specs a workload manifest creates (empty for other kinds)."""
    kind, spec = manifest.get("kind"), manifest.get("spec") or {}
    if kind == "Pod":
        return [spec]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        return [spec.get("template", {}).get("spec", {})]
    if kind == "CronJob":
        return [spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})]
    if kind == "LeaderWorkerSet":
        lwt = spec.get("leaderWorkerTemplate", {})
        return [t["spec"] for t in (lwt.get("leaderTemplate"), lwt.get("workerTemplate")) if t]
    return []


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*(pod.get("initContainers") or ()), *(pod.get("containers") or ()), *(pod.get("ephemeralContainers") or ())]


def pod_violations(pod: Mapping[str, Any], level: str) -> list[str]:
    """Why ``pod`` would be refused at ``level`` (empty: admitted)."""
    if level not in LEVELS:
        raise ValueError(f"'{level}' is not a Pod Security level")
    if level == "privileged":
        return []
    out: list[str] = []
    psc = pod.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            out.append(f"{key}: true")
    for vol in pod.get("volumes") or ():
        if "hostPath" in vol:
            out.append(f"volume {vol.get('name')}: hostPath")
    for sysctl in psc.get("sysctls") or ():
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            out.append(f"sysctl {sysctl.get('name')}")
    if (psc.get("seccompProfile") or {}).get("type") == "Unconfined":
        out.append("pod seccompProfile Unconfined")
    for c in _containers(pod):
        name = c.get("name")
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            out.append(f"container {name}: privileged")
        for port in c.get("ports") or ():
            if port.get("hostPort"):
                out.append(f"container {name}: hostPort {port['hostPort']}")
        added = set((sc.get("capabilities") or {}).get("add") or ())
        if added - _BASELINE_CAPS:
            out.append(f"container {name}: adds {sorted(added - _BASELINE_CAPS)}")
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            out.append(f"container {name}: seccompProfile Unconfined")
        if sc.get("procMount") not in (None, "Default"):
            out.append(f"container {name}: procMount {sc['procMount']}")
        if level == "restricted":
            out += _restricted_container(c, psc)
    if level == "restricted":
        for vol in pod.get("volumes") or ():
            kinds = set(vol) - {"name"}
            if not kinds <= _RESTRICTED_VOLUMES:
                out.append(f"volume {vol.get('name')}: {sorted(kinds - _RESTRICTED_VOLUMES)}")
        if psc.get("runAsUser") == 0:
            out.append("pod runAsUser 0")
    return out


def _restricted_container(c: Mapping[str, Any], psc: Mapping[str, Any]) -> list[str]:
    name = c.get("name")
    sc = c.get("securityContext") or {}
    out: list[str] = []
    if sc.get("allowPrivilegeEscalation") is not False:
        out.append(f"container {name}: allowPrivilegeEscalation is not false")
    non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
    if non_root is not True:
        out.append(f"container {name}: runAsNonRoot is not true")
    if sc.get("runAsUser") == 0:
        out.append(f"container {name}: runAsUser 0")
    seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        out.append(f"container {name}: seccompProfile is not RuntimeDefault")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or ()):
        out.append(f"container {name}: capabilities do not drop ALL")
    if set(caps.get("add") or ()) - {"NET_BIND_SERVICE"}:
        out.append(f"container {name}: adds capabilities beyond NET_BIND_SERVICE")
    return out


def violations(manifests: Iterable[Mapping[str, Any]], levels: Mapping[str, str]) -> list[str]:
    """Every pod-creating manifest checked against its namespace's level (``levels``: namespace ->
    level; namespaces not listed are skipped). One line per problem: ``Kind/name: reason``."""
    out: list[str] = []
    for m in manifests:
        meta = m.get("metadata") or {}
        level = levels.get(meta.get("namespace", ""))
        if level is None:
            continue
        for pod in pod_specs(m):
            out += [
                f"{m['kind']}/{meta.get('name')} ({meta.get('namespace')}): {v}" for v in pod_violations(pod, level)
            ]
    return out


__all__ = ["LEVELS", "pod_specs", "pod_violations", "violations"]
