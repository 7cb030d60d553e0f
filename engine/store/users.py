"""People who sign in, and their browser sessions.

A user's e-mail is lower-cased at the door (one person, one address). Passwords are
hashed here, outside the write transaction (argon2 takes tens of milliseconds and
SQLite has one writer), and only the hash is stored; no method returns a plaintext.

A session cookie carries 32 random bytes; the table keeps their SHA-256, as for API
tokens, so a copy of the database opens no browser. A session ends at its absolute
expiry whatever the activity, after ``idle_s`` without a request, when its user is
disabled (every session is deleted, and the lookup checks ``disabled_at`` too, so
it stops at once), or when the password changes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from engine.errors import FlowdeskError
from engine.people.passwords import hash_password, needs_rehash, rehash, verify
from engine.people.roles import parse_role
from engine.store.base import StoreBase, changes_people
from engine.store.columns import utcnow
from engine.store.tables import UserAccount, UserSession

#: ``last_seen_at`` is written at most this often (a quarter of the idle time when that is shorter).
LAST_SEEN_RESOLUTION = timedelta(minutes=1)

#: The languages the console speaks.
LANGUAGES = ("en", "zh")

_UNSET: Any = object()


class UserEmailTaken(FlowdeskError):
    """Another user has this e-mail address."""


class UserInvalid(FlowdeskError):
    """A user's field has a value that cannot be stored (the message names it)."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session and its user, as the guard needs them."""

    session: UserSession
    user: UserAccount


def session_hash(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode("utf-8")).hexdigest()


def normal_email(email: str) -> str:
    """The address as stored: trimmed and lower-cased; UserInvalid when it is not shaped like one."""
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or not domain or any(c.isspace() for c in value) or len(value) > 320:
        raise UserInvalid(f"{email!r} is not an e-mail address")
    return value


def _language(language: str) -> str:
    value = language.strip().lower()
    if value not in LANGUAGES:
        raise UserInvalid(f"unknown language {language!r}; use one of {', '.join(LANGUAGES)}")
    return value


def _role(role: str) -> str:
    try:
        return str(parse_role(role))
    except ValueError as exc:
        raise UserInvalid(str(exc)) from None


def _capacity(capacity: int | None) -> int | None:
    if capacity is not None and not 0 <= capacity <= 1000:
        raise UserInvalid(f"capacity must be between 0 and 1000 (got {capacity})")
    return capacity


def _display_name(name: str, email: str) -> str:
    value = name.strip() or email.split("@", 1)[0]
    if len(value) > 200:
        raise UserInvalid("a display name may have at most 200 characters")
    return value


