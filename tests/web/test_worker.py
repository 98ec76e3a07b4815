"""The service worker script served at /sw.js: versioned by the cockpit's files."""

from __future__ import annotations

import json
from pathlib import Path

from patchbay.web._worker import CockpitWorker


def cockpit(tmp: Path, main: str) -> Path:
    (tmp / "js").mkdir(parents=True, exist_ok=True)
    (tmp / "index.html").write_text("<!doctype html>")
    (tmp / "sw.js").write_text("// worker\n")
    (tmp / "__init__.py").write_text("")
    (tmp / "manifest.webmanifest").write_text("{}")
    (tmp / "js" / "main.js").write_text(main)
    return tmp


def header(worker: CockpitWorker) -> dict[str, object]:
    first, _, rest = worker.script.partition(b"\n")
    assert rest == b"// worker\n"
    assert first.startswith(b"self.PATCHBAY = ") and first.endswith(b";")
    return dict(json.loads(first[len(b"self.PATCHBAY = "):-1]))


def test_the_script_names_the_version_and_the_files_to_cache(tmp_path: Path) -> None:
    worker = CockpitWorker(cockpit(tmp_path, "one"))  # type: ignore[arg-type]
    doc = header(worker)
    assert doc["version"] == worker.version
    assert doc["files"] == ["/static/js/main.js", "/manifest.webmanifest"]


def test_a_changed_file_is_a_new_version(tmp_path: Path) -> None:
    before = CockpitWorker(cockpit(tmp_path / "a", "one")).version  # type: ignore[arg-type]
    same = CockpitWorker(cockpit(tmp_path / "b", "one")).version  # type: ignore[arg-type]
    after = CockpitWorker(cockpit(tmp_path / "c", "two")).version  # type: ignore[arg-type]
    assert before == same and after != before
