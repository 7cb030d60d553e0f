"""The database store on a real SQLite file and a real PostgreSQL database: contacts,
conversations, the message log, revisions and API tokens, and many threads writing at once.

Every test here runs on both (``fx_db_url``, see conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from engine.errors import ConfigError
from engine.message_log import RecordInput
from engine.runtime.revisions import CompiledFlows, FlowCatalog
from engine.store import DatabaseError, Message, Store, StoreRevisions, TokenNameTaken
from engine.store.revisions import flow_name
from tests.net_support import free_port

REPO = Path(__file__).resolve().parents[3]
T0 = "2026-01-01T10:00:00+00:00"


def entry(conversation_id: str, message_id: str, **fields: str) -> RecordInput:
    base = RecordInput(conversation_id, "in", "hello", "webchat", message_id, T0)
    return replace(base, **fields)


def conversation(store: Store, external_id: str = "visitor-1", channel: str = "webchat") -> str:
    contact = store.resolve_contact(channel, external_id)
    return store.open_conversation(contact.id, channel)[0].id


# -- contacts and conversations ---------------------------------------------------------------


def test_the_same_identity_is_the_same_contact(fx_store: Store) -> None:
    first = fx_store.resolve_contact("telegram", "42", name="Ann", locale="en")
    again = fx_store.resolve_contact("telegram", "42", name="Someone else")
    other_channel = fx_store.resolve_contact("whatsapp", "42")
    assert again.id == first.id and again.name == "Ann"  # known names are not overwritten
    assert other_channel.id != first.id
    assert first.created_at.tzinfo is not None and first.tags == []


def test_a_known_contact_gets_a_missing_name_filled_in(fx_store: Store) -> None:
    first = fx_store.resolve_contact("telegram", "7")
    named = fx_store.resolve_contact("telegram", "7", name="Bo", locale="zh-CN")
    assert (named.id, named.name, named.locale) == (first.id, "Bo", "zh-CN")


def test_open_conversation_reuses_until_the_conversation_ends(fx_store: Store) -> None:
    contact = fx_store.resolve_contact("webchat", "v1")
    first, created = fx_store.open_conversation(contact.id, "webchat")
    again, created_again = fx_store.open_conversation(contact.id, "webchat")
    assert (created, created_again, again.id) == (True, False, first.id)
    assert (first.status, first.flow, first.revision) == ("open", "", "")
    fx_store.record(entry(first.id, "end-1", direction="event", status="ended", detail="resolved"))
    after, created_after = fx_store.open_conversation(contact.id, "webchat")
    assert created_after and after.id != first.id


def test_start_conversation_flow_sets_flow_and_revision(fx_store: Store) -> None:
    conversation_id = conversation(fx_store)
    assert fx_store.start_conversation_flow(conversation_id, "shop", "rev1")
    assert not fx_store.start_conversation_flow("nope", "shop", "rev1")
    row = fx_store.get_conversation(conversation_id)
    assert row is not None and (row.flow, row.revision) == ("shop", "rev1")
    assert fx_store.get_conversation("nope") is None


def test_latest_end_and_count_conversations(fx_store: Store) -> None:
    contact = fx_store.resolve_contact("webchat", "v9")
    assert fx_store.latest_conversation(contact.id) is None
    first, _ = fx_store.open_conversation(contact.id, "webchat")
    assert fx_store.end_conversation(first.id, "closed")
    assert not fx_store.end_conversation(first.id)  # already ended
    assert not fx_store.end_conversation("nope")
    ended = fx_store.latest_conversation(contact.id)
    assert ended is not None and (ended.id, ended.status, ended.end_status) == (first.id, "ended", "closed")
    second, _ = fx_store.open_conversation(contact.id, "webchat")
    latest = fx_store.latest_conversation(contact.id, "webchat")
    assert latest is not None and latest.id == second.id
    assert fx_store.latest_conversation(contact.id, "telegram") is None
    conversation(fx_store, "v10")
    assert fx_store.count_by_status() == {"ended": 1, "open": 2}


# -- the message log --------------------------------------------------------------------------


def test_recording_the_same_entry_twice_keeps_one_row(fx_store: Store) -> None:
    conversation_id = conversation(fx_store)
    fx_store.record(entry(conversation_id, "m1"))
    fx_store.record(entry(conversation_id, "m1"))
    assert [(m.message_id, m.status) for m in fx_store.transcript(conversation_id)] == [("m1", "received")]


def test_a_failed_delivery_then_sent_is_one_row_marked_sent(fx_store: Store) -> None:
    conversation_id = conversation(fx_store)
    out = entry(conversation_id, "reply-1", direction="out", sender="bot", status="failed", detail="timeout")
    fx_store.record_message(out, choices=["Yes", "No"])
    fx_store.record(replace(out, status="sent", detail=""))
    fx_store.record(replace(out, status="failed", detail="late report"))  # never undoes "sent"
    returned = fx_store.record_message(replace(out, status="sent", detail=""))
    [row] = fx_store.transcript(conversation_id)
    assert (returned.seq, returned.status) == (row.seq, "sent")
    assert (row.status, row.detail, row.choices, row.sender) == ("sent", "", ["Yes", "No"], "bot")


def test_a_rerun_does_not_move_a_blocked_message_back_to_received(fx_store: Store) -> None:
    conversation_id = conversation(fx_store)
    fx_store.record(entry(conversation_id, "m1"))
    fx_store.record(entry(conversation_id, "m1", status="blocked", detail="sensitive words"))
    fx_store.record(entry(conversation_id, "m1"))
    [row] = fx_store.transcript(conversation_id)
    assert (row.status, row.detail) == ("blocked", "sensitive words")


def test_an_inbound_channel_message_id_is_logged_once(fx_store: Store) -> None:
    first = conversation(fx_store, "a")
    second = conversation(fx_store, "b")
    fx_store.record(entry(first, "tg-1"))
    kept = fx_store.record_message(entry(second, "tg-1"))  # routed elsewhere by a redelivery: not logged twice
    assert kept.conversation_id == first
    fx_store.record(entry(second, "tg-1", channel="telegram"))  # another channel's id space
    fx_store.record(entry(second, "tg-1", direction="out", sender="bot", status="sent"))  # keys are per direction
    assert [m.message_id for m in fx_store.transcript(first)] == ["tg-1"]
    assert [(m.channel, m.direction) for m in fx_store.transcript(second)] == [("telegram", "in"), ("webchat", "out")]
    # The database itself refuses a second copy, whatever code writes it.
    with Session(fx_store.engine) as session:
        session.add(
            Message(
                conversation_id=second,
                direction="in",
                message_id="tg-1",
                channel="webchat",
                sender="customer",
                status="received",
                at=T0,
            )
        )
        with pytest.raises(IntegrityError):
            session.commit()


def test_records_move_the_conversation_status(fx_store: Store) -> None:
    cid = conversation(fx_store)

    def status() -> tuple[str, str | None]:
        row = fx_store.get_conversation(cid)
        assert row is not None
        return row.status, row.assigned_agent

    fx_store.record(entry(cid, "m1", flow="shop", revision="r1"))
    row = fx_store.get_conversation(cid)
    assert row is not None and (row.flow, row.revision, row.status) == ("shop", "r1", "open")
    handoff_at = "2026-01-01T10:01:00+00:00"
    fx_store.record(entry(cid, "handoff-1", direction="event", status="handoff", text="billing", at=handoff_at))
    # The "connecting you" reply queued with the hand-off, logged after it: still with the agent.
    fx_store.record(entry(cid, "r1", direction="out", sender="bot", status="sent", at=handoff_at))
    assert status() == ("handoff", None)
    fx_store.record(
        entry(cid, "r2", direction="out", sender="agent:ann", status="sent", at="2026-01-01T10:02:00+00:00")
    )
    assert status() == ("handoff", "ann")
    fx_store.record(entry(cid, "m2", at="2026-01-01T10:03:00+00:00"))  # the customer answers the agent
    assert status() == ("handoff", "ann")
    # The agent resolved; the flow goes on and the bot speaks again.
    fx_store.record(entry(cid, "r3", direction="out", sender="bot", status="sent", at="2026-01-01T10:04:00.5+00:00"))
    assert status() == ("open", None)
    fx_store.record(entry(cid, "handoff-2", direction="event", status="handoff", at="2026-01-01T10:05:00+00:00"))
    fx_store.record(entry(cid, "handoff-1", direction="event", status="handoff", at=handoff_at))  # a re-run: no news
    assert status() == ("handoff", None)
    fx_store.record(entry(cid, "cancel-2", direction="event", status="handoff_cancelled"))
    assert status() == ("open", None)
    fx_store.record(entry(cid, "end", direction="event", status="ended", detail="timeout"))
    fx_store.record(entry(cid, "handoff-3", direction="event", status="handoff"))  # ended stays ended
    row = fx_store.get_conversation(cid)
    assert row is not None and (row.status, row.end_status) == ("ended", "timeout")
    assert row.ended_at is not None and row.ended_at.tzinfo is not None


def test_recording_for_an_unknown_conversation_creates_it(fx_store: Store) -> None:
    fx_store.record(entry("started-elsewhere", "m1", channel="telegram", flow="shop", revision="r1"))
    row = fx_store.get_conversation("started-elsewhere")
    assert row is not None and (row.channel, row.flow, row.revision, row.status) == ("telegram", "shop", "r1", "open")
    contact = fx_store.resolve_contact("telegram", "conversation:started-elsewhere")
    assert contact.id == row.contact_id


def test_transcript_from_a_cursor(fx_store: Store) -> None:
    cid = conversation(fx_store)
    for n in range(5):
        fx_store.record(entry(cid, f"m{n}", text=f"text {n}"))
    everything = fx_store.transcript(cid)
    assert [m.text for m in everything] == [f"text {n}" for n in range(5)]
    cursor = everything[1].seq
    assert cursor is not None
    assert [m.text for m in fx_store.transcript(cid, after_seq=cursor)] == ["text 2", "text 3", "text 4"]
    assert [m.text for m in fx_store.transcript(cid, after_seq=cursor, limit=1)] == ["text 2"]
    assert fx_store.transcript(cid, after_seq=everything[-1].seq or 0) == []


def test_list_conversations_filters_and_outdated(fx_store: Store) -> None:
    made = {}
    for key, channel, flow, revision in [
        ("a1", "webchat", "a", "old"),
        ("a2", "telegram", "a", "new"),
        ("b1", "webchat", "b", "old"),
        ("a3", "webchat", "a", "old"),
    ]:
        made[key] = conversation(fx_store, key, channel)
        fx_store.record(entry(made[key], f"m-{key}", channel=channel, flow=flow, revision=revision))
    fx_store.record(entry(made["a3"], "end", direction="event", status="ended", detail="done"))

    def ids(**filters: object) -> list[str]:
        return [c.id for c in fx_store.list_conversations(**filters)]  # type: ignore[arg-type]

    assert ids() == [made["a3"], made["b1"], made["a2"], made["a1"]]  # newest activity first
    assert ids(channel="telegram") == [made["a2"]]
    assert ids(flow="a", status="open") == [made["a2"], made["a1"]]
    assert ids(status="ended") == [made["a3"]]
    assert ids(outdated={"a": "new"}) == [made["a1"]]  # a3 ended on the old revision: nothing to move
    assert ids(outdated={"a": "new", "b": "new"}) == [made["b1"], made["a1"]]
    assert ids(outdated={}) == []
    assert ids(limit=2, offset=1) == [made["b1"], made["a2"]]


# -- revisions --------------------------------------------------------------------------------


def test_revisions_are_stored_once_and_listed_newest_first(fx_store: Store) -> None:
    assert fx_store.put_revision("r1", "flow: demo\n", flow="demo", message="first")
    assert not fx_store.put_revision("r1", "changed", flow="demo")
    assert fx_store.put_revision("r2", "flow: demo\nstart: x\n", flow="demo", author="ann")
    fx_store.put_revision("o1", "flow: other\n", flow="other")
    assert fx_store.revision_source("r1") == "flow: demo\n"
    assert fx_store.revision_source("missing") is None
    revision = fx_store.get_revision("r2")
    assert revision is not None and (revision.author, revision.flow) == ("ann", "demo")
    assert [r.revision for r in fx_store.history("demo")] == ["r2", "r1"]
    assert [r.revision for r in fx_store.history("demo", limit=1)] == ["r2"]


def test_live_flows(fx_store: Store) -> None:
    fx_store.put_revision("r1", "flow: demo\n", flow="demo")
    fx_store.put_revision("r2", "flow: demo\n#2\n", flow="demo")
    fx_store.set_live("demo", "r1", file="demo.yaml")
    fx_store.set_live("demo", "r2", file="demo.yaml")
    live = fx_store.live_flows()
    assert list(live) == ["demo"] and (live["demo"].revision, live["demo"].file) == ("r2", "demo.yaml")
    with pytest.raises(LookupError):
        fx_store.set_live("demo", "never-stored")
    assert fx_store.remove_live("demo")
    assert not fx_store.remove_live("demo")
    assert fx_store.live_flows() == {}


def test_the_runtime_reads_revisions_from_the_store(fx_store: Store) -> None:
    revisions = StoreRevisions(fx_store)
    catalog = FlowCatalog(revisions)
    assert catalog.publish_dir([REPO / "flows"], knowledge_dir=REPO / "flows") == []
    [published] = catalog.flows()
    stored = fx_store.get_revision(published.revision)
    assert stored is not None and (stored.flow, stored.author) == (published.name, "files")
    # Another worker, with nothing in memory, compiles the same flow from the database,
    # with the FAQ knowledge the demo flow's revision was published with.
    loaded = CompiledFlows(StoreRevisions(fx_store)).get(published.name, published.revision)
    assert (loaded.name, loaded.revision, loaded.source) == (published.name, published.revision, published.source)
    assert set(loaded.knowledge) == {"kb/faq.yaml"}
    assert loaded.knowledge == published.knowledge


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("flow: shop-support\nsteps: {}\n", "shop-support"),
        ("# comment\nflow: 'faq_1'  # id\n", "faq_1"),
        ('{"flow": "json-style"}', "json-style"),
        ("description: no id\n", ""),
        ("flow: [unclosed\n", ""),
    ],
)
def test_flow_name_from_source(source: str, name: str) -> None:
    assert flow_name(source) == name


# -- tokens -----------------------------------------------------------------------------------


def test_tokens_create_verify_revoke(fx_store: Store, tmp_path: Path) -> None:
    plaintext = fx_store.create_token("ci")
    assert plaintext.startswith("fd_") and len(plaintext) > 40
    token = fx_store.verify_token(plaintext)
    assert token is not None and token.name == "ci" and token.last_used_at is not None
    again = fx_store.verify_token(plaintext)
    assert again is not None and again.last_used_at == token.last_used_at  # not a write per request
    assert fx_store.verify_token(plaintext + "x") is None
    assert fx_store.verify_token("not-a-token") is None
    with pytest.raises(TokenNameTaken) as taken:
        fx_store.create_token("ci")
    assert isinstance(taken.value, ConfigError) and "'ci' already exists" in str(taken.value)
    fx_store.create_token("crm")
    assert [t.name for t in fx_store.list_tokens()] == ["ci", "crm"]
    assert fx_store.revoke_token("ci")
    assert not fx_store.revoke_token("ci")
    assert not fx_store.revoke_token("nobody")
    assert fx_store.verify_token(plaintext) is None
    # Only the hash is stored: no column of any token row holds the plaintext.
    with fx_store.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM api_token ORDER BY id").all()
    assert [row.name for row in rows] == ["ci", "crm"]
    assert not any(plaintext in str(value) for row in rows for value in row)
    if fx_store.engine.dialect.name == "sqlite":
        fx_store.close()  # checkpoints the WAL: every byte is in the files below
        stored = b"".join(path.read_bytes() for path in (tmp_path / "data").iterdir())
        assert plaintext.encode() not in stored
        assert b"ci" in stored  # the file was read: the name is there


# -- threads ----------------------------------------------------------------------------------


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """``work(0..count-1)`` in threads that start together; the first error is raised here."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(worker: int) -> None:
        try:
            start.wait()
            work(worker)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(worker,)) for worker in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def test_recording_from_many_threads(fx_store: Store) -> None:
    shared = conversation(fx_store)

    def work(worker: int) -> None:
        for n in range(15):
            fx_store.record(entry(shared, f"w{worker}-{n}", direction="out", sender="bot", status="sent"))
            # Each thread's own conversation too, created by its first entry.
            fx_store.record(entry(f"own-{worker}", f"own-{worker}-m{n}"))
            fx_store.record(entry(shared, f"w{worker}-{n}", direction="out", sender="bot", status="sent"))

    run_threads(8, work)  # raises the first error a thread met
    assert len(fx_store.transcript(shared)) == 8 * 15
    assert all(len(fx_store.transcript(f"own-{worker}")) == 15 for worker in range(8))


