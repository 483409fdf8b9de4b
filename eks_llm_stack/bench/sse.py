"""Server-sent events from an OpenAI-compatible streaming endpoint, turned into token-carrying chunks.

The parser is fed raw bytes together with the time they arrived; every event decoded from one
read shares that arrival time. It never raises on bad input: a malformed event marks the
stream failed (``error = "malformed_sse"``) and the caller stops reading.

Token accounting, in order of preference:

1. continuous usage stats (vLLM ``stream_options.continuous_usage_stats``): each chunk carries the
   cumulative ``usage.completion_tokens``, so the tokens of a chunk are the increase - exact even
   when one chunk carries several tokens (speculative decoding, stream intervals);
2. a final usage chunk only (``include_usage``): the total is exact, the split over chunks is
   estimated by spreading the total evenly over the token-carrying chunks;
3. no usage: one token per chunk with non-empty text, flagged as estimated.
"""

from __future__ import annotations

import json
from typing import Any

from .records import RequestRecord

try:
    # orjson decodes a chunk of a model server's stream 3-4x faster than json: at tens of
    # thousands of chunks a second that is most of the client's CPU. Optional: json does the
    # same job, slower.
    import orjson

    _loads: Any = orjson.loads
except ImportError:  # pragma: no cover - exercised by forcing the fallback in the tests
    _loads = json.loads

_MAX_PENDING = 64 * 1024 * 1024  # a single event larger than this is not SSE from a model server


