"""An AWS load balancer in front of a model: an ALB Ingress or an NLB Service (AWS Load Balancer Controller)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import cdk8s
from constructs import Construct

from ..conventions import VLLM_PORT_NAME as PORT_NAME
from ..errors import collecting
from .kube import named_object


@dataclass(frozen=True, kw_only=True)
class ModelIngress:
    """An AWS load balancer in front of the model (needs the AWS Load Balancer Controller).

    ``kind`` — ``alb`` (an Ingress: HTTPS listener on 443) or ``nlb`` (a LoadBalancer Service:
    TLS listener on 443) (default alb). ``certificate_arn`` — ACM certificate (required: TLS only).
    ``scheme`` — internal (default) or internet-facing. ``host`` — ALB host rule (default any).
    ``allowed_cidrs`` — client CIDRs (required: the controller's own default is 0.0.0.0/0).
    ``idle_timeout_seconds`` — ALB idle timeout; long enough for a slow stream (default 600).
    ``access_logs_bucket`` / ``access_logs_prefix`` — S3 access logs (default none).
    ``waf_acl_arn`` — AWS WAF web ACL on the ALB (default none). The ALB routes ``/v1`` only.
    """

    certificate_arn: str
    kind: Literal["alb", "nlb"] = "alb"
    scheme: Literal["internal", "internet-facing"] = "internal"
    host: str | None = None
    allowed_cidrs: tuple[str, ...] = ()
    idle_timeout_seconds: int = 600
    access_logs_bucket: str | None = None
    access_logs_prefix: str = ""
    waf_acl_arn: str | None = None

    def __post_init__(self) -> None:
        with collecting("ModelIngress") as p:
            # The controller's own default is 0.0.0.0/0, whatever the scheme: never leave it to that.
            p.check(
                bool(self.allowed_cidrs),
                "allowed_cidrs",
                (),
                "is empty (the load balancer controller would admit 0.0.0.0/0)",
                "list the client CIDRs, e.g. the VPC CIDR",
            )
            p.check(
                self.waf_acl_arn is None or self.kind == "alb",
                "waf_acl_arn",
                self.waf_acl_arn,
                "attaches to an ALB only",
                "use kind alb, or no WAF ACL",
            )

    def attributes(self) -> str:
        """The ``load-balancer-attributes`` annotation value."""
        attrs = [f"idle_timeout.timeout_seconds={self.idle_timeout_seconds}"] if self.kind == "alb" else []
        if self.access_logs_bucket:
            attrs += ["access_logs.s3.enabled=true", f"access_logs.s3.bucket={self.access_logs_bucket}"]
            if self.access_logs_prefix:
                attrs.append(f"access_logs.s3.prefix={self.access_logs_prefix}")
        return ",".join(attrs)


def model_ingress(
    scope: Construct,
    ing: ModelIngress,
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    selector: Mapping[str, str],
) -> cdk8s.ApiObject:
    """The Ingress (``alb``) or LoadBalancer Service (``nlb``) for the model Service ``name``."""
    if ing.kind == "alb":
        annotations = {
            "alb.ingress.kubernetes.io/scheme": ing.scheme,
            "alb.ingress.kubernetes.io/target-type": "ip",
            "alb.ingress.kubernetes.io/listen-ports": '[{"HTTPS": 443}]',
            "alb.ingress.kubernetes.io/certificate-arn": ing.certificate_arn,
            "alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "alb.ingress.kubernetes.io/healthcheck-path": "/health",
            "alb.ingress.kubernetes.io/load-balancer-attributes": ing.attributes(),
            "alb.ingress.kubernetes.io/inbound-cidrs": ",".join(ing.allowed_cidrs),
        }
        if ing.waf_acl_arn is not None:
            annotations["alb.ingress.kubernetes.io/wafv2-acl-arn"] = ing.waf_acl_arn
        rule: dict[str, Any] = {
            "http": {
                "paths": [
                    {
                        # The OpenAPI surface only: /metrics, /tokenize, /pause ... stay inside the cluster.
                        "path": "/v1",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": name, "port": {"name": PORT_NAME}}},
                    }
                ]
            }
        }
        if ing.host is not None:
            rule["host"] = ing.host
        obj = named_object(
            scope,
            "Ingress",
            "networking.k8s.io/v1",
            "Ingress",
            name,
            namespace,
            labels,
            {"spec": {"ingressClassName": "alb", "rules": [rule]}},
            annotations=annotations,
        )
    else:
        annotations = {
            "service.beta.kubernetes.io/aws-load-balancer-scheme": ing.scheme,
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-ssl-cert": ing.certificate_arn,
            "service.beta.kubernetes.io/aws-load-balancer-ssl-ports": "443",
            "service.beta.kubernetes.io/aws-load-balancer-healthcheck-path": "/health",
            "service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol": "HTTP",
        }
        if ing.attributes():
            annotations["service.beta.kubernetes.io/aws-load-balancer-attributes"] = ing.attributes()
        spec: dict[str, Any] = {
            "type": "LoadBalancer",
            "loadBalancerClass": "service.k8s.aws/nlb",
            "selector": dict(selector),
            "ports": [{"name": "https", "port": 443, "targetPort": PORT_NAME, "protocol": "TCP"}],
        }
        # An NLB forwards TCP, it cannot route by path: the API-key middleware guards every path but
        # /health, /metrics, /ping and /version, and these source ranges bound who gets that far.
        spec["loadBalancerSourceRanges"] = list(ing.allowed_cidrs)
        obj = named_object(
            scope, "Ingress", "v1", "Service", f"{name}-lb", namespace, labels, {"spec": spec}, annotations=annotations
        )
    return obj
