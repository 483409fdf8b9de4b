"""boto3 sessions and clients for the ops commands, and a bounded wait loop.

Every command honours the standard AWS environment so that it runs unchanged against a real
account, a CI role or a local AWS emulator:

* ``AWS_PROFILE`` picks the named profile (boto3 reads it itself);
* ``AWS_REGION`` (then ``AWS_DEFAULT_REGION``, then the profile's ``region``) picks the region;
* ``AWS_ENDPOINT_URL`` (and the per-service ``AWS_ENDPOINT_URL_<SERVICE>``) points every client
  at another endpoint; botocore reads both itself.

Clients use botocore's *standard* retry mode: throttling and transient errors (5xx,
``RequestLimitExceeded``, connection resets) are retried with exponential backoff and jitter,
so a busy account does not fail a 20-minute deploy at its last call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import EksLlmStackError

#: Attempts per call (the first one included) in botocore's standard retry mode.
MAX_ATTEMPTS = 8

T = TypeVar("T")


class AwsError(EksLlmStackError):
    """An AWS-side problem a user can act on (no credentials, a wrong account, ...)."""


class WaitTimeout(EksLlmStackError):
    """A wait ran out of time; the message says what it was waiting for and what it last saw."""


def region_from_env(fallback: str | None = None) -> str | None:
    """The region the standard environment asks for, else ``fallback`` (usually the profile's)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or fallback


def client_config() -> Any:
    """The botocore config of every client: standard retries, a user agent that names us."""
    from botocore.config import Config

    from .. import __version__

    return Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        user_agent_extra=f"eks-llm-stack/{__version__}",
    )


@dataclass
class Aws:
    """One boto3 session and its clients, created on first use and reused.

    ``Aws.from_env(region)`` is what the commands use. Tests build one inside ``mock_aws()``
    and may attach a botocore ``Stubber`` to ``aws.client("service-quotas")`` before the code
    under test runs, because the same client object is returned on every call.
    """

    region: str | None = None
    profile_name: str | None = None
    _session: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, fallback_region: str | None = None) -> Aws:
        return cls(region=region_from_env(fallback_region), profile_name=os.environ.get("AWS_PROFILE") or None)

    @property
    def session(self) -> Any:
        if self._session is None:
            import boto3

            self._session = boto3.Session(profile_name=self.profile_name, region_name=self.region)
        return self._session

    @property
    def region_name(self) -> str:
        name = self.session.region_name
        if not name:
            raise AwsError(
                "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), "
                "give the profile a 'region', or configure one for AWS_PROFILE"
            )
        return str(name)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=self.region_name, config=client_config())
        return self._clients[service]


def paginate(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    """Every item of ``key`` over all pages of ``operation``."""
    items: list[Any] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key, ()))
    return items


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (empty for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def wait_until(
    what: str,
    probe: Callable[[], tuple[bool, str]],
    *,
    timeout: float,
    interval: float = 15.0,
    progress: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Call ``probe`` until it returns ``(True, state)``; return that last state.

    ``probe`` returns ``(done, state)`` where ``state`` is a short description of what it
    saw ("CREATE_IN_PROGRESS", "1/2 replicas ready"). Each new state is reported through
    ``progress``, so a user watching a long wait knows it is moving. After ``timeout`` seconds
    :class:`WaitTimeout` names ``what`` was awaited, for how long, and the last state seen.
    """
    start = clock()
    last = ""
    while True:
        done, state = probe()
        if progress and state != last:
            progress(f"{what}: {state} ({clock() - start:.0f}s)")
        last = state
        if done:
            return state
        elapsed = clock() - start
        if elapsed >= timeout:
            raise WaitTimeout(
                f"gave up waiting for {what} after {elapsed:.0f}s (timeout {timeout:.0f}s); last state: {state or 'unknown'}"
            )
        sleep(min(interval, max(timeout - elapsed, 0.0)))
