"""Image pre-pull: a DaemonSet that pulls the serving image onto every node of a GPU pool.

A new GPU node then starts vLLM from a local image instead of pulling 10-20 GB while the
replica waits (REFERENCE, "Container start-up": image prefetch during node bootstrap saves
70-90 % of start-up time). The pull happens in an init container that exits at once; the
DaemonSet then holds a pause container (a few MiB) so the kubelet keeps the image on the node
while image garbage collection is under pressure. It requests no GPU, so it never competes
with a model for one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from constructs import Construct

from .. import versions
from ..conventions import MANAGED_BY
from ..errors import collecting
from ..gates.checkov import PINNED_TAG, PINNED_TAG_PULL, k8s_skip_annotations
from ..naming import check_dns_label
from .kube import named_object, pool_scheduling, restricted_security_context


@dataclass(frozen=True, kw_only=True)
class ImagePrepullProps:
    """Pre-pull ``images`` on the nodes of ``pool``.

    ``name`` / ``namespace`` — of the DaemonSet (required). ``images`` — images to pull
    (required, with their tags; each needs ``/bin/sh``: the init container runs ``/bin/sh -c true``).
    ``pools`` — GPU pool names (default: every GPU node).
    ``labels`` — extra labels (default none).
    """

    name: str
    namespace: str
    images: tuple[str, ...]
    pools: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        with collecting(f"ImagePrepullProps '{self.name}'") as p:
            check_dns_label(p, "name", self.name)
            check_dns_label(p, "namespace", self.namespace)
            p.check(bool(self.images), "images", self.images, "is empty", "name at least one image to pre-pull")
            p.check(
                all(":" in i.rsplit("/", 1)[-1] or "@" in i for i in self.images),
                "images",
                self.images,
                "an image without a tag would pull :latest, not what the model runs",
                "give each image its tag or digest",
            )


class ImagePrepull(Construct):
    """The DaemonSet (``.daemon_set``)."""

    def __init__(self, scope: Construct, id: str, *, props: ImagePrepullProps) -> None:
        super().__init__(scope, id)
        selector = {"app.kubernetes.io/name": "image-prepull", "app.kubernetes.io/instance": props.name}
        labels = {**dict(props.labels), **MANAGED_BY, **selector}
        # Node selection and the GPU toleration through the shared helper; gpus=0: no GPU requested.
        sched = pool_scheduling(gpus=0, pools=props.pools)
        small = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}}
        init = [
            {
                "name": f"pull-{i}",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                # The pull is the point; running the image only has to end at once.
                "command": ["/bin/sh", "-c", "true"],
                "resources": small,
                "securityContext": restricted_security_context(uid=65532),
            }
            for i, image in enumerate(props.images)
        ]
        pod: dict[str, Any] = {
            **sched["pod"],
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 5,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "initContainers": init,
            "containers": [
                {
                    "name": "hold",
                    "image": versions.PAUSE_IMAGE.uri,
                    "resources": small,
                    "securityContext": restricted_security_context(uid=65532),
                }
            ],
        }
        spec = {
            "selector": {"matchLabels": selector},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        }
        idle = "the container only sleeps once its image is on the node; there is nothing to probe"
        skips = {
            "CKV_K8S_8": idle,
            "CKV_K8S_9": idle,
            "CKV_K8S_11": "a sleeping container; a CPU limit would only add throttling accounting",
            "CKV_K8S_15": PINNED_TAG_PULL,
            "CKV_K8S_43": PINNED_TAG,
        }
        self.daemon_set = named_object(
            self,
            "DaemonSet",
            "apps/v1",
            "DaemonSet",
            props.name,
            props.namespace,
            labels,
            {"spec": spec},
            annotations=k8s_skip_annotations(skips),
        )
