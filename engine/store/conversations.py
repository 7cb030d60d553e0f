"""Contacts, their channel identities, and conversations."""

from __future__ import annotations

from sqlalchemy import and_, or_
from sqlmodel import Session, col, func, select
from sqlmodel.sql.expression import SelectOfScalar

from engine.store.base import ROW_LOCK, StoreBase
from engine.store.columns import utcnow
from engine.store.tables import Contact, Conversation, Identity, new_id

OPEN = "open"
HANDOFF = "handoff"
ENDED = "ended"


def find_or_create_contact(
    session: Session, channel: str, external_id: str, *, name: str | None = None, locale: str | None = None
) -> Contact:
    """The contact behind ``(channel, external_id)``, created with its identity if new.

    Known contacts get a missing name or locale filled in, never overwritten: an
    agent may have corrected them.
    """
    found = session.exec(
        select(Contact)
        .join(Identity, col(Identity.contact_id) == col(Contact.id))
        .where(Identity.channel == channel, Identity.external_id == external_id)
    ).first()
    if found is not None:
        if (name and found.name is None) or (locale and found.locale is None):
            found.name = found.name or name
            found.locale = found.locale or locale
            session.add(found)
        return found
    contact = Contact(name=name, locale=locale)
    session.add(contact)
    session.add(Identity(contact_id=contact.id, channel=channel, external_id=external_id))
    session.flush()  # a concurrent twin fails here, inside the caller's retry
    return contact


def _current_query(contact_id: str, channel: str) -> SelectOfScalar[Conversation]:
    return (
        select(Conversation)
        .where(Conversation.contact_id == contact_id, Conversation.channel == channel, Conversation.status != ENDED)
        .order_by(col(Conversation.updated_at).desc(), col(Conversation.id))
    )


class ConversationsMixin(StoreBase):
    """Contacts and conversations: who talks, on which channel, and where their conversation is."""

    def resolve_contact(
        self, channel: str, external_id: str, *, name: str | None = None, locale: str | None = None
    ) -> Contact:
        """The contact a channel knows as ``external_id``; created on first contact (race-safe).

        A write transaction: callers on a hot path read first (:meth:`find_contact`)
        and come here only to create a contact or fill in its name or locale.
        """
        return self._write_retrying(
            lambda session: find_or_create_contact(session, channel, external_id, name=name, locale=locale)
        )

    def find_contact(self, channel: str, external_id: str) -> Contact | None:
        """The contact a channel knows as ``external_id``, or None: nothing is created."""
        with self._read() as session:
            return session.exec(
                select(Contact)
                .join(Identity, col(Identity.contact_id) == col(Contact.id))
                .where(Identity.channel == channel, Identity.external_id == external_id)
            ).first()

    def open_conversation(self, contact_id: str, channel: str) -> tuple[Conversation, bool]:
        """The contact's conversation on ``channel`` that has not ended, else a new one; True if new.

        Per channel, because replies go out on the conversation's channel: a
        Telegram message must not continue a web-chat conversation. A write
        transaction: callers on a hot path read first (:meth:`current_conversation`).
        """

        def work(session: Session) -> tuple[Conversation, bool]:
            # Opens for one contact wait for each other here (PostgreSQL), so that two at once
            # (two server processes, a visitor's two tabs) find one conversation, not make two.
            session.get(Contact, contact_id, with_for_update=ROW_LOCK)
            current = session.exec(_current_query(contact_id, channel)).first()
            if current is not None:
                return current, False
            conversation = Conversation(id=new_id(), contact_id=contact_id, channel=channel, status=OPEN)
            session.add(conversation)
            session.flush()
            return conversation, True

        return self._write_retrying(work)

    def current_conversation(self, contact_id: str, channel: str) -> Conversation | None:
        """The contact's conversation on ``channel`` that has not ended, if there is one."""
        with self._read() as session:
            return session.exec(_current_query(contact_id, channel)).first()

    def start_conversation_flow(self, conversation_id: str, flow: str, revision: str) -> bool:
        """Record the flow and revision a conversation runs; False if there is no such conversation."""
        with self._write() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                return False
            conversation.flow, conversation.revision = flow, revision
            conversation.updated_at = utcnow()
            session.add(conversation)
            return True

    def latest_conversation(self, contact_id: str, channel: str | None = None) -> Conversation | None:
        """The contact's most recently active conversation, ended or not (what a returning visitor sees)."""
        query = select(Conversation).where(Conversation.contact_id == contact_id)
        if channel is not None:
            query = query.where(Conversation.channel == channel)
        query = query.order_by(col(Conversation.updated_at).desc(), col(Conversation.created_at).desc())
        with self._read() as session:
            return session.exec(query).first()

    def end_conversation(self, conversation_id: str, end_status: str = ENDED) -> bool:
        """Mark a conversation ended (its workflow said so); False if unknown or already ended.

        The log's "ended" entry normally does this; this is for a conversation found
        ended without one (the workflow closed while nobody was recording).
        """
        with self._write() as session:
            # Locked: two enders at once must not both say "ended it" (PostgreSQL; see ROW_LOCK).
            conversation = session.get(Conversation, conversation_id, with_for_update=ROW_LOCK)
            if conversation is None or conversation.status == ENDED:
                return False
            now = utcnow()
            conversation.status, conversation.end_status, conversation.ended_at = ENDED, end_status, now
            conversation.updated_at, conversation.assigned_agent = now, None
            session.add(conversation)
            return True

    def count_by_status(self) -> dict[str, int]:
        """How many conversations are open, handed off and ended (the metrics gauge)."""
        query = select(Conversation.status, func.count()).group_by(col(Conversation.status))
        with self._read() as session:
            return {status: count for status, count in session.exec(query).all()}

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        with self._read() as session:
            return session.get(Conversation, conversation_id)

    def get_contact(self, contact_id: str) -> Contact | None:
        with self._read() as session:
            return session.get(Contact, contact_id)

    def list_conversations(
        self,
        *,
        status: str | None = None,
        channel: str | None = None,
        flow: str | None = None,
        outdated: dict[str, str] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Conversation]:
        """Conversations, most recently active first.

        ``outdated`` maps each flow to its live revision and keeps only running
        conversations on another revision: those that will move at their next
        safe point, or finish on the old one.
        """
        query = select(Conversation)
        if status is not None:
            query = query.where(Conversation.status == status)
        if channel is not None:
            query = query.where(Conversation.channel == channel)
        if flow is not None:
            query = query.where(Conversation.flow == flow)
        if outdated is not None:
            if not outdated:
                return []
            query = query.where(
                Conversation.status != ENDED,
                or_(
                    *(
                        and_(col(Conversation.flow) == name, col(Conversation.revision) != live)
                        for name, live in sorted(outdated.items())
                    )
                ),
            )
        query = query.order_by(col(Conversation.updated_at).desc(), col(Conversation.id)).offset(offset).limit(limit)
        with self._read() as session:
            return list(session.exec(query).all())
