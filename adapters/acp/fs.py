"""``fs/read_text_file`` and ``fs/write_text_file`` for an agent, confined to its workspace.

A path must be absolute and, with every symlink resolved, inside the slot's workspace: no
``..`` or symlink escape. A refused request answers the agent with an error and is reported
(the slot audits it as an ``fs_refused`` observation). A missing file reads as empty content
(Gemini CLI reads a file before writing it and fails the write on an error answer).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MAX_READ_BYTES = 16 * 1024 * 1024


class FsRefused(Exception):
    """A request outside the workspace (or malformed); the message says why."""


def confine(workspace: Path, raw: Any) -> Path:
    if not isinstance(raw, str) or not raw:
        raise FsRefused("the request needs a 'path'")
    path = Path(raw)
    if not path.is_absolute():
        raise FsRefused(f"{raw} is not an absolute path")
    root = workspace.resolve()
    resolved = path.resolve()  # follows every symlink that exists, and ``..``
    if resolved != root and root not in resolved.parents:
        raise FsRefused(f"{raw} is outside the workspace {root}")
    return resolved


def read_text(workspace: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    path = confine(workspace, params.get("path"))
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_READ_BYTES + 1)
    except FileNotFoundError:
        return {"content": ""}
    except (IsADirectoryError, PermissionError) as error:
        raise FsRefused(f"cannot read {path}: {error.strerror}") from None
    if len(data) > MAX_READ_BYTES:
        raise FsRefused(f"{path} is larger than {MAX_READ_BYTES} bytes")
    text = data.decode("utf-8", "replace")
    line, limit = params.get("line"), params.get("limit")
    if isinstance(line, int) or isinstance(limit, int):
        lines = text.splitlines(keepends=True)
        start = max(0, (line if isinstance(line, int) else 1) - 1)
        end = start + limit if isinstance(limit, int) and limit >= 0 else None
        text = "".join(lines[start:end])
    return {"content": text}


def write_text(workspace: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    path = confine(workspace, params.get("path"))
    content = params.get("content")
    if not isinstance(content, str):
        raise FsRefused("the request needs a string 'content'")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.patchbay-tmp")
    try:
        tmp.write_text(content)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise FsRefused(f"cannot write {path}: {error.strerror}") from None
    return {}
