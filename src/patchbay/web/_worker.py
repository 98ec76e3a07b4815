"""The cockpit's service worker script, as served at ``/sw.js``.

The worker caches the cockpit's static files under the server's version string, so a new
version replaces them. The version is the package version plus a digest of the cockpit files
(a changed file is a new version even without a release), and the script served is
``web/sw.js`` prefixed with ``self.PATCHBAY = {version, files}``: a new version is a new script,
which is what makes a browser install the new worker.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from importlib.abc import Traversable

from quart import Response
from quart_trio import QuartTrio

WORKER = "sw.js"
CACHED_SUFFIXES = (".html", ".js", ".css", ".svg", ".png", ".webmanifest", ".json")


def _files(root: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    found: list[tuple[str, Traversable]] = []
    for node in sorted(root.iterdir(), key=lambda n: n.name):
        name = f"{prefix}{node.name}"
        if node.is_dir():
            if not node.name.startswith(("_", ".")):
                found += _files(node, f"{name}/")
        elif node.name.endswith(CACHED_SUFFIXES) and name != WORKER:
            found.append((name, node))
    return found


def _package_version() -> str:
    try:
        return metadata.version("patchbay")
    except metadata.PackageNotFoundError:
        return "0"


class CockpitWorker:
    """Computed once per app: the version, the URLs to cache and the script to serve."""

    def __init__(self, cockpit: Traversable) -> None:
        files = _files(cockpit)
        digest = hashlib.sha256()
        for name, node in files:
            digest.update(name.encode() + b"\0" + node.read_bytes() + b"\0")
        source = cockpit.joinpath(WORKER).read_bytes()
        digest.update(source)
        self.version = f"{_package_version()}+{digest.hexdigest()[:12]}"
        urls = ["/manifest.webmanifest" if name == "manifest.webmanifest" else f"/static/{name}"
                for name, _node in files if name != "index.html"]
        header = json.dumps({"version": self.version, "files": urls})
        self.script = f"self.PATCHBAY = {header};\n".encode() + source


def install_worker_route(app: QuartTrio, cockpit: Traversable) -> None:
    """``GET /sw.js``: at the root, so its scope can be the whole cockpit."""
    worker = CockpitWorker(cockpit)

    @app.get("/sw.js")
    async def service_worker() -> Response:
        response = Response(worker.script, content_type="text/javascript; charset=utf-8")
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Service-Worker-Allowed"] = "/"
        return response
