"""A local HTTP server speaking Jina AI's and OpenAI's embeddings APIs, for embedb's provider tests.

* ``POST /v1/embeddings`` answers like Jina AI: errors as ``{"detail": ...}``.
* ``POST /openai/v1/embeddings`` answers like OpenAI: errors as ``{"error": {"message": ...}}``.

Vectors are deterministic (``vector_for(text, dims)``: a small hash-seeded noise vector plus, for
the seed example's texts, a shared "Java programming" direction so that the seed query is closest to
documents 1 and then 4). They are sent as base64 little-endian float32 when the request asks for
base64 (Jina ``embedding_type``, OpenAI ``encoding_format``) unless ``float_mode`` is on, and the
``data`` items are shuffled so that clients must order them by ``index``.

Every request is recorded (path, headers with lower-case names, JSON body, arrival time). Failures
are scripted: ``script`` holds responses ``(status, headers, body)`` served one per request before
normal service resumes; ``persistent`` is served to every request while set. Requests whose bearer
token is not in ``valid_keys`` get 401.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import struct
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator, Optional

JINA_PATH = "/v1/embeddings"
JINA_RERANK_PATH = "/v1/rerank"
OPENAI_PATH = "/openai/v1/embeddings"

DEFAULT_DIMS = {
    "jina-embeddings-v4": 2048,
    "jina-embeddings-v3": 1024,
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
}

# The seed example: the query shares a direction with documents 1 and (less) 4.
TOPICS = {
    "Java: Object-oriented language for cross-platform development.": {0: 1.0},
    "Java's syntax is used in Android apps.": {0: 0.9, 1: 0.35},
    "How to start learning Java programming?": {0: 1.0},
}


def vector_for(text: str, dims: int) -> list[float]:
    """The double's embedding of ``text``, as float32 values."""
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    scale = 0.1 / math.sqrt(dims)
    v = [rng.gauss(0.0, 1.0) * scale for _ in range(dims)]
    for axis, weight in TOPICS.get(text, {}).items():
        if axis < dims:
            v[axis] += weight
    return list(struct.unpack(f"<{dims}f", struct.pack(f"<{dims}f", *v)))


def rerank_score(query: str, document: str) -> float:
    """The double's reranker: the share of the query's words in the document, plus a small
    hash-seeded tie-breaker below 0.001."""
    q, d = set(query.lower().split()), set(document.lower().split())
    jitter = int.from_bytes(hashlib.sha256((query + "\0" + document).encode()).digest()[:4], "big") / 2**32 / 1000
    return len(q & d) / max(len(q), 1) + jitter


def rerank_reply(body: dict) -> dict:
    """A rerank API's answer (Jina's and Cohere's share it): results sorted by score, best first."""
    docs = body["documents"]
    results = [{"index": i, "relevance_score": rerank_score(body["query"], d)} for i, d in enumerate(docs)]
    results.sort(key=lambda r: -r["relevance_score"])
    return {"model": body["model"], "results": results[: body.get("top_n") or len(results)],
            "usage": {"total_tokens": sum(len(d.split()) for d in docs)}}


