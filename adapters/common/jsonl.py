"""Newline-delimited JSON records from a child's stdout, shared by the stdio adapters.

Records are split on the newline byte only (a JSON string may contain U+2028, which
``str.splitlines`` would split on); a trailing ``\\r`` is dropped. A line longer than the bound
is discarded up to its newline and reported as ``Oversized``, so one bad record never
desynchronizes the stream.
"""

from __future__ import annotations

import attrs

MAX_LINE_BYTES = 8 * 1024 * 1024


@attrs.frozen
class Oversized:
    """A line that exceeded the bound; its bytes were dropped."""

    size: int


class LineSplitter:
    """Split a byte stream into records on ``\\n`` only, with a bounded record size."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._dropping = 0  # bytes of an oversized line dropped so far (0: not dropping)

    def feed(self, data: bytes | bytearray) -> list[bytes | Oversized]:
        records: list[bytes | Oversized] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            if self._dropping:
                self._dropping += len(piece)
            else:
                self._buffer += piece
                if len(self._buffer) > self.max_line:
                    self._dropping = len(self._buffer)
                    self._buffer.clear()
            if end < 0:
                return records
            if self._dropping:
                records.append(Oversized(self._dropping))
                self._dropping = 0
            else:
                line = bytes(self._buffer)
                self._buffer.clear()
                records.append(line[:-1] if line.endswith(b"\r") else line)
            start = end + 1

    def pending(self) -> bytes:
        """What is left without a newline (at end of stream)."""
        return bytes(self._buffer)
