"""The HTTP client the question generator gives its private copy of an OpenAI-style LLM.

Two measured costs decide its shape (2-core AMD EPYC, AVX2, loopback servers; benchmarks/RESULTS.md):

- **CPU per request.** httpx's own connection pool costs ~4.8 ms of CPU per request (it rescans
  every connection on each event), openai's aiohttp transport ~1 ms. With every request on one
  event loop that is the difference between CPU-bound and latency-bound generation.
- **Delayed-ACK stalls.** A server that writes a response's headers and body in two ``send`` calls
  without ``TCP_NODELAY`` (Python's ``http.server``, and the simple OpenAI-compatible shims built on
  it) holds the body back (Nagle) until the client acknowledges the headers, and Linux clients
  delay that acknowledgement by ~40 ms. Every request then costs its latency plus ~44 ms. The
  transport here puts each connection in quick-ACK mode whenever data arrives, so the
  acknowledgement leaves at once: 44 ms -> 1 ms per request against such a server, no change
  against servers that do not stall. ``TCP_QUICKACK`` is Linux-only; elsewhere nothing changes.

Example::

    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url="http://127.0.0.1:8000/v1", http_client=aiohttp_client("http://127.0.0.1:8000/v1"))
"""

from __future__ import annotations

import functools
import logging
import socket
from functools import lru_cache
from typing import Any, Optional

logger = logging.getLogger(__name__)

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def aiohttp_client(base_url: str) -> Optional[Any]:
    """openai's aiohttp-backed HTTP client with quick ACKs, or ``None`` (the SDK's httpx default).

    ``None`` when the ``httpx-aiohttp`` package (openai's ``aiohttp`` extra) is missing. A plain-http
    server (a local model server) needs no certificates, whose loading costs ~0.1 s per client;
    an https URL is verified with one context per process.
    """
    try:
        import httpx_aiohttp  # noqa: F401  (openai's `aiohttp` extra)
        from openai import DefaultAioHttpClient
        from openai._constants import DEFAULT_CONNECTION_LIMITS
    except ImportError:
        return None
    verify = False if base_url.startswith("http://") else _ssl_context()
    transport = _quickack_transport_class()(verify=verify, limits=DEFAULT_CONNECTION_LIMITS) if _QUICKACK else None
    return DefaultAioHttpClient(verify=verify, transport=transport)


@lru_cache(maxsize=1)
def _ssl_context() -> Any:
    """httpx's default verifying SSL context (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), built once."""
    import httpx

    return httpx.create_ssl_context(trust_env=True)


@lru_cache(maxsize=1)
def _quickack_transport_class() -> Any:
    """httpx-aiohttp's transport with quick-ACK connections (built on first use: aiohttp loads lazily)."""
    from aiohttp.client_proto import ResponseHandler
    from httpx_aiohttp import AiohttpTransport

    class QuickAckResponseHandler(ResponseHandler):
        """aiohttp's protocol, acknowledging received data at once (see the module docstring)."""

        def data_received(self, data: bytes) -> None:
            sock = self.transport.get_extra_info("socket") if self.transport is not None else None
            if sock is not None:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
                except OSError:  # not TCP (a Unix socket), or the option is refused: nothing to gain
                    pass
            super().data_received(data)

    class QuickAckTransport(AiohttpTransport):
        """httpx-aiohttp's transport whose connections use :class:`QuickAckResponseHandler`."""

        def get_client(self) -> Any:
            session = super().get_client()
            connector = session.connector
            factory = getattr(connector, "_factory", None)
            if isinstance(factory, functools.partial) and factory.func is ResponseHandler:
                connector._factory = functools.partial(QuickAckResponseHandler, *factory.args, **factory.keywords)
            else:  # a future aiohttp builds its protocols differently: keep its own
                logger.debug("aiohttp's connector has no protocol factory to wrap; quick ACKs are off.")
            return session

    return QuickAckTransport