def test_a_contact_opening_from_many_threads_gets_one_conversation(fx_store: Store) -> None:
    """Two server processes may take the same visitor's first messages at once: one conversation, not two."""
    for round_ in range(5):
        contact = fx_store.resolve_contact("webchat", f"racer-{round_}")
        opened: list[str] = []

        def open_one(_worker: int, contact_id: str = contact.id, opened: list[str] = opened) -> None:
            opened.append(fx_store.open_conversation(contact_id, "webchat")[0].id)

        run_threads(8, open_one)
        assert len(set(opened)) == 1, opened
        assert fx_store.count_by_status() == {"open": round_ + 1}


def test_concurrent_reports_of_one_delivery_never_move_it_back(fx_store: Store) -> None:
    """A late "failed" racing the "sent" of the same delivery never wins (the log only moves forward)."""
    cid = conversation(fx_store)
    for n in range(10):
        out = entry(cid, f"reply-{n}", direction="out", sender="bot", status="received")
        fx_store.record(out)
        statuses = ["failed", "sent"] * 4

        def report(worker: int, out: RecordInput = out, statuses: list[str] = statuses) -> None:
            fx_store.record(replace(out, status=statuses[worker]))

        run_threads(len(statuses), report)
    assert {m.status for m in fx_store.transcript(cid)} == {"sent"}


