"""Fixtures for the data tests: an isolated home and cache, and a local HTTP server.

Every test here runs with HOME, the minires cache and the Keras home pointing into its own
temporary directory, and with no MINIRES_DATA or MINIRES_NO_DOWNLOAD, so nothing on the
machine running the tests is read or written and no result depends on it.
"""

from __future__ import annotations

import http.server
import threading

import pytest

_ENV = ("MINIRES_DATA", "MINIRES_CACHE", "MINIRES_NO_DOWNLOAD", "XDG_CACHE_HOME", "KERAS_HOME")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """A fresh, empty HOME; the data environment variables unset."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    return home


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):
        route = self.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        body, announced = route
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) if announced is None else announced))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """A server on 127.0.0.1 in a thread. ``serve(path, body, announced=None)`` adds a route;
    ``announced`` sends a different Content-Length (a body cut short). Yields (base_url, serve).
    """
    routes: dict = {}
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def serve(path: str, body: bytes, announced: int | None = None) -> str:
        routes[path] = (body, announced)
        return f"http://127.0.0.1:{server.server_address[1]}{path}"

    try:
        yield serve
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
