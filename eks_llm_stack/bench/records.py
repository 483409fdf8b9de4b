"""What the harness records about one request, and how its latencies follow from that record.

Every timestamp is ``time.perf_counter_ns()`` taken when the bytes arrived (the read returned),
not when they were parsed. A record keeps the raw chunk arrival times and the tokens each chunk
carried, so every figure in a summary can be recomputed from ``requests.jsonl`` alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: How the output token counts of a request were obtained.
#: ``usage`` - per chunk, from the server's continuous usage stats (exact);
#: ``final_usage`` - total from the final usage chunk, per-chunk split estimated;
#: ``estimated`` - no usage at all, one token per non-empty chunk assumed.
TOKEN_SOURCES = ("usage", "final_usage", "estimated")

#: Error types a request can end with (``None`` when it succeeded).
ERROR_TYPES = (
    "http_4xx",
    "http_5xx",
    "timeout",
    "disconnect",
    "malformed_sse",
    "connection",
    "incomplete",
    "not_streaming",
)


@dataclass(kw_only=True)
class RequestRecord:
    """One request as measured. Times are nanoseconds on the monotonic clock of the client."""

    index: int
    level: int
    #: When the request was due (open loop: its arrival time; closed loop: when its worker was free).
    scheduled_ns: int
    #: Immediately before the request was handed to the connection.
    sent_ns: int
    #: When the response finished (last byte, error or timeout).
    done_ns: int = 0
    #: Arrival time of every chunk that carried at least one generated token.
    chunk_ns: list[int] = field(default_factory=list)
    #: Generated tokens carried by each of those chunks (same length as ``chunk_ns``).
    chunk_tokens: list[int] = field(default_factory=list)
    prompt_tokens: int | None = None
    #: Output tokens the server reported in its final usage (``None`` without usage).
    usage_completion_tokens: int | None = None
    token_source: str = "estimated"
    status: int | None = None
    error: str | None = None
    error_detail: str | None = None
    requested_prompt_tokens: int | None = None
    requested_output_tokens: int | None = None
    #: Sent to warm the level up; kept in requests.jsonl, left out of the level's figures.
    warmup: bool = False
    #: Multi-turn sessions: the session's number, this request's turn (1-based) and the turns the
    #: session has (None outside a session run).
    session: int | None = None
    turn: int | None = None
    session_turns: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def output_tokens(self) -> int:
        """Generated tokens: the server's final count when it gave one, else the sum over chunks."""
        if self.usage_completion_tokens is not None:
            return self.usage_completion_tokens
        return sum(self.chunk_tokens)

    @property
    def schedule_delay_ms(self) -> float:
        """How late the request left the client compared with when it was due (coordinated omission)."""
        return (self.sent_ns - self.scheduled_ns) / 1e6

    @property
    def ttft_ms(self) -> float | None:
        """Request sent -> first chunk carrying at least one generated token."""
        if not self.chunk_ns:
            return None
        return (self.chunk_ns[0] - self.sent_ns) / 1e6

    @property
    def e2e_ms(self) -> float:
        return (self.done_ns - self.sent_ns) / 1e6

    @property
    def tokens_after_first_chunk(self) -> int:
        """The ITL denominator: tokens generated after the first token-carrying chunk arrived."""
        if not self.chunk_tokens:
            return 0
        return self.output_tokens - self.chunk_tokens[0]

    @property
    def itl_ms(self) -> float | None:
        """(t_last_token - t_first_token) / tokens generated after the first chunk.

        With one token per chunk this is REFERENCE's (t_last - t_first) / (n - 1); with several
        tokens per chunk the tokens of the first chunk arrived at t_first and do not count.
        ``None`` when nothing was generated after the first chunk.
        """
        n = self.tokens_after_first_chunk
        if len(self.chunk_ns) < 2 or n <= 0:
            return None
        return (self.chunk_ns[-1] - self.chunk_ns[0]) / 1e6 / n

    @property
    def inter_chunk_gaps_ms(self) -> list[float]:
        """Gaps between successive token-carrying chunks (what vLLM bench calls "ITL")."""
        return [(b - a) / 1e6 for a, b in zip(self.chunk_ns, self.chunk_ns[1:], strict=False)]

    @property
    def output_tokens_per_s(self) -> float | None:
        """Per-request TPS: output tokens / E2E latency."""
        e2e = self.e2e_ms
        if not self.ok or e2e <= 0 or self.output_tokens <= 0:
            return None
        return self.output_tokens / (e2e / 1e3)

    def to_json(self, origin_ns: int) -> dict[str, Any]:
        """The ``requests.jsonl`` row: times in ms relative to the run's origin, derived values included."""
        raw = asdict(self)
        for key in ("scheduled_ns", "sent_ns", "done_ns"):
            raw.pop(key)
        raw.pop("chunk_ns")
        raw.update(
            scheduled_ms=(self.scheduled_ns - origin_ns) / 1e6,
            sent_ms=(self.sent_ns - origin_ns) / 1e6,
            done_ms=(self.done_ns - origin_ns) / 1e6,
            chunk_ms=[(t - self.sent_ns) / 1e6 for t in self.chunk_ns],
            output_tokens=self.output_tokens,
            ttft_ms=self.ttft_ms,
            itl_ms=self.itl_ms,
            e2e_ms=self.e2e_ms,
            schedule_delay_ms=self.schedule_delay_ms,
        )
        return raw

    @classmethod
    def from_json(cls, row: dict[str, Any], origin_ns: int = 0) -> RequestRecord:
        """Inverse of :meth:`to_json` (nanosecond times rebuilt relative to ``origin_ns``)."""
        sent_ns = origin_ns + round(row["sent_ms"] * 1e6)
        return cls(
            index=row["index"],
            level=row["level"],
            scheduled_ns=origin_ns + round(row["scheduled_ms"] * 1e6),
            sent_ns=sent_ns,
            done_ns=origin_ns + round(row["done_ms"] * 1e6),
            chunk_ns=[sent_ns + round(t * 1e6) for t in row["chunk_ms"]],
            chunk_tokens=list(row["chunk_tokens"]),
            prompt_tokens=row.get("prompt_tokens"),
            usage_completion_tokens=row.get("usage_completion_tokens"),
            token_source=row.get("token_source", "estimated"),
            status=row.get("status"),
            error=row.get("error"),
            error_detail=row.get("error_detail"),
            requested_prompt_tokens=row.get("requested_prompt_tokens"),
            requested_output_tokens=row.get("requested_output_tokens"),
            warmup=bool(row.get("warmup", False)),
            session=row.get("session"),
            turn=row.get("turn"),
            session_turns=row.get("session_turns"),
        )
