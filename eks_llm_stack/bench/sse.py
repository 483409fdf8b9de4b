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

_MAX_PENDING = 64 * 1024 * 1024  # a single event larger than this is not SSE from a model server


class StreamAccumulator:
    """Feeds SSE bytes into a :class:`RequestRecord` (chunk times, token counts, usage, errors)."""

    def __init__(self, record: RequestRecord, api: str) -> None:
        self.record = record
        self._chat = api == "chat"
        self._buffer = b""
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
        buf = self._buffer + data if self._buffer else data
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
            if raw:
                self._event(raw, arrived_ns)
                if self.done or self.error:
                    self._buffer = b""
                    return
        self._buffer = rest
        if len(rest) > _MAX_PENDING:
            self._fail("malformed_sse", f"an event exceeded {_MAX_PENDING} bytes without a blank line")

    def finish(self) -> None:
        """Called when the body ended: settle token counts and flag streams that stopped early."""
        if self._buffer.endswith(b"\r") and not (self.done or self.error):
            # A lone CR held back as a possible CR LF half: the body ended, so it was a line end.
            held, self._buffer = self._buffer, b""
            self.feed(held[:-1] + b"\n", self._last_arrived_ns)
        if self._buffer.strip() and not (self.done or self.error):
            self._fail("malformed_sse", f"stream ended inside an event: {self._buffer[:80]!r}")
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
        if raw.startswith(b"data: ") and b"\n" not in raw:
            # The one-line "data: {...}" event every OpenAI-compatible server sends: no line splitting.
            self._payload(raw[6:], arrived_ns)
            return
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
        if payload.strip() == b"[DONE]":
            self.done = True
            return
        try:
            obj = json.loads(payload)
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
        choices = obj.get("choices") or []
        usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else None
        if usage is not None and isinstance(usage.get("prompt_tokens"), int):
            rec.prompt_tokens = usage["prompt_tokens"]
        if not choices:
            # The final usage chunk (choices == []) of include_usage.
            if usage is not None and isinstance(usage.get("completion_tokens"), int):
                rec.usage_completion_tokens = usage["completion_tokens"]
            return
        text = _text_of(choices[0], self._chat)
        if usage is not None and isinstance(usage.get("completion_tokens"), int):
            total = usage["completion_tokens"]
            tokens = total - self._last_completion_tokens
            self._last_completion_tokens = total
            counted = True
        else:
            tokens = 1 if text else 0
            counted = False
        if tokens <= 0:
            return  # role-only or empty chunk: not a generated token
        if counted:
            self._continuous_chunks += 1
        else:
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