def test_a_cursor_never_skips_an_entry_written_concurrently(fx_store: Store) -> None:
    """A client reading "everything after seq N" while entries are written sees every entry.

    The seq cursor is only safe if, within a conversation, an entry with a lower seq is
    never committed after one with a higher seq has become visible.
    """
    cid = conversation(fx_store)
    writers, per_writer = 6, 25
    done = threading.Event()
    seen: list[str] = []

    def follow() -> None:
        cursor = 0
        while True:
            finished = done.is_set()  # read before the transcript: the last read sees everything
            for row in fx_store.transcript(cid, after_seq=cursor):
                seen.append(row.message_id)
                cursor = row.seq or cursor
            if finished:
                return

    reader = threading.Thread(target=follow)
    reader.start()
    try:
        run_threads(
            writers,
            lambda worker: [
                fx_store.record(entry(cid, f"w{worker}-{n}", direction="out", sender="bot", status="sent"))
                for n in range(per_writer)
            ],
        )
    finally:
        done.set()
        reader.join()
    assert len(seen) == len(set(seen))
    assert len(seen) == writers * per_writer, f"the cursor skipped {writers * per_writer - len(seen)} entries"


def test_text_with_a_nul_character_is_logged(fx_store: Store) -> None:
    """A NUL (a web-chat frame can carry "\\u0000") is logged: PostgreSQL's text cannot hold it, SQLite's can."""
    contact = fx_store.resolve_contact("webchat", "nul\x00visitor", name="A\x00B")
    again = fx_store.resolve_contact("webchat", "nul\x00visitor")
    assert again.id == contact.id
    cid = fx_store.open_conversation(contact.id, "webchat")[0].id
    message = replace(entry(cid, "m\x001", text="hello\x00world"), meta={"raw": "a\x00b"})
    fx_store.record(message)
    fx_store.record(message)  # a repeat finds the same row
    fx_store.record(replace(message, direction="out", sender="bot", status="sent"))
    [first, reply] = fx_store.transcript(cid)
    kept = "\x00" if fx_store.engine.dialect.name == "sqlite" else "\ufffd"  # the replacement character
    assert (first.text, first.message_id, first.meta) == (f"hello{kept}world", f"m{kept}1", {"raw": "a\x00b"})
    assert (reply.direction, reply.text) == ("out", f"hello{kept}world")


