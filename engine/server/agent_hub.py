"""The agents' event stream of one node: the message log tailed, ephemeral events fanned out, across nodes.

Contract: ``publish`` sends an ephemeral event (``presence``, ``typing``) to every
node; ``subscribe`` registers an in-process listener that gets every event, those
read from the message log included (kinds ``message``, ``conversation``,
``presence``, ``typing``; each a ``{"seq", "kind", "data"}`` dict); ``connections_of``
counts a user's open ``/ws/agent`` sockets (this node's, and on PostgreSQL the other
nodes' as they last announced them: presence drops an agent to offline only when none
is left anywhere); ``attach``/``detach`` are the sockets' side
(``engine.server.agent_socket``).

Where events come from:

- **The message log** is the source of ``message`` and ``conversation`` events, on
  every node alike: the hub reads ``seq > cursor`` in order (:class:`SeqGate` keeps
  that order honest on PostgreSQL, where seqs commit out of order) and reads the
  touched conversations' inbox rows. Whatever process logged a row (a worker on any
  node, a webhook), every hub sees it, so no delivery path between nodes is needed.
- **Wake-ups**: on PostgreSQL a statement trigger on ``message`` sends ``NOTIFY
  flowdesk_agent`` at commit and the hub ``LISTEN``s on a connection of its own, so a
  new row is read within a round trip; a poll every 2 s is the safety net (250 ms while
  the listener is down or a hole is being waited on). SQLite is one node: the hub
  polls every 250 ms.
- **Ephemeral events** go to this node's sockets at once and, on PostgreSQL, to the
  other nodes as a NOTIFY payload (ignored by the node that sent it).

Nobody listening, no cost: without sockets or subscribers the tail sleeps and reads
nothing; the first socket starts it again from the log's head (a replay covers what
came before).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.server.agent_events import (
    CONVERSATION,
    EPHEMERAL_KINDS,
    LOGGED_KINDS,
    MESSAGE,
    PRESENCE,
    TYPING,
    Event,
    SeqGate,
    Viewer,
    conversation_data,
    message_data,
)

if TYPE_CHECKING:
    from engine.store import Store

log = logging.getLogger("flowdesk.agent_hub")

AgentEventListener = Callable[[dict[str, Any]], None]

#: Poll intervals: without a wake-up (SQLite, listener down, a hole pending) and as a safety net.
POLL_S = 0.25
SAFETY_POLL_S = 2.0
#: Rows read per round (another round follows at once when a read is full).
BATCH = 500
#: Frames a socket may have waiting; a consumer that falls this far behind is disconnected.
QUEUE_SIZE = 1000
#: Conversations whose queue and holder the hub remembers (for typing events).
WHERE_CACHE = 10_000
#: Conversations a socket remembers being shown (to say when one leaves its sight).
KNOWN_PER_SOCKET = 5000
#: PostgreSQL's limit on a NOTIFY payload is 8000 bytes.
NOTIFY_MAX = 7900
#: How often a node tells the others whose sockets it holds, and when the others stop believing it.
ANNOUNCE_S = 20.0
ANNOUNCE_STALE_S = 60.0


class AgentConnection:
    """One socket's side of the hub: what it may see, and its bounded queue of frames."""

    __slots__ = ("_known", "floor", "overflowed", "queue", "viewer")

    def __init__(self, viewer: Viewer, *, floor: int = 0, size: int = QUEUE_SIZE) -> None:
        self.viewer = viewer
        #: logged events with seq <= floor were seen already (the client came with a later cursor)
        self.floor = floor
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=size)
        self.overflowed = False
        self._known: OrderedDict[str, None] = OrderedDict()

    def shown(self, conversation_id: str) -> None:
        """Remember that this socket was shown the conversation (a replay or a live event)."""
        self._known[conversation_id] = None
        self._known.move_to_end(conversation_id)
        while len(self._known) > KNOWN_PER_SOCKET:
            self._known.popitem(last=False)

    def offer(self, event: Event) -> None:
        """Queue the event's frame if the viewer may see it; a full queue marks the socket for closing."""
        if self.overflowed or (event.kind in LOGGED_KINDS and event.seq <= self.floor):
            return
        frame: dict[str, Any] | None = None
        if self.viewer.sees(event):
            frame = event.frame()
            if event.kind == CONVERSATION and event.conversation_id:
                self.shown(event.conversation_id)
        elif event.kind == CONVERSATION and event.conversation_id is not None and event.conversation_id in self._known:
            # It left the viewer's sight: say so, with nothing of what they may no longer see.
            del self._known[event.conversation_id]
            frame = {"seq": event.seq, "kind": CONVERSATION, "data": {"id": event.conversation_id, "visible": False}}
        if frame is None:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed = True
            # Wake the sender, which sees ``overflowed`` and closes the socket.
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait({"seq": event.seq, "kind": "overflow", "data": {}})