class UsersMixin(StoreBase):
    """Users (create, read, change, disable) and their sessions (sign in, look up, sign out)."""

    # ---- users -------------------------------------------------------------------------

    def create_user(
        self,
        email: str,
        password: str,
        *,
        role: str,
        display_name: str = "",
        language: str = "en",
        capacity: int | None = None,
    ) -> UserAccount:
        """A new user; UserEmailTaken if the address is in use, PasswordRefused for a short password."""
        address = normal_email(email)
        user = UserAccount(
            email=address,
            display_name=_display_name(display_name, address),
            language=_language(language),
            role=_role(role),
            capacity=_capacity(capacity),
            password_hash=hash_password(password),
        )
        created = self._insert_user(user, first_only=False)
        assert created is not None
        return created

    def create_first_admin(self, email: str, password: str, *, display_name: str = "") -> UserAccount | None:
        """The first user, an admin; None if any user exists (checked in the inserting transaction)."""
        address = normal_email(email)
        user = UserAccount(
            email=address,
            display_name=_display_name(display_name, address),
            role="admin",
            password_hash=hash_password(password),
        )
        return self._insert_user(user, first_only=True)

    @changes_people
    def _insert_user(self, user: UserAccount, *, first_only: bool) -> UserAccount | None:
        taken = UserEmailTaken(f"a user with the e-mail address {user.email} already exists")
        try:
            with self._write() as session:
                if first_only and session.exec(select(func.count()).select_from(UserAccount)).one():
                    return None
                if session.exec(select(UserAccount.id).where(UserAccount.email == user.email)).first() is not None:
                    raise taken
                session.add(user)
                session.flush()
        except IntegrityError:
            raise taken from None
        return user

    def count_users(self) -> int:
        """How many users exist, disabled ones included (none: the first admin may be set up)."""
        with self._read() as session:
            return int(session.exec(select(func.count()).select_from(UserAccount)).one())

    def list_users(self, *, include_disabled: bool = True) -> list[UserAccount]:
        """Every user, oldest first."""
        query = select(UserAccount)
        if not include_disabled:
            query = query.where(col(UserAccount.disabled_at).is_(None))
        with self._read() as session:
            return list(session.exec(query.order_by(col(UserAccount.id))).all())

    def get_user(self, user_id: int) -> UserAccount | None:
        with self._read() as session:
            return session.get(UserAccount, user_id)

    def get_user_by_email(self, email: str) -> UserAccount | None:
        address = email.strip().lower()
        with self._read() as session:
            return session.exec(select(UserAccount).where(UserAccount.email == address)).first()

    @changes_people
    def update_user(
        self,
        user_id: int,
        *,
        display_name: str | None = None,
        language: str | None = None,
        role: str | None = None,
        capacity: int | None = _UNSET,
    ) -> UserAccount | None:
        """Change the given fields (``capacity=None`` clears it: the queue's default applies); None if no such user."""
        with self._write() as session:
            user = session.get(UserAccount, user_id)
            if user is None:
                return None
            if display_name is not None:
                user.display_name = _display_name(display_name, user.email)
            if language is not None:
                user.language = _language(language)
            if role is not None:
                user.role = _role(role)
            if capacity is not _UNSET:
                user.capacity = _capacity(capacity)
            session.add(user)
            return user

    @changes_people
    def set_user_disabled(self, user_id: int, disabled: bool) -> UserAccount | None:
        """Disable (every session ends at once) or enable a user; None if no such user."""
        with self._write() as session:
            user = session.get(UserAccount, user_id)
            if user is None:
                return None
            if disabled:
                user.disabled_at = user.disabled_at or utcnow()
                session.exec(delete(UserSession).where(col(UserSession.user_id) == user_id))
            else:
                user.disabled_at = None
            session.add(user)
            return user

    def disable_user(self, user_id: int) -> UserAccount | None:
        return self.set_user_disabled(user_id, True)

    def enable_user(self, user_id: int) -> UserAccount | None:
        return self.set_user_disabled(user_id, False)

    def set_password(self, user_id: int, password: str, *, keep_session: str | None = None) -> bool:
        """A new password (PasswordRefused if too short); every session but ``keep_session`` (a cookie value) ends."""
        new_hash = hash_password(password)
        kept = session_hash(keep_session) if keep_session else None
        with self._write() as session:
            user = session.get(UserAccount, user_id)
            if user is None:
                return False
            user.password_hash = new_hash
            session.add(user)
            ending = delete(UserSession).where(col(UserSession.user_id) == user_id)
            if kept is not None:
                ending = ending.where(col(UserSession.id_hash) != kept)
            session.exec(ending)
            return True

    def check_password(self, user: UserAccount, password: str) -> bool:
        """Whether ``password`` is the user's; a good one hashed with old parameters is re-hashed and stored."""
        if not verify(user.password_hash, password):
            return False
        if needs_rehash(user.password_hash):
            fresh = rehash(password)
            with self._write() as session:
                stored = session.get(UserAccount, user.id)
                if stored is not None and stored.password_hash == user.password_hash:
                    stored.password_hash = fresh
                    session.add(stored)
        return True

    # ---- sessions ------------------------------------------------------------------------

    def create_session(
        self, user_id: int, *, max_s: float, address: str = "", user_agent: str = ""
    ) -> tuple[str, UserSession]:
        """A new session for the user: (the cookie value, shown only here; the stored row with its CSRF token)."""
        cookie = secrets.token_urlsafe(32)
        now = utcnow()
        row = UserSession(
            id_hash=session_hash(cookie),
            user_id=user_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=max_s),
            address=address[:100],
            user_agent=user_agent[:300],
        )
        with self._write() as session:
            # Sessions nobody came back to are never looked up again: the user's sign-in clears them.
            session.exec(
                delete(UserSession).where(col(UserSession.user_id) == user_id, col(UserSession.expires_at) <= now)
            )
            session.add(row)
        return cookie, row

    def lookup_session(self, cookie: str, *, idle_s: float, now: datetime | None = None) -> SignedIn | None:
        """The live session of a cookie value and its enabled user, else None (an expired one is deleted)."""
        if not cookie or len(cookie) > 200:
            return None
        digest = session_hash(cookie)
        now = now or utcnow()
        with self._read() as session:
            found = session.exec(
                select(UserSession, UserAccount)
                .join(UserAccount, col(UserAccount.id) == col(UserSession.user_id))
                .where(UserSession.id_hash == digest)
            ).first()
        if found is None:
            return None
        row, user = found
        idle = timedelta(seconds=idle_s)
        if now >= row.expires_at or now - row.last_seen_at >= idle or user.disabled_at is not None:
            self.delete_session(cookie)
            return None
        if now - row.last_seen_at >= min(LAST_SEEN_RESOLUTION, idle / 4):
            with self._write() as session:
                stored = session.get(UserSession, digest)
                if stored is not None:
                    stored.last_seen_at = now
                    session.add(stored)
            row.last_seen_at = now
        return SignedIn(row, user)

    def delete_session(self, cookie: str) -> bool:
        """End the session of this cookie value (sign out); False if there was none."""
        with self._write() as session:
            result = session.exec(delete(UserSession).where(col(UserSession.id_hash) == session_hash(cookie)))
            return bool(result.rowcount)

    def delete_user_sessions(self, user_id: int) -> int:
        """End every session of the user; how many there were."""
        with self._write() as session:
            result = session.exec(delete(UserSession).where(col(UserSession.user_id) == user_id))
            return int(result.rowcount or 0)
