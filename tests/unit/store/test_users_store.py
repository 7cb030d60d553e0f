"""Users and sessions in the store, on SQLite and PostgreSQL: what the guard and the sign-in rely on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from engine.people.passwords import PasswordRefused
from engine.people.roles import Role
from engine.server.auth import issue_ticket, redeem_ticket, token_principal, user_principal
from engine.store import Store
from engine.store.columns import utcnow
from engine.store.tables import UserAccount
from engine.store.users import UserEmailTaken, UserInvalid, session_hash

PASSWORD = "correct horse battery"


def test_users_are_created_found_by_any_case_of_their_address_and_never_keep_the_password(fx_store: Store) -> None:
    assert fx_store.count_users() == 0
    ana = fx_store.create_user(" Ana@Example.COM ", PASSWORD, role="agent", display_name="Ana Lima", capacity=3)
    assert (ana.email, ana.role, ana.capacity, ana.language) == ("ana@example.com", "agent", 3, "en")
    assert PASSWORD not in ana.password_hash and ana.password_hash.startswith("$argon2id$")
    found = fx_store.get_user_by_email("ANA@example.com")
    assert found is not None and found.id == ana.id
    assert fx_store.check_password(found, PASSWORD) and not fx_store.check_password(found, PASSWORD + "x")
    with pytest.raises(UserEmailTaken, match=r"ana@example\.com"):
        fx_store.create_user("ana@EXAMPLE.com", PASSWORD, role="admin")
    with pytest.raises(PasswordRefused, match="at least 10"):
        fx_store.create_user("bo@example.com", "short", role="agent")
    with pytest.raises(UserInvalid, match="unknown role"):
        fx_store.create_user("bo@example.com", PASSWORD, role="boss")
    with pytest.raises(UserInvalid, match="not an e-mail"):
        fx_store.create_user("bo", PASSWORD, role="agent")
    bo = fx_store.create_user("bo@example.com", PASSWORD, role="editor")
    assert bo.display_name == "bo"  # from the address when none is given
    assert [u.email for u in fx_store.list_users()] == ["ana@example.com", "bo@example.com"]
    assert fx_store.count_users() == 2


def test_update_changes_only_what_is_given(fx_store: Store) -> None:
    ana = fx_store.create_user("ana@example.com", PASSWORD, role="agent", capacity=3)
    assert ana.id is not None
    changed = fx_store.update_user(ana.id, role="supervisor", language="zh")
    assert changed is not None and (changed.role, changed.language, changed.capacity) == ("supervisor", "zh", 3)
    cleared = fx_store.update_user(ana.id, capacity=None)
    assert cleared is not None and cleared.capacity is None and cleared.role == "supervisor"
    with pytest.raises(UserInvalid, match="language"):
        fx_store.update_user(ana.id, language="fr")
    assert fx_store.update_user(9999, role="agent") is None


def test_first_admin_only_while_nobody_exists(fx_store: Store) -> None:
    first = fx_store.create_first_admin("root@example.com", PASSWORD, display_name="Root")
    assert first is not None and first.role == "admin"
    assert fx_store.create_first_admin("other@example.com", PASSWORD) is None
    assert [u.email for u in fx_store.list_users()] == ["root@example.com"]


def test_sessions_end_on_idle_absolute_expiry_sign_out_disable_and_password_change(fx_store: Store) -> None:
    ana = fx_store.create_user("ana@example.com", PASSWORD, role="agent")
    assert ana.id is not None
    cookie, row = fx_store.create_session(ana.id, max_s=3600, address="127.0.0.1", user_agent="test")
    assert row.id_hash == session_hash(cookie) and cookie not in row.id_hash and row.csrf_token
    live = fx_store.lookup_session(cookie, idle_s=600)
    assert live is not None and live.user.id == ana.id and live.session.csrf_token == row.csrf_token
    assert fx_store.lookup_session(cookie + "x", idle_s=600) is None

    later = utcnow() + timedelta(seconds=601)
    assert fx_store.lookup_session(cookie, idle_s=600, now=later) is None  # idle
    assert fx_store.lookup_session(cookie, idle_s=600) is None  # and it was deleted

    cookie, _ = fx_store.create_session(ana.id, max_s=60)
    assert fx_store.lookup_session(cookie, idle_s=3600, now=utcnow() + timedelta(seconds=61)) is None  # absolute

    cookie, _ = fx_store.create_session(ana.id, max_s=60)
    assert fx_store.delete_session(cookie) and fx_store.lookup_session(cookie, idle_s=60) is None

    one, _ = fx_store.create_session(ana.id, max_s=60)
    two, _ = fx_store.create_session(ana.id, max_s=60)
    assert fx_store.set_password(ana.id, "another long password", keep_session=two)
    assert fx_store.lookup_session(one, idle_s=60) is None and fx_store.lookup_session(two, idle_s=60) is not None
    stored = fx_store.get_user(ana.id)
    assert stored is not None and fx_store.check_password(stored, "another long password")

    fx_store.disable_user(ana.id)
    assert fx_store.lookup_session(two, idle_s=60) is None
    fx_store.enable_user(ana.id)
    assert fx_store.lookup_session(two, idle_s=60) is None  # enabling again does not bring sessions back
    assert fx_store.delete_user_sessions(ana.id) == 0

    fx_store.create_session(ana.id, max_s=0)  # expired as it is made: the next sign-in clears it
    fx_store.create_session(ana.id, max_s=60)
    assert fx_store.delete_user_sessions(ana.id) == 1


def test_a_session_of_a_user_disabled_behind_the_stores_back_stops_too(fx_store: Store) -> None:
    """The lookup checks the account itself, not only that disabling deleted the sessions."""
    ana = fx_store.create_user("ana@example.com", PASSWORD, role="agent")
    assert ana.id is not None
    cookie, _ = fx_store.create_session(ana.id, max_s=60)
    with fx_store._write() as session:
        row = session.get(UserAccount, ana.id)
        assert row is not None
        row.disabled_at = utcnow()
        session.add(row)
    assert fx_store.lookup_session(cookie, idle_s=60) is None


def test_a_hash_with_old_parameters_is_replaced_at_a_good_sign_in(fx_store: Store) -> None:
    ana = fx_store.create_user("ana@example.com", PASSWORD, role="agent")
    assert ana.id is not None
    old = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    with fx_store._write() as session:
        row = session.get(UserAccount, ana.id)
        assert row is not None
        row.password_hash = old
        session.add(row)
    stale = fx_store.get_user(ana.id)
    assert stale is not None and fx_store.check_password(stale, PASSWORD)
    fresh = fx_store.get_user(ana.id)
    assert fresh is not None and fresh.password_hash != old and fx_store.check_password(fresh, PASSWORD)


def test_tokens_carry_a_role(fx_store: Store) -> None:
    fx_store.create_token("ci")
    plaintext = fx_store.create_token("crm", role="Agent")
    row = fx_store.verify_token(plaintext)
    assert row is not None and row.role == "agent"
    assert {t.name: t.role for t in fx_store.list_tokens()} == {"ci": "admin", "crm": "agent"}
    with pytest.raises(Exception, match="unknown role"):
        fx_store.create_token("x", role="root")


def test_socket_tickets_open_once_within_their_minute_and_die_with_the_password(fx_store: Store) -> None:
    ana = fx_store.create_user("ana@example.com", PASSWORD, role="supervisor")
    assert ana.id is not None
    principal = user_principal(ana)
    ticket = issue_ticket(fx_store, principal)
    assert redeem_ticket(fx_store, ticket) == principal
    assert redeem_ticket(fx_store, ticket) is None  # once
    expired = issue_ticket(fx_store, principal, now=0)
    assert redeem_ticket(fx_store, expired) is None
    forged = issue_ticket(fx_store, principal)
    kind, _ident, expiry, nonce, signature = forged.split(".")
    other = fx_store.create_user("bo@example.com", PASSWORD, role="admin")
    assert redeem_ticket(fx_store, f"{kind}.{other.id}.{expiry}.{nonce}.{signature}") is None  # not bo's
    assert redeem_ticket(fx_store, "garbage") is None
    pending = issue_ticket(fx_store, principal)
    fx_store.set_password(ana.id, "a new long password")
    assert redeem_ticket(fx_store, pending) is None
    pending = issue_ticket(fx_store, user_principal(fx_store.get_user(ana.id)))  # type: ignore[arg-type]
    fx_store.disable_user(ana.id)
    assert redeem_ticket(fx_store, pending) is None

    fx_store.create_token("bot", role="agent")
    robot = token_principal("bot", "agent")
    ticket = issue_ticket(fx_store, robot)
    assert redeem_ticket(fx_store, ticket) == robot and robot.role == Role.AGENT
    again = issue_ticket(fx_store, robot)
    fx_store.revoke_token("bot")
    assert redeem_ticket(fx_store, again) is None
