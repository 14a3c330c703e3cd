"""A local HTTP server speaking Cohere's, Gemini's, Hugging Face's and NVIDIA NIM's embedding APIs,
for embedb's provider tests (``test_embed_providers_more.py``). Vectors are ``vector_for(text, dims)``
from ``embedding_api``; each API's reply has its own shape, and errors look like that API's.

* ``POST /v2/rerank`` — Cohere rerank v2 (scores from ``embedding_api.rerank_score``).
* ``POST /v2/embed`` — Cohere embed v2 (bearer key; ``{"embeddings": {"float": [...]}}``; errors
  ``{"message": ...}``). Dimensions from ``output_dimension``.
* ``POST /v1beta/models/<model>:batchEmbedContents`` — Gemini (``x-goog-api-key``; a bad key is 400
  ``API_KEY_INVALID``; ``{"embeddings": [{"values": [...]}]}``). Dimensions from
  ``outputDimensionality``.
* ``POST /hf/models/<org>/<model>/pipeline/feature-extraction`` — Hugging Face (bearer key; a list of
  vectors; errors ``{"error": ...}``). Base ``<url>/hf``.
* ``POST /nim/v1/embeddings`` — NVIDIA NIM, OpenAI-compatible (bearer key; ``data`` shuffled, float
  arrays or base64 by ``encoding_format``). Base ``<url>/nim``.

Every request is recorded; ``persistent`` (status, body) is served to every authorised request
while set.
"""

from __future__ import annotations

import base64
import json
import random
import re
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

from doubles.embedding_api import Recorded, rerank_reply, vector_for

COHERE_PATH = "/v2/embed"
COHERE_RERANK_PATH = "/v2/rerank"
GEMINI_RE = re.compile(r"^/v1beta/models/([^/:]+):batchEmbedContents$")
HF_RE = re.compile(r"^/hf/models/(.+)/pipeline/feature-extraction$")
NIM_PATH = "/nim/v1/embeddings"
DEFAULT_DIMS = 8


@dataclass
class MoreEmbeddingDouble:
    valid_keys: set[str] = field(default_factory=set)
    requests: list[Recorded] = field(default_factory=list)
    persistent: Optional[tuple[int, Any]] = None

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.server: Optional[ThreadingHTTPServer] = None
        self.counter = 0

    def start(self) -> "MoreEmbeddingDouble":
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                double._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
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
            self.persistent = None

    def take(self) -> list[Recorded]:
        with self.lock:
            out = list(self.requests)
            self.requests.clear()
            return out

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        import time
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path = h.path
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self.lock:
            self.requests.append(Recorded(path, headers, body, time.monotonic()))
            self.counter += 1
            seq = self.counter
            persistent = self.persistent
        bearer = headers.get("authorization", "")
        bearer = bearer[len("Bearer "):] if bearer.startswith("Bearer ") else None

        if path == COHERE_RERANK_PATH:
            if bearer not in self.valid_keys:
                return self._send(h, 401, {"id": "x", "message": "invalid api token"})
            reply = rerank_reply(body)
            return self._send(h, 200, {"id": "r1", "results": reply["results"], "meta": {"billed_units": {"search_units": 1}}})
        if path == COHERE_PATH:
            if bearer not in self.valid_keys:
                return self._send(h, 401, {"id": "x", "message": "invalid api token"})
            if persistent:
                return self._send(h, *persistent)
            dims = body.get("output_dimension") or DEFAULT_DIMS
            return self._send(h, 200, {"id": "e1", "texts": body["texts"], "response_type": "embeddings_by_type",
                                       "embeddings": {"float": [vector_for(t, dims) for t in body["texts"]]},
                                       "meta": {"billed_units": {"input_tokens": 3}}})
        m = GEMINI_RE.match(path)
        if m:
            if headers.get("x-goog-api-key") not in self.valid_keys:
                return self._send(h, 400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                                     "status": "INVALID_ARGUMENT",
                                                     "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                                                  "reason": "API_KEY_INVALID"}]}})
            if persistent:
                return self._send(h, *persistent)
            out = []
            for r in body["requests"]:
                dims = r.get("outputDimensionality") or DEFAULT_DIMS
                out.append({"values": vector_for(r["content"]["parts"][0]["text"], dims)})
            return self._send(h, 200, {"embeddings": out})
        m = HF_RE.match(path)
        if m:
            if bearer not in self.valid_keys:
                return self._send(h, 401, {"error": "Invalid credentials in Authorization header"})
            if persistent:
                return self._send(h, *persistent)
            return self._send(h, 200, [vector_for(t, DEFAULT_DIMS) for t in body["inputs"]])
        if path == NIM_PATH:
            if bearer not in self.valid_keys:
                return self._send(h, 401, {"status": 401, "title": "Unauthorized", "detail": "Authentication failed"})
            if persistent:
                return self._send(h, *persistent)
            dims = body.get("dimensions") or DEFAULT_DIMS
            data = []
            for i, t in enumerate(body["input"]):
                v = vector_for(t, dims)
                emb: Any = (base64.b64encode(struct.pack(f"<{dims}f", *v)).decode()
                            if body.get("encoding_format") == "base64" else v)
                data.append({"object": "embedding", "index": i, "embedding": emb})
            random.Random(seq).shuffle(data)
            return self._send(h, 200, {"object": "list", "model": body["model"], "data": data,
                                       "usage": {"prompt_tokens": 3, "total_tokens": 3}})
        return self._send(h, 404, {"error": "Not Found"})

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        raw = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)
