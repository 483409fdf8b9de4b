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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import EksLlmStackError

#: Attempts per call (the first one included) in botocore's standard retry mode.
MAX_ATTEMPTS = 8

T = TypeVar("T")


class AwsError(EksLlmStackError):
    """An AWS-side problem a user can act on (no credentials, a wrong account, ...)."""


class AwsAccessError(AwsError):
    """AWS could not be reached or would not answer: credentials, endpoint or throttling. Exit code 4."""

    exit_code = 4


#: Exit code of every ops command when AWS cannot be used (see :func:`aws_failure`).
EXIT_AWS_ACCESS = AwsAccessError.exit_code

_FIX_CREDENTIALS = (
    "set AWS_PROFILE (and run 'aws sso login') or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; "
    "in GitHub Actions, run aws-actions/configure-aws-credentials first"
)
_EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"})
_INVALID_CODES = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "AuthFailure", "InvalidToken"}
)
_THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)


def aws_failure(exc: BaseException) -> tuple[str, str] | None:
    """``(what happened, how to fix it)`` for the AWS failures a user fixes outside the code, else None.

    No credentials, expired or rejected credentials, an endpoint that does not answer, and
    throttling that outlasted botocore's standard retries. Shared by ``preflight`` (as a failed
    row) and every ``ephemeral`` verb (as one error line and exit code 4, never a traceback).
    """
    from botocore import exceptions as bx

    name = type(exc).__name__
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return "no AWS credentials found", _FIX_CREDENTIALS
    if isinstance(exc, bx.ProfileNotFound):
        return f"AWS_PROFILE names a profile that does not exist ({exc})", "fix AWS_PROFILE or ~/.aws/config"
    if isinstance(exc, bx.TokenRetrievalError | bx.UnauthorizedSSOTokenError | bx.SSOTokenLoadError) or name in (
        "SSOError",
    ):
        return f"the AWS SSO session has expired or was never started ({exc})", "run 'aws sso login' and try again"
    if isinstance(exc, bx.CredentialRetrievalError):
        return f"AWS credentials could not be obtained ({exc})", _FIX_CREDENTIALS
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ConnectionClosedError):
        return (
            f"cannot reach the AWS endpoint ({exc})",
            "check the network and AWS_REGION; if AWS_ENDPOINT_URL is set, check that the endpoint is running",
        )
    if isinstance(exc, bx.ReadTimeoutError):
        return f"the AWS endpoint did not answer in time ({exc})", "try again; check the network or AWS_ENDPOINT_URL"
    code = error_code(exc)
    if code in _EXPIRED_CODES:
        return f"the AWS credentials have expired ({code})", "refresh them ('aws sso login', or assume the role again)"
    if code in _INVALID_CODES:
        return f"AWS rejected the credentials ({code})", _FIX_CREDENTIALS
    if code in _THROTTLE_CODES:
        return (
            f"AWS is throttling the requests ({code}) after {MAX_ATTEMPTS} attempts with backoff",
            "wait a few minutes and run the command again; another job may be calling the same API heavily",
        )
    return None


@contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """Turn an AWS access failure inside the block into one :class:`AwsAccessError` naming ``what``."""
    try:
        yield
    except EksLlmStackError:
        raise
    except Exception as exc:
        failure = aws_failure(exc)
        if failure is None:
            raise
        raise AwsAccessError(f"{what}: {failure[0]}\n  fix: {failure[1]}") from None


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

    def in_region(self, region: str) -> Aws:
        """The same credentials in another region (new clients)."""
        return Aws(region=region, profile_name=self.profile_name, _session=None)

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
