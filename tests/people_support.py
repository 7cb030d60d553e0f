"""People in tests: a user row written straight to the store (no password hashing: the tests do not sign in)."""

from __future__ import annotations

from sqlmodel import Session

from engine.store import Store
from engine.store.tables import UserAccount


def add_user(store: Store, email: str, role: str = "agent") -> int:
    """A user named after their address (``ann@...`` is Ann); their id."""
    with Session(store.engine, expire_on_commit=False) as session:
        user = UserAccount(email=email, display_name=email.partition("@")[0].title(), role=role, password_hash="x")
        session.add(user)
        session.commit()
        assert user.id is not None
        return user.id