def test_one_new_identity_from_many_threads_is_one_contact(fx_store: Store) -> None:
    """The losers of the race to insert the identity find the winner's contact (a retried write)."""
    found: list[str] = []
    run_threads(8, lambda _worker: found.append(fx_store.resolve_contact("telegram", "new-42").id))
    assert len(set(found)) == 1, found


def test_one_token_name_from_many_threads_is_one_token(fx_store: Store) -> None:
    """Creating the same token name at once: one token; the others are told the name is taken."""
    created: list[str] = []
    refused: list[TokenNameTaken] = []

    def create(_worker: int) -> None:
        try:
            created.append(fx_store.create_token("deploy"))
        except TokenNameTaken as exc:
            refused.append(exc)

    run_threads(6, create)
    assert len(created) == 1 and len(refused) == 5
    assert all("'deploy' already exists" in str(exc) for exc in refused)
    assert [t.name for t in fx_store.list_tokens()] == ["deploy"]
    assert fx_store.verify_token(created[0]) is not None


def test_one_revision_from_many_threads_is_stored_once(fx_store: Store) -> None:
    stored: list[bool] = []
    run_threads(6, lambda worker: stored.append(fx_store.put_revision("r1", f"flow: demo\n#{worker}\n", flow="demo")))
    assert sorted(stored) == [False] * 5 + [True]
    assert [r.revision for r in fx_store.history("demo")] == ["r1"]


