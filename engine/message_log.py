"""The conversation log's entry: written by the runtime's activities, kept by the store.

It sits below both packages so that neither imports the other for it. It crosses
the Temporal boundary as an activity input (see ``engine.runtime.types``), so it
follows the same rules: JSON-compatible fields, new fields with defaults, no
``from __future__ import annotations``, and never a secret.
"""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RecordInput:
    """A message or delivery outcome for the conversation's log."""

    conversation_id: str
    direction: str  # in | out
    text: str
    channel: str
    message_id: str
    at: str
    status: str = "received"  # received | sent | failed | blocked
    sender: str = "customer"
    flow: str = ""
    revision: str = ""
    detail: str = ""
    #: what produced the entry (an AI answer's provider and attempts); stored as the message's meta
    meta: dict[str, Any] = field(default_factory=dict)
    #: an entry already logged gets this text (the inbound pipeline changed it)
    replaces_text: bool = False
    #: the vendor's id of a reply it took (delivery statuses name it)
    channel_message_id: str = ""
