"""API tokens: created once, shown once, stored as a SHA-256 hash, each with a role (admin by default).

A token is 32 random bytes, so a fast unsalted hash is enough: there is nothing to
guess, only a stolen database to make useless. The lookup is by hash, so the
plaintext is never compared (or kept) anywhere.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from engine.errors import ConfigError
from engine.people.roles import parse_role
from engine.store.base import StoreBase
from engine.store.columns import utcnow
from engine.store.tables import ApiToken

TOKEN_PREFIX = "fd_"

#: ``last_used_at`` is refreshed at most this often: not a database write per API request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenNameTaken(ConfigError):
    """A token with this name exists (revoked tokens keep their names, for the audit trail)."""


def token_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


class TokensMixin(StoreBase):
    """Create, check, list and revoke API tokens."""

    def create_token(self, name: str, role: str = "admin") -> str:
        """A new token named ``name`` acting as ``role``; the plaintext is returned here and never again."""
        if not name.strip():
            raise ConfigError("a token needs a name")
        try:
            role = str(parse_role(role))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            with self._write() as session:
                if session.exec(select(ApiToken.id).where(ApiToken.name == name)).first() is not None:
                    raise TokenNameTaken(f"a token named {name!r} already exists; pick another name")
                session.add(ApiToken(name=name, token_hash=token_hash(plaintext), role=role))
        except IntegrityError:
            # Another process created the same name between our check and our insert.
            raise TokenNameTaken(f"a token named {name!r} already exists; pick another name") from None
        return plaintext

    def verify_token(self, plaintext: str) -> ApiToken | None:
        """The row (its ``role`` says what it may do) of a token that is not revoked, else None."""
        if not plaintext.startswith(TOKEN_PREFIX):
            return None  # not even shaped like one: no database round trip
        digest = token_hash(plaintext)
        with self._read() as session:
            token = session.exec(
                select(ApiToken).where(ApiToken.token_hash == digest, col(ApiToken.revoked_at).is_(None))
            ).first()
        if token is None:
            return None
        now = utcnow()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            with self._write() as session:
                stored = session.get(ApiToken, token.id)
                if stored is not None:
                    stored.last_used_at = now
                    session.add(stored)
            token.last_used_at = now
        return token

    def list_tokens(self) -> list[ApiToken]:
        """Every token, revoked ones included, oldest first (no plaintexts: there are none)."""
        with self._read() as session:
            return list(session.exec(select(ApiToken).order_by(col(ApiToken.created_at), col(ApiToken.id))).all())

    def revoke_token(self, name: str) -> bool:
        """Revoke the token named ``name``; False if there is none or it was revoked already."""
        with self._write() as session:
            token = session.exec(select(ApiToken).where(ApiToken.name == name)).first()
            if token is None or token.revoked_at is not None:
                return False
            token.revoked_at = utcnow()
            session.add(token)
            return True

    def get_token_row(self, token_id: int) -> ApiToken | None:
        """A token's row by id (a socket ticket of a token names it); revoked ones too: the caller checks."""
        with self._read() as session:
            return session.get(ApiToken, token_id)