class StreamAccumulator:
    """Feeds SSE bytes into a :class:`RequestRecord` (chunk times, token counts, usage, errors)."""

    def __init__(self, record: RequestRecord, api: str) -> None:
        self.record = record
        self._chat = api == "chat"
        self._buffer = bytearray()
        self._last_completion_tokens = 0
        self._continuous_chunks = 0
        self._estimated_chunks = 0
        self._last_arrived_ns = 0
        self.done = False
        self.error: str | None = None
        self.error_detail: str | None = None

    def feed(self, data: bytes, arrived_ns: int) -> None:
        """Consume bytes that arrived at ``arrived_ns``; complete events are processed at once.

        One pass over the bytes whatever their size: under load a single read can hold hundreds
        of events, and searching the whole remaining buffer once per event (and per separator
        kind) made parsing quadratic in the read size - the slower the client got, the bigger its
        reads and the slower it got.
        """
        if self.done or self.error:
            return
        self._last_arrived_ns = arrived_ns
        pending = self._buffer
        if pending:
            if (
                b"\n\n" not in data
                and b"\r" not in data
                and not pending.endswith(b"\r")
                and not (data[:1] == b"\n" and pending.endswith(b"\n"))
            ):
                # No event ends in these bytes: keep them (amortised append, so an event that
                # arrives in many small reads costs its size, not its size times the reads).
                pending += data
                if len(pending) > _MAX_PENDING:
                    self._fail("malformed_sse", f"an event exceeded {_MAX_PENDING} bytes without a blank line")
                return
            buf = bytes(pending) + data
        else:
            buf = data
        if b"\r" in buf:
            # SSE lines may end in CR LF or a lone CR: normalise to LF. A CR at the very end may
            # be the first half of a CR LF split across two reads, so it waits for the next read.
            held = buf.endswith(b"\r")
            if held:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if held:
                buf += b"\r"
        events = buf.split(b"\n\n")
        rest = events.pop()  # the part after the last blank line: an event still arriving
        for raw in events:
            if raw[:6] == b"data: " and b"\n" not in raw:
                # The one-line "data: {...}" event every OpenAI-compatible server sends.
                self._payload(raw[6:], arrived_ns)
            elif raw:
                self._event(raw, arrived_ns)
            else:
                continue
            if self.done or self.error:
                self._buffer = bytearray()
                return
        self._buffer = bytearray(rest)
        if len(rest) > _MAX_PENDING:
            self._fail("malformed_sse", f"an event exceeded {_MAX_PENDING} bytes without a blank line")

    def finish(self) -> None:
        """Called when the body ended: settle token counts and flag streams that stopped early."""
        if self._buffer.endswith(b"\r") and not (self.done or self.error):
            # A lone CR held back as a possible CR LF half: the body ended, so it was a line end.
            held, self._buffer = bytes(self._buffer), bytearray()
            self.feed(held[:-1] + b"\n", self._last_arrived_ns)
        if self._buffer.strip() and not (self.done or self.error):
            self._fail("malformed_sse", f"stream ended inside an event: {bytes(self._buffer[:80])!r}")
        if not (self.done or self.error):
            self._fail("incomplete", "stream ended without 'data: [DONE]'")
        rec = self.record
        if rec.usage_completion_tokens is not None and self._estimated_chunks and not self._continuous_chunks:
            # Final usage only: the total is exact, the split over chunks is not.
            rec.token_source = "final_usage"
            n = len(rec.chunk_tokens)
            if n:
                base, extra = divmod(rec.usage_completion_tokens, n)
                rec.chunk_tokens = [base + (1 if i < extra else 0) for i in range(n)]
        elif self._continuous_chunks and not self._estimated_chunks:
            rec.token_source = "usage"
        else:
            rec.token_source = "estimated"

    def _fail(self, kind: str, detail: str) -> None:
        self.error = kind
        self.error_detail = detail[:300]

    def _event(self, raw: bytes, arrived_ns: int) -> None:
        """An event of several lines, comments or fields other than ``data``."""
        data_lines = []
        for line in raw.split(b"\n"):
            if not line or line.startswith(b":"):
                continue  # comment / keep-alive
            name, _, value = line.partition(b":")
            if name == b"data":
                data_lines.append(value[1:] if value.startswith(b" ") else value)
            elif name not in (b"event", b"id", b"retry"):
                self._fail("malformed_sse", f"unexpected SSE line {line[:80]!r}")
                return
        if data_lines:
            self._payload(b"\n".join(data_lines), arrived_ns)

    def _payload(self, payload: bytes, arrived_ns: int) -> None:
        if payload[:1] != b"{" and payload.strip() == b"[DONE]":
            self.done = True
            return
        try:
            obj = _loads(payload)
        except ValueError:
            self._fail("malformed_sse", f"data is not JSON: {payload[:80]!r}")
            return
        if not isinstance(obj, dict):
            self._fail("malformed_sse", f"data is not a JSON object: {payload[:80]!r}")
            return
        if "error" in obj:
            # vLLM reports a failure after the headers went out as an error event in the stream.
            self._fail("stream_error", json.dumps(obj["error"])[:300])
            return
        self._chunk(obj, arrived_ns)

    def _chunk(self, obj: dict[str, Any], arrived_ns: int) -> None:
        rec = self.record
        choices = obj.get("choices")
        usage = obj.get("usage")
        completion = None
        if usage is not None and type(usage) is dict:
            prompt = usage.get("prompt_tokens")
            if isinstance(prompt, int):
                rec.prompt_tokens = prompt
            completion = usage.get("completion_tokens")
            if not isinstance(completion, int):
                completion = None
        if not choices:
            # The final usage chunk (choices == []) of include_usage.
            if completion is not None:
                rec.usage_completion_tokens = completion
            return
        if completion is not None:
            tokens = completion - self._last_completion_tokens
            self._last_completion_tokens = completion
            if tokens <= 0:
                return  # role-only or empty chunk: not a generated token
            self._continuous_chunks += 1
        else:
            if not _text_of(choices[0], self._chat):
                return
            tokens = 1
            self._estimated_chunks += 1
        rec.chunk_ns.append(arrived_ns)
        rec.chunk_tokens.append(tokens)


def _text_of(choice: Any, chat: bool) -> str:
    if not isinstance(choice, dict):
        return ""
    if not chat:
        text = choice.get("text")
        return text if isinstance(text, str) else ""
    delta = choice.get("delta") or {}
    if not isinstance(delta, dict):
        return ""
    parts = [delta.get(k) for k in ("content", "reasoning_content", "reasoning")]
    return "".join(p for p in parts if isinstance(p, str))