class AgentHub:
    """The agents' events on this node (see the module docstring); ``start`` binds it to the store."""

    def __init__(self, store: Store | None = None, *, poll_s: float = POLL_S, queue_size: int = QUEUE_SIZE) -> None:
        self.store = store
        self.poll_s = poll_s
        self.queue_size = queue_size
        self._listeners: list[AgentEventListener] = []
        self._connections: set[AgentConnection] = set()
        self._gate = SeqGate()
        #: the gate's cursor once the rows up to it are queued on the sockets (see ``cursor``)
        self._emitted = 0
        self._stale = True  # the gate must start again from the head before it is used
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._activity = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)
        self._where: OrderedDict[str, tuple[str | None, str | None]] = OrderedDict()
        self._listening = False
        self._closing = False
        self._node = uuid.uuid4().hex[:12]
        #: other nodes' open sockets by user (PostgreSQL): node -> (counts, when heard)
        self._remote: dict[str, tuple[dict[int, int], float]] = {}
        self._announce = asyncio.Event()

    # -- the public surface ----------------------------------------------------------------

    @property
    def cursor(self) -> int:
        """Every logged event up to this seq has been handed to the sockets (it is what ephemeral,
        heartbeat and pong frames carry: a client that reconnects from it misses nothing)."""
        return self._emitted

    @property
    def postgres(self) -> bool:
        return self.store is not None and self.store.engine.dialect.name == "postgresql"

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """An ephemeral event (``presence``: ``user_id``, ``presence``; ``typing``: ``conversation_id``, ``typing``).

        Delivered on this node at once and to the other nodes through PostgreSQL.
        Logged kinds are not published: they come from the message log.
        """
        if kind not in EPHEMERAL_KINDS:
            raise ValueError(f"only {', '.join(sorted(EPHEMERAL_KINDS))} events are published; {kind!r} is not")
        self._spawn(self._ephemeral(kind, dict(data)))
        if self.postgres and self._tasks:
            payload = json.dumps({"n": self._node, "k": kind, "d": data}, separators=(",", ":"), default=str)
            if len(payload.encode()) > NOTIFY_MAX:
                log.warning("a %s event is too large to reach the other nodes (%d bytes)", kind, len(payload))
                return
            with contextlib.suppress(asyncio.QueueFull):  # a stalled database: ephemeral events may be lost
                self._outbox.put_nowait(payload)

    def subscribe(self, listener: AgentEventListener) -> Callable[[], None]:
        """Get every event of this node (unfiltered); returns a function that unsubscribes."""
        self._listeners.append(listener)
        self._activity.set()

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def connections_of(self, user_id: int) -> int:
        """Open agent sockets of ``user_id``: on this node, and on the others as they last said (PostgreSQL)."""
        here = sum(1 for c in self._connections if c.viewer.principal.user_id == user_id)
        now = time.monotonic()
        there = sum(counts.get(user_id, 0) for counts, heard in self._remote.values() if now - heard < ANNOUNCE_STALE_S)
        return here + there

    def _local_counts(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for connection in self._connections:
            user_id = connection.viewer.principal.user_id
            if user_id is not None:
                counts[user_id] = counts.get(user_id, 0) + 1
        return counts

    def connections(self) -> list[AgentConnection]:
        return list(self._connections)

    async def start(self, store: Store | None = None) -> None:
        """Bind to the store and start the tail (and, on PostgreSQL, the listener and the sender)."""
        if store is not None:
            self.store = store
        if self.store is None or self._tasks:
            return
        self._gate = SeqGate(track_gaps=self.postgres)
        self._closing = False
        self._tasks.append(asyncio.create_task(self._tail(), name="agent hub tail"))
        if self.postgres:
            await asyncio.to_thread(self.store.install_feed_notify)
            self._tasks.append(asyncio.create_task(self._listen(), name="agent hub listener"))
            self._tasks.append(asyncio.create_task(self._send(), name="agent hub notify"))
            self._tasks.append(asyncio.create_task(self._announcer(), name="agent hub sockets"))

    async def aclose(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a read in a thread finishes on its own; the node's stop does not wait on it.
            await asyncio.wait(self._tasks, timeout=5)
        self._tasks.clear()

    # -- the sockets' side -----------------------------------------------------------------

    async def attach(self, viewer: Viewer, since: int | None) -> tuple[AgentConnection, int]:
        """Register a socket; returns it and the cursor its replay goes up to.

        Live events after the returned cursor queue up on the connection from now on, so
        a replay of ``(since, cursor]`` followed by the queue misses nothing and repeats nothing.
        """
        async with self._lock:
            await self._ensure_current()
            cursor = self._gate.cursor
            connection = AgentConnection(viewer, floor=max(since or 0, cursor), size=self.queue_size)
            self._connections.add(connection)
        self._activity.set()
        self._announce.set()
        return connection, cursor

    def detach(self, connection: AgentConnection) -> None:
        self._connections.discard(connection)
        self._announce.set()

    # -- the tail ----------------------------------------------------------------------------

    def _active(self) -> bool:
        return bool(self._connections or self._listeners)

    async def _ensure_current(self) -> None:
        """After a time with nobody listening, start from the log's head (under the lock)."""
        if self._stale and self.store is not None:
            self._gate.reset(await asyncio.to_thread(self.store.feed_head))
            self._emitted = self._gate.cursor
            self._stale = False

    async def _tail(self) -> None:
        while not self._closing:
            if not self._active():
                self._stale = True
                self._activity.clear()
                await self._activity.wait()
                continue
            try:
                more = await self._round()
            except Exception:
                log.exception("reading the message log for the agents' stream failed; trying again")
                more = False
                await asyncio.sleep(1.0)
            if more:
                continue
            interval = SAFETY_POLL_S if self._listening and not self._gate.gaps else self.poll_s
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: see Dispatcher._run
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            self._wake.clear()

    async def _round(self) -> bool:
        """Read what is new, release what may go out; True if there is more to read at once."""
        store = self.store
        assert store is not None
        async with self._lock:
            await self._ensure_current()
            gate = self._gate
            holes = gate.waiting_on()
            seen_by = gate.latest_gap_clock() if holes else None
            writers = await asyncio.to_thread(store.writers_before, seen_by) if seen_by is not None else None
            read = await asyncio.to_thread(store.feed_after, gate.read_to, also=holes, limit=BATCH)
            now = time.monotonic()
            gate.take(read.rows, clock=read.clock, now=now)
            # Holes seen by `seen_by` that this read (made after the check) did not fill are final.
            gate.expire(now, final_before=seen_by if writers == 0 else None)
            rows = gate.release()
            if rows:
                try:
                    await self._dispatch_rows(rows)
                except BaseException:
                    gate.unrelease(rows)  # nothing went out (the inbox read failed): the next round retries
                    raise
            # Only now: a frame carrying the cursor must never come before the rows below it.
            self._emitted = gate.cursor
        return len(read.rows) >= BATCH

    async def _dispatch_rows(self, rows: list[dict[str, Any]]) -> None:
        assert self.store is not None
        ids = {row["conversation_id"] for row in rows}
        inbox = await asyncio.to_thread(self.store.inbox_rows, ids)
        last = {row["conversation_id"]: row["seq"] for row in rows}
        for row in rows:
            conversation_id = row["conversation_id"]
            conversation = inbox.get(conversation_id)
            queue = conversation["queue"] if conversation else None
            assigned = conversation["assigned_agent"] if conversation else None
            self._remember(conversation_id, queue, assigned)
            self._emit(Event(row["seq"], MESSAGE, message_data(row), conversation_id, queue, assigned))
            if conversation is not None and last[conversation_id] == row["seq"]:
                data = conversation_data(conversation)
                self._emit(Event(row["seq"], CONVERSATION, data, conversation_id, queue, assigned))

    def _remember(self, conversation_id: str, queue: str | None, assigned: str | None) -> None:
        self._where[conversation_id] = (queue, assigned)
        self._where.move_to_end(conversation_id)
        while len(self._where) > WHERE_CACHE:
            self._where.popitem(last=False)

    def _emit(self, event: Event) -> None:
        if self._listeners:
            frame = event.frame()
            for listener in list(self._listeners):
                try:
                    listener(frame)
                except Exception:
                    log.exception("an agent event listener failed")
        for connection in list(self._connections):
            connection.offer(event)

    # -- ephemeral events --------------------------------------------------------------------

    def _spawn(self, work: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(work)
        except RuntimeError:  # no loop (a synchronous caller in a test): nothing is listening
            work.close()
            return
        task.add_done_callback(_log_failure)

    async def _ephemeral(self, kind: str, data: dict[str, Any]) -> None:
        if kind == PRESENCE:
            user_id = data.get("user_id")
            self._emit(Event(self.cursor, PRESENCE, data, user_id=int(user_id) if user_id is not None else None))
            return
        if kind == TYPING:
            conversation_id = str(data.get("conversation_id") or "")
            where = self._where.get(conversation_id)
            if where is None and self.store is not None and conversation_id:
                found = await asyncio.to_thread(self.store.inbox_rows, [conversation_id])
                row = found.get(conversation_id)
                where = (row["queue"], row["assigned_agent"]) if row else (None, None)
                self._remember(conversation_id, *where)
            queue, assigned = where or (None, None)
            self._emit(Event(self.cursor, TYPING, data, conversation_id, queue, assigned))

    async def _send(self) -> None:
        """Ephemeral events to the other nodes, one NOTIFY each, from a thread."""
        store = self.store
        assert store is not None
        while True:
            payload = await self._outbox.get()
            try:
                await asyncio.to_thread(store.notify_agents, payload)
            except Exception:
                log.warning("an ephemeral agent event did not reach the other nodes", exc_info=True)

    async def _announcer(self) -> None:
        """Tell the other nodes whose sockets this node holds: on every change, and every ANNOUNCE_S.

        A full count each time (not +1/-1), so a lost notification is corrected by the
        next one, and a node that died is forgotten ANNOUNCE_STALE_S after its last word.
        """
        store = self.store
        assert store is not None
        said: dict[int, int] | None = None
        while True:
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: see Dispatcher._run
                async with asyncio.timeout(ANNOUNCE_S):
                    await self._announce.wait()
            self._announce.clear()
            counts = self._local_counts()
            if not counts and not said:
                continue  # nothing held, and the others know it
            payload = json.dumps({"n": self._node, "c": {str(u): n for u, n in counts.items()}}, separators=(",", ":"))
            if len(payload.encode()) > NOTIFY_MAX:
                log.warning("too many agents on this node to tell the other nodes about (%d)", len(counts))
                continue
            try:
                await asyncio.to_thread(store.notify_agents, payload)
                said = counts
            except Exception:
                log.warning("could not tell the other nodes whose sockets this node holds", exc_info=True)

    async def _listen(self) -> None:
        """LISTEN for wake-ups (empty payload) and other nodes' ephemeral events; reconnect when lost."""
        import psycopg  # noqa: PLC0415 - PostgreSQL only

        from engine.store.agent_feed import NOTIFY_CHANNEL  # noqa: PLC0415

        assert self.store is not None
        conninfo = self.store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        delay = 0.5
        while not self._closing:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as connection:
                    await connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._listening, delay = True, 0.5
                    self._wake.set()  # rows committed while nobody listened
                    async for note in connection.notifies():
                        if not note.payload:
                            self._wake.set()
                        else:
                            self._received(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("the agents' stream lost its PostgreSQL listener (%s); polling until it is back", exc)
            finally:
                self._listening = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _received(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            if message.get("n") == self._node:
                return  # ours: delivered here when it was published
            if "c" in message:
                counts = {int(user): int(n) for user, n in message["c"].items()}
                self._remote[str(message["n"])] = (counts, time.monotonic())
                return
            kind, data = message["k"], message["d"]
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("an agent event from another node could not be read; ignored")
            return
        if kind in EPHEMERAL_KINDS and isinstance(data, dict):
            self._spawn(self._ephemeral(kind, data))


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("an agent event could not be delivered: %s", task.exception())