def test_times_read_back_as_written_in_utc(fx_store: Store) -> None:
    """The PostgreSQL test server runs in another time zone: times still come back as the same UTC moments."""
    contact = fx_store.resolve_contact("webchat", "clock")
    conversation_row, _ = fx_store.open_conversation(contact.id, "webchat")
    assert fx_store.end_conversation(conversation_row.id)
    read_contact = fx_store.get_contact(contact.id)
    read_conversation = fx_store.get_conversation(conversation_row.id)
    assert read_contact is not None and read_conversation is not None
    assert read_contact.created_at == contact.created_at
    assert read_contact.created_at.utcoffset() == timedelta(0)
    assert read_conversation.created_at == conversation_row.created_at
    ended = read_conversation.ended_at
    assert ended is not None and ended.utcoffset() == timedelta(0)
    assert conversation_row.created_at <= ended <= datetime.now(UTC)
    assert read_conversation.updated_at == ended  # ending moves the activity time to the same moment


@pytest.mark.usefixtures("fx_postgres")  # skipped (failed in CI) without PostgreSQL and psycopg, as the others
def test_an_unreachable_postgresql_server_is_a_clear_error() -> None:
    """Nothing listens at the URL: one line that says so, without the password."""
    port = free_port()
    store = Store(f"postgresql+psycopg://flowdesk:s3cret@127.0.0.1:{port}/flowdesk")
    try:
        with pytest.raises(DatabaseError) as refused:
            store.ping()
        with pytest.raises(DatabaseError) as not_upgraded:
            store.upgrade()
    finally:
        store.close()
    assert str(refused.value).startswith(f"the database at postgresql+psycopg://flowdesk:***@127.0.0.1:{port}/flowdesk")
    assert "does not answer" in str(refused.value)
    assert "cannot upgrade the database" in str(not_upgraded.value)
    for error in (refused.value, not_upgraded.value):
        assert "s3cret" not in str(error) and "\n" not in str(error), error