def cosine_distance(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return 1.0 - dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class EmbeddingDouble:
    valid_keys: set[str] = field(default_factory=set)
    requests: list[Recorded] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)
    persistent: Optional[tuple[int, dict[str, str], Any]] = None
    float_mode: bool = False
    delay: float = 0.0
    # A request holding a text that contains ``poison`` gets 400 (a text the provider rejects).
    poison: Optional[str] = None
    # While set and not released, requests wait for it (to hold a request in flight).
    gate: Optional[threading.Event] = None
    # Every text answered with an embedding (status 200), in order.
    served: list[str] = field(default_factory=list)
    # (n, seconds): at most n requests accepted per sliding window, others get 429.
    rate_limit: Optional[tuple[int, float]] = None
    # Arrival times of accepted requests, and of those refused by the rate limit.
    accepted: list[float] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.server: Optional[ThreadingHTTPServer] = None
        self.thread: Optional[threading.Thread] = None
        self.counter = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "EmbeddingDouble":
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes: without this, Nagle's algorithm holds the
            # body until the client's delayed ACK, adding ~40 ms to every reply.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                double._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.script.clear()
            self.persistent = None
            self.float_mode = False
            self.delay = 0.0
            self.poison = None
            self.gate = None
            self.served.clear()
            self.rate_limit = None
            self.accepted.clear()
            self.refused.clear()
            self.max_in_flight = 0

    # -- serving -----------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path = h.path
        with self.lock:
            self.requests.append(Recorded(path, {k.lower(): v for k, v in h.headers.items()}, body, time.monotonic()))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.counter += 1
            seq = self.counter
            scripted = self.script.pop(0) if self.script else self.persistent
            delay = self.delay
            gate = self.gate
        finished = False

        def send(status: int, headers: dict[str, str], payload: Any) -> None:
            # The request stops counting as in flight before its reply leaves: the client may
            # start its next request the moment it has the reply.
            nonlocal finished
            with self.lock:
                self.in_flight -= 1
                finished = True
            self._send(h, status, headers, payload)

        try:
            if delay:
                time.sleep(delay)
            if gate is not None:
                gate.wait(60)
            openai = path == OPENAI_PATH
            if path == JINA_RERANK_PATH:
                auth = h.headers.get("Authorization", "")
                if auth[len("Bearer "):] not in self.valid_keys:
                    return send(401, {}, {"detail": "Invalid API key"})
                return send(200, {}, rerank_reply(body))
            if path not in (JINA_PATH, OPENAI_PATH):
                return send(404, {}, {"detail": "Not Found"})
            auth = h.headers.get("Authorization", "")
            token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
            if token not in self.valid_keys:
                err = ({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
                       if openai else {"detail": "Invalid API key"})
                return send(401, {}, err)
            if scripted is not None:
                status, headers, payload = scripted
                return send(status, headers, payload)
            if self.rate_limit is not None:
                n, window = self.rate_limit
                now = time.monotonic()
                with self.lock:
                    recent = sum(1 for t in self.accepted if now - t < window)
                    if recent >= n:
                        self.refused.append(now)
                    else:
                        self.accepted.append(now)
                if recent >= n:
                    return send(429, {"Retry-After": "1"}, {"detail": "rate limit exceeded"})
            if self.poison and any(self.poison in t for t in body.get("input", [])):
                return send(400, {}, {"detail": "input rejected: unsupported content"})
            reply = self._embeddings(body, openai, seq)
            with self.lock:
                self.served.extend(body["input"])
            return send(200, {}, reply)
        finally:
            if not finished:
                with self.lock:
                    self.in_flight -= 1

    def _embeddings(self, body: dict, openai: bool, seq: int) -> dict:
        model = body["model"]
        texts = body["input"]
        dims = body.get("dimensions") or DEFAULT_DIMS.get(model, 64)
        wants_b64 = (body.get("encoding_format") if openai else body.get("embedding_type")) == "base64"
        data = []
        for i, t in enumerate(texts):
            v = vector_for(t, dims)
            emb: Any = (base64.b64encode(struct.pack(f"<{dims}f", *v)).decode()
                        if wants_b64 and not self.float_mode else v)
            data.append({"object": "embedding", "index": i, "embedding": emb})
        random.Random(seq).shuffle(data)
        tokens = sum(len(t.split()) for t in texts)
        return {"model": model, "object": "list", "usage": {"total_tokens": tokens, "prompt_tokens": tokens},
                "data": data}

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: Any) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json" if not isinstance(payload, bytes) else "text/plain")
        h.send_header("Content-Length", str(len(raw)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(raw)

    # -- inspection --------------------------------------------------------------------------
    def take(self) -> list[Recorded]:
        """The requests so far, clearing the record."""
        with self.lock:
            out = list(self.requests)
            self.requests.clear()
            return out


@contextmanager
def running(valid_keys: set[str]) -> Iterator[EmbeddingDouble]:
    """A started double accepting `valid_keys`, stopped afterwards (a module fixture's body)."""
    d = EmbeddingDouble(valid_keys=valid_keys).start()
    try:
        yield d
    finally:
        d.stop()
