"""A virtual clock whose time lives in shared memory, so another process can read it.

The fake providers read it to stamp requests and compute rate-limit resets in the same
virtual time the dispatcher under test sleeps in.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from multiprocessing import resource_tracker, shared_memory

from journeys.clock import as_utc

_FORMAT = "d"
_CREATED: set[str] = set()  # names this process created (and the resource tracker knows)


class SharedClock:
    """A :class:`~journeys.clock.VirtualClock` readable from other processes by ``name``.

    The creator owns the memory and must :meth:`close` it; :meth:`attach` opens it elsewhere.
    """

    def __init__(self, start: datetime | None = None, *, name: str | None = None) -> None:
        self._owner = name is None
        if name is None:
            self._shm = shared_memory.SharedMemory(create=True, size=struct.calcsize(_FORMAT))
            _CREATED.add(self._shm.name)
            self._write(as_utc(start or datetime(2026, 3, 1, tzinfo=UTC)).timestamp())
        else:
            self._shm = shared_memory.SharedMemory(name=name)
            if name not in _CREATED:
                # Python < 3.13 would unlink memory it merely attached to when this process
                # exits, under the creator's feet.
                resource_tracker.unregister(self._shm._name, "shared_memory")  # type: ignore[attr-defined]

    @classmethod
    def attach(cls, name: str) -> SharedClock:
        """The clock another process created as ``name``."""
        return cls(name=name)

    @property
    def name(self) -> str:
        """What another process passes to :meth:`attach`."""
        return self._shm.name

    def _write(self, epoch: float) -> None:
        struct.pack_into(_FORMAT, self._shm.buf, 0, epoch)

    def epoch(self) -> float:
        """The virtual time as epoch seconds."""
        return float(struct.unpack_from(_FORMAT, self._shm.buf, 0)[0])

    def now(self) -> datetime:
        """The virtual time."""
        return datetime.fromtimestamp(self.epoch(), UTC)

    def set(self, when: datetime) -> None:
        """Jump to ``when``; time never goes backwards."""
        target = as_utc(when).timestamp()
        if target < self.epoch():
            raise ValueError(f"virtual time cannot go back from {self.now()} to {when}")
        self._write(target)

    def advance(self, delta: timedelta) -> None:
        """Move forward by ``delta``."""
        self._write(self.epoch() + delta.total_seconds())

    def sleep(self, seconds: float) -> None:
        """Waiting in virtual time is moving the clock forward."""
        if seconds > 0:
            self._write(self.epoch() + seconds)

    def close(self) -> None:
        """Release the shared memory (and remove it, when this process created it)."""
        self._shm.close()
        if self._owner:
            _CREATED.discard(self._shm.name)
            self._shm.unlink()
