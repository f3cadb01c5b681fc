"""A loopback HTTP server for download tests: files served from memory, with injectable faults."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


@dataclass
class FakeServer:
    """What the loopback server serves, the faults it injects and the requests it saw."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    cut_once: set[str] = field(default_factory=set)
    no_range: set[str] = field(default_factory=set)
    errors: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str | None, str | None]] = field(default_factory=list)


def handler(state: FakeServer) -> type[BaseHTTPRequestHandler]:
    """A request handler serving ``state.files``: byte ranges, one-off cut connections, 503 errors."""
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?")[0]
            state.requests.append((path, self.headers.get("Range"), self.headers.get("Authorization")))
            if state.errors.get(path, 0) > 0:
                state.errors[path] -= 1
                self.send_error(503, "busy")
                return
            body = state.files.get(path)
            if body is None:
                self.send_error(404)
                return
            start = 0
            wanted = self.headers.get("Range")
            if wanted and path not in state.no_range:
                start = int(wanted.split("=")[1].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if path in state.cut_once:
                state.cut_once.discard(path)
                self.wfile.write(body[start:start + len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body[start:])

    return Handler


@contextmanager
def serving() -> Iterator[FakeServer]:
    """A threaded HTTP server on a free loopback port (its state), stopped on exit."""
    state = FakeServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
