"""What every part of the store shares: the engine and short sessions.

A session lives for one method call, so the store is safe to use from many
threads at once (each call takes a pooled connection of its own). Sessions do
not expire rows on commit: methods return the rows they read, and callers read
their attributes after the session has closed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from engine.store.db import create_db_engine, writer

log = logging.getLogger("flowdesk.store")

T = TypeVar("T")

#: Attempts of a write that lost a race on a unique key (the re-read then finds the winner's row).
CONFLICT_ATTEMPTS = 3

#: ``with_for_update`` for a row that a write transaction reads, then decides on: ``SELECT ... FOR NO KEY
#: UPDATE`` on PostgreSQL, where writers run side by side (READ COMMITTED) and would otherwise decide on
#: what another one is changing. NO KEY: inserts referencing the row (foreign keys) are not held up.
#: SQLite ignores it: BEGIN IMMEDIATE already serialises its writers.
ROW_LOCK: dict[str, Any] = {"key_share": True}


P = ParamSpec("P")
S = TypeVar("S", bound="StoreBase")


def changes_people(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
    """Mark a write of users or queues: ``people_generation`` moves once it has committed (or failed)."""

    @functools.wraps(method)
    def write(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(self, *args, **kwargs)
        finally:
            self.people_generation += 1

    return write


class StoreBase:
    """The engine and the session helpers the store's parts are written with."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_db_engine(url)
        self._writer = writer(self.engine)
        # Log writes from the event loop go through these threads. SQLite takes one
        # writer at a time anyway: one thread spares the others from waiting on its
        # lock (measured: a third of a busy worker's time went to that wait).
        threads = 1 if self.engine.dialect.name == "sqlite" else 4
        self._write_threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="flowdesk-store-write")
        #: bumped by this process's writes of users and queues: readers that cache who is in which
        #: queue read again (another process's writes are seen when their cache expires)
        self.people_generation = 0

    async def in_write_thread(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a write method from an event loop without blocking it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._write_threads, partial(work, *args, **kwargs))

    def _close_writes(self) -> None:
        self._write_threads.shutdown(wait=True)

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A transaction that commits when the block ends and rolls back if it raises."""
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    def _write_retrying(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a write transaction; again if it lost a race to insert the same row.

        ``work`` must read before it inserts, so that the retry finds what the other
        writer committed. (On SQLite writes are serialised and this never triggers;
        on PostgreSQL two servers can race.)
        """
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                with self._write() as session:
                    return work(session)
            except IntegrityError:
                if attempt == CONFLICT_ATTEMPTS:
                    raise
                log.debug("write conflict, retrying (attempt %d)", attempt)
        raise AssertionError("unreachable")  # pragma: no cover
