"""The sink's overflow file: rows that arrive while PostgreSQL is away and the in-memory queue is full.

Rows are appended in chunks (one pickle frame per chunk) to a file of this process's own in the data
directory and read back in the same order once the database returns; the file is removed when it has been read
to the end. Pickle, not JSON: the rows are our own Python values (Decimal, aware datetimes, NamedTuples) written and
read by the same process, never data from elsewhere, and they must come back exactly.
"""

from __future__ import annotations

import os
import pickle
import uuid
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from kalshi_analytics.recorder.rows import SinkItem

CHUNK_ROWS = 1000


class SpillFull(Exception):
    """The spill file reached its byte budget: the caller must wait (backpressure)."""


class Spill:
    """An append-only FIFO of rows on disk (plus the last, not yet full chunk in memory)."""

    def __init__(self, directory: Path, *, max_bytes: int, chunk_rows: int = CHUNK_ROWS) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.chunk_rows = chunk_rows
        self.path: Path | None = None
        self._writer: IO[bytes] | None = None
        self._reader: IO[bytes] | None = None
        self._tail: list[SinkItem] = []  # newest rows, not yet a chunk on disk
        self._chunks_on_disk = 0
        self._head: deque[SinkItem] = deque()  # a chunk read back, being handed out
        self.rows = 0  # rows held (on disk, in the tail and in the head)
        self.bytes_written = 0
        self.total_spilled = 0

    def __len__(self) -> int:
        return self.rows

    def append(self, item: SinkItem) -> None:
        if self.bytes_written >= self.max_bytes:
            raise SpillFull(f"spill file over {self.max_bytes} bytes")
        self._tail.append(item)
        self.rows += 1
        self.total_spilled += 1
        if len(self._tail) >= self.chunk_rows:
            self._write_tail()

    def take(self, n: int) -> list[SinkItem]:
        """Up to ``n`` of the oldest rows, removed from the spill; [] when it is empty."""
        out: list[SinkItem] = []
        while len(out) < n:
            if not self._head:
                if self._chunks_on_disk:
                    self._head.extend(self._read_chunk())
                elif self._tail:
                    self._head.extend(self._tail)
                    self._tail = []
                else:
                    break
            while self._head and len(out) < n:
                out.append(self._head.popleft())
        self.rows -= len(out)
        if self.rows == 0:
            self.close()
        return out

    def close(self) -> None:
        """Forget everything held and remove the file."""
        for f in (self._writer, self._reader):
            if f is not None:
                f.close()
        self._writer = self._reader = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self.path = None
        self._tail, self._head = [], deque()
        self._chunks_on_disk = 0
        self.rows = 0
        self.bytes_written = 0

    def _write_tail(self) -> None:
        if self._writer is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.path = self.directory / f"recorder-spill-{os.getpid()}-{uuid.uuid4().hex[:8]}.pickle"
            self._writer = self.path.open("ab")
            self._reader = self.path.open("rb")
        data = pickle.dumps(self._tail, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(len(data).to_bytes(8, "big") + data)
        self._writer.flush()  # the reader is a second handle on the same file
        self.bytes_written += len(data) + 8
        self._chunks_on_disk += 1
        self._tail = []

    def _read_chunk(self) -> Sequence[SinkItem]:
        assert self._reader is not None
        size = int.from_bytes(self._reader.read(8), "big")
        self._chunks_on_disk -= 1
        rows: list[SinkItem] = pickle.loads(self._reader.read(size))  # noqa: S301 - our own file, see the docstring
        return rows
