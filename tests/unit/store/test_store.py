"""The database store on a real SQLite file: contacts, conversations, the message log,
revisions and API tokens, and many threads writing at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from engine.errors import ConfigError
from engine.runtime.revisions import CompiledFlows, FlowCatalog
from engine.runtime.types import RecordInput
from engine.store import Message, Store, StoreRevisions, TokenNameTaken
from engine.store.revisions import flow_name

REPO = Path(__file__).resolve().parents[3]
T0 = "2026-01-01T10:00:00+00:00"


@pytest.fixture(name="fx_store")
def fixture_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'data' / 'flowdesk.db'}")
    store.upgrade()
    yield store
    store.close()


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
    assert catalog.publish_dir([REPO / "flows"]) == []
    [published] = catalog.flows()
    stored = fx_store.get_revision(published.revision)
    assert stored is not None and (stored.flow, stored.author) == (published.name, "files")
    # Another worker, with nothing in memory, compiles the same flow from the database.
    loaded = CompiledFlows(StoreRevisions(fx_store)).get(published.name, published.revision)
    assert (loaded.name, loaded.revision, loaded.source) == (published.name, published.revision, published.source)


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
    fx_store.close()  # checkpoints the WAL: every byte is in the files below
    stored = b"".join(path.read_bytes() for path in (tmp_path / "data").iterdir())
    assert plaintext.encode() not in stored
    assert b"ci" in stored  # the file was read: the name is there


# -- threads ----------------------------------------------------------------------------------


def test_recording_from_many_threads(fx_store: Store) -> None:
    shared = conversation(fx_store)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        try:
            start.wait()
            for n in range(15):
                fx_store.record(entry(shared, f"w{worker}-{n}", direction="out", sender="bot", status="sent"))
                # Each thread's own conversation too, created by its first entry.
                fx_store.record(entry(f"own-{worker}", f"own-{worker}-m{n}"))
                fx_store.record(entry(shared, f"w{worker}-{n}", direction="out", sender="bot", status="sent"))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(fx_store.transcript(shared)) == 8 * 15
    assert all(len(fx_store.transcript(f"own-{worker}")) == 15 for worker in range(8))
