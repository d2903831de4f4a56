"""``medswap review --serve``: the page on 127.0.0.1, signing decisions as the reviewer clicks.

Only the loopback address is bound. Every URL starts with a random token (``secrets``, 128
bits), so another local user or a web page in the same browser cannot guess where to post a
decision; requests whose ``Host`` is not this server's (DNS rebinding) are refused. The
server answers two things: the page (GET ``/<token>/``) and a decision (POST
``/<token>/decision``), which it checks, signs and writes as a manifest beside the video.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from medswap.errors import MedswapError
from medswap.review.api import ReviewPage, approve
from medswap.review.sign import Decision

log = logging.getLogger(__name__)
#: Largest decision body accepted (a name, notes and a few ranges).
MAX_BODY = 64 * 1024


class ReviewServer(ThreadingHTTPServer):
    """The review page's server; ``url`` holds the token. ``serve_forever`` until stopped."""

    daemon_threads = True

    def __init__(
        self,
        page: ReviewPage,
        key_file: Path,
        port: int = 0,
        on_decision: Callable[[Path, dict], None] | None = None,
    ) -> None:
        self.page, self.key_file = page, key_file
        self.token = secrets.token_urlsafe(16)
        self.on_decision = on_decision
        self.lock = threading.Lock()  # one signature at a time: manifests are replaced whole
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{self.token}/"


class _Handler(BaseHTTPRequestHandler):
    server: ReviewServer

    def log_message(self, format: str, *args: object) -> None:  # quiet: no URLs in logs
        log.debug("review server: " + format, *args)

    def _send(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, payload: dict) -> None:
        self._send(code, json.dumps(payload).encode(), "application/json")

    def _allowed(self) -> bool:
        host = self.headers.get("Host", "")
        return host == f"127.0.0.1:{self.server.server_address[1]}"

    def do_GET(self) -> None:
        prefix = f"/{self.server.token}/"
        if not self._allowed() or self.path not in (prefix, prefix + "index.html"):
            self._send(404, b"not found", "text/plain")
            return
        self._send(200, self.server.page.html.encode(), "text/html; charset=utf-8")

    def do_POST(self) -> None:
        if not self._allowed() or self.path != f"/{self.server.token}/decision":
            self._send(404, b"not found", "text/plain")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            self._json(413, {"error": "decision body missing or too large"})
            return
        try:
            decision = Decision.from_json(json.loads(self.rfile.read(length)))
            with self.server.lock:
                path, manifest = approve(self.server.page.reviews, decision, self.server.key_file)
        except ValueError:
            self._json(400, {"error": "the decision is not JSON"})
            return
        except MedswapError as exc:
            self._json(409, {"error": str(exc)})
            return
        if self.server.on_decision is not None:
            self.server.on_decision(path, manifest)
        rel = path.relative_to(self.server.page.reviews.root).as_posix()
        self._json(
            200,
            {
                "manifest": rel,
                "key_id": manifest["key_id"],
                "decision": manifest["decision"],
                "releasable": manifest["releasable"],
            },
        )
