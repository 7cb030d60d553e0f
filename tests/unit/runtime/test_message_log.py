"""The embedded message log: one line per message and outcome."""

from __future__ import annotations

from pathlib import Path

from engine.message_log import RecordInput
from engine.runtime.ports import JsonlMessageLog


def entry(message_id: str, status: str, text: str = "hi") -> RecordInput:
    return RecordInput("c1", "in", text, "webchat", message_id, "2026-01-01T10:00:00+00:00", status=status)


def test_an_entry_written_again_by_a_rerun_is_kept_once(tmp_path: Path) -> None:
    log = JsonlMessageLog(tmp_path)
    log.record(entry("m1", "received"))
    log.record(entry("m1", "received"))  # the same local activity, run again
    log.record(entry("m1", "blocked"))  # a different outcome of the same message
    log.record(entry("m2", "received", "second"))
    assert [(e.message_id, e.status, e.text) for e in log.entries("c1")] == [
        ("m1", "received", "hi"),
        ("m1", "blocked", "hi"),
        ("m2", "received", "second"),
    ]


def test_conversation_ids_cannot_escape_the_log_directory(tmp_path: Path) -> None:
    log = JsonlMessageLog(tmp_path / "log")
    log.record(RecordInput("../../etc/x", "in", "hi", "webchat", "m1", "2026-01-01T10:00:00+00:00"))
    assert [p.parent for p in (tmp_path / "log").iterdir()] == [tmp_path / "log"]
    assert not (tmp_path / "etc").exists()
