"""What the server refuses before a route sees a request: heads and bodies too large or too slow.

Two layers, because each sees what the other cannot. `http_protocol(limits)` is uvicorn's
httptools protocol with a guard on each request head, where its bytes arrive: a head longer
than `max_head_bytes` is answered 431 as soon as it is that long (never buffered whole), and
a head still incomplete `head_timeout_s` after its first byte (or after the connection
opened) is answered 408 and closed, so a client sending one header line a second cannot
hold a connection. `LimitsMiddleware` is the ASGI half, for whatever server runs the app:
headers over the limit 431, a body over `max_body_bytes` 413 whether its length is declared
or it arrives chunked, a body still arriving `body_timeout_s` after its head 408 (each of
these closes the connection), and a WebSocket its client closed is closed quietly: a normal
event, not a traceback. `uvicorn_config` puts both in place.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from fastapi import HTTPException

CLOSE = {"Connection": "close"}


@dataclass(frozen=True)
class Limits:
    max_head_bytes: int = 8 * 1024  # request line and headers; an API key is 56 bytes
    max_body_bytes: int = 1 << 20
    head_timeout_s: float = 10.0  # from a request's first byte (or the connection's start) to its last header
    body_timeout_s: float = 30.0  # from the end of the head to the end of the body


def head_size(scope) -> int:
    """The bytes of a request head as sent: request line and `name: value` lines."""
    line = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + 16
    return line + sum(len(name) + len(value) + 4 for name, value in scope.get("headers") or [])


def _error_body(status: int, detail: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    return body, headers


class LimitsMiddleware:
    """Pure ASGI (no buffering): head size, body size and body time for HTTP; quiet closes for WebSockets."""

    def __init__(self, app, limits: Limits):
        self.app, self.limits = app, limits

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            return await self._http(scope, receive, send)
        if scope["type"] == "websocket":
            return await self._websocket(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _refuse(self, send, status: int, detail: str) -> None:
        body, headers = _error_body(status, detail)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _http(self, scope, receive, send):
        limits = self.limits
        if head_size(scope) > limits.max_head_bytes:
            return await self._refuse(send, 431, f"request headers over {limits.max_head_bytes} bytes")
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limits.max_body_bytes):
            return await self._refuse(send, 413, f"request body over {limits.max_body_bytes} bytes")
        deadline = asyncio.get_running_loop().time() + limits.body_timeout_s
        seen, complete = 0, False

        async def limited():
            nonlocal seen, complete
            if complete:  # the body is in: waiting for a disconnect is the app's business, for as long as it likes
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, f"request body not received within {limits.body_timeout_s:g} s",
                                    headers=CLOSE) from None
            seen += len(message.get("body", b""))
            if seen > limits.max_body_bytes:  # a chunked body declares no length: counted as it streams in
                raise HTTPException(413, f"request body over {limits.max_body_bytes} bytes", headers=CLOSE)
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, limited, send)

    async def _websocket(self, scope, receive, send):
        if head_size(scope) > self.limits.max_head_bytes:
            return await send({"type": "websocket.close", "code": 1008})
        gone = False

        async def watched():
            nonlocal gone
            message = await receive()
            gone = gone or message["type"] == "websocket.disconnect"
            return message

        async def quiet(message):
            if message["type"] != "websocket.close":
                return await send(message)
            if gone:  # the client closed first: nothing is left to close
                return
            try:
                await send(message)
            except OSError:  # it went while we were closing
                pass

        await self.app(scope, watched, quiet)


def http_protocol(limits: Limits):
    """uvicorn's httptools protocol with the head guard, for `uvicorn.Config(http=...)`; None without httptools."""
    try:
        from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
    except ImportError:
        return None

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.in_head, self.head_bytes, self.head_tail = True, 0, b""
            self.head_timer = self.loop.call_later(limits.head_timeout_s, self.head_timed_out)

        def connection_lost(self, exc) -> None:
            self.stop_head_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.in_head:
                if self.head_timer is None:  # the first bytes of the next request on a kept-alive connection
                    self.head_timer = self.loop.call_later(limits.head_timeout_s, self.head_timed_out)
                joined = self.head_tail + data
                end = joined.find(b"\r\n\r\n")  # where the head ends, if it ends in this chunk
                size = self.head_bytes + (len(data) if end < 0 else end + 4 - len(self.head_tail))
                if size > limits.max_head_bytes:
                    return self.refuse(431, f"request headers over {limits.max_head_bytes} bytes")
                self.head_bytes, self.head_tail = self.head_bytes + len(data), joined[-3:]
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self.stop_head_timer()
            self.in_head, self.head_bytes, self.head_tail = False, 0, b""
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            # The next bytes start the next head. (One that starts inside this chunk is counted from the next
            # chunk on: a pipelining client may exceed the limit by one read, never more.)
            self.in_head = True

        def stop_head_timer(self) -> None:
            if getattr(self, "head_timer", None) is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def responding(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def head_timed_out(self) -> None:
            self.head_timer = None
            if not self.in_head or self.transport.is_closing():
                return
            if self.responding():  # a pipelined head waits while uvicorn, answering, has stopped reading: not its fault
                self.head_timer = self.loop.call_later(limits.head_timeout_s, self.head_timed_out)
            elif self.head_bytes:
                self.refuse(408, f"request headers not received within {limits.head_timeout_s:g} s")
            else:
                self.transport.close()  # a connection that never said anything

        def refuse(self, status: int, detail: str) -> None:
            self.stop_head_timer()
            self.in_head = False
            if not self.responding():  # else the answer in flight would be cut by this one: just close
                body, headers = _error_body(status, detail)
                lines = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
                self.transport.write(STATUS_LINE[status] + lines + b"\r\n" + body)
            self.transport.close()

    return GuardedHttpToolsProtocol


def uvicorn_config(app, limits: Limits, **options):
    """A `uvicorn.Config` with the head guard and the WebSocket message limit; `options` as uvicorn takes them."""
    import uvicorn

    protocol = http_protocol(limits)
    guard = {"http": protocol} if protocol is not None else {"h11_max_incomplete_event_size": limits.max_head_bytes}
    return uvicorn.Config(app, ws_max_size=limits.max_body_bytes, **guard, **options)
