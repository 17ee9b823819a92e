"""The one local HTTP server: the demo site (`edgeproof serve`), the browser tests and the browser
benchmarks all serve a folder through it.

It is a static server for 127.0.0.1 only, hardened for a folder that may hold someone else's files:
- no directory listings (a folder without index.html is a 404);
- nothing outside the served folder: a path whose real location (symlinks resolved) leaves the folder
  is a 404, so a symlink in the site cannot expose the rest of the disk;
- cross-origin isolated (COOP same-origin + COEP require-corp): SharedArrayBuffer, and with it
  multi-threaded WebAssembly, is available to the page. Every resource is same-origin, so nothing breaks;
- `.wasm` served as application/wasm (streaming compilation), no caching (a rebuilt site shows on reload).
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import sys
import threading
from pathlib import Path
from typing import Iterator

from edgeproof.errors import EdgeproofError

MIME_TYPES = {
    ".wasm": "application/wasm",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".css": "text/css",
    ".html": "text/html",
    ".bin": "application/octet-stream",
    ".tflite": "application/octet-stream",
    ".onnx": "application/octet-stream",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}

# What a static host must send for the page to be cross-origin isolated (see docs: "Hosting the demo").
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
                     "Cross-Origin-Resource-Policy": "same-origin"}


class ServerError(EdgeproofError):
    """The server cannot start (bad port, port in use, folder missing)."""


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def end_headers(self) -> None:
        for key, value in ISOLATION_HEADERS.items():
            self.send_header(key, value)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def translate_path(self, path: str) -> str:
        """The file for `path`, or a name that does not exist when it would leave the served folder."""
        candidate = super().translate_path(path)
        root = os.path.realpath(self.directory)
        real = os.path.realpath(candidate)
        if real != root and not real.startswith(root + os.sep):
            return os.path.join(root, ".edgeproof-outside-the-site")  # never exists: a 404
        return candidate

    def list_directory(self, path):  # noqa: ANN001 - the base class's signature
        self.send_error(404, "No directory listings")
        return None

    def log_message(self, fmt: str, *args) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return  # the browser cancelled a request (page reload, navigation): not an error
        super().handle_error(request, client_address)


def make_server(folder: Path | str, port: int = 8000) -> http.server.ThreadingHTTPServer:
    """A server for `folder` bound to 127.0.0.1:`port` (0 picks a free port); the caller runs it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ServerError(f"{folder} is not a folder: nothing to serve")
    if not 0 <= int(port) <= 65535:
        raise ServerError(f"--port {port} is not a TCP port: pick one from 0 to 65535 (0: any free port)")
    handler = functools.partial(_Handler, directory=str(folder.resolve()))
    try:
        return _Server(("127.0.0.1", int(port)), handler)
    except OSError as err:
        raise ServerError(f"cannot listen on 127.0.0.1:{port} ({err.strerror}): pick another port") from None


@contextlib.contextmanager
def serving(folder: Path | str) -> Iterator[str]:
    """Serve `folder` on a free port in a background thread; yields the base URL (no trailing slash)."""
    server = make_server(folder, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def serve_forever(folder: Path | str, port: int = 8000) -> None:
    """Serve `folder` on 127.0.0.1 until Ctrl-C."""
    server = make_server(folder, port)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"Serving {Path(folder).resolve()} at {url} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        server.server_close()
