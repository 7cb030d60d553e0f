"""Passwords: argon2id hashes (argon2-cffi), a minimum length, and a verify that takes as long for nobody.

Only the hash is ever stored. :func:`verify` answers True/False and never raises for a
wrong or mangled hash; :func:`needs_rehash` says when the hash was made with older
parameters (the sign-in then stores a fresh one). :func:`dummy_verify` spends the
time of a real check, so that a sign-in for an unknown address answers as slowly as
one with a wrong password and the timing does not tell which addresses exist.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from engine.errors import FlowdeskError

#: Shorter passwords are refused: length is what makes a password hard to guess.
MIN_PASSWORD_LENGTH = 10
#: Longer ones are refused too: hashing a megabyte of "password" is a cheap way to burn our CPU.
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


class PasswordRefused(FlowdeskError):
    """A new password that does not meet the rules; the message says which one."""


def check_new_password(password: str) -> None:
    """Raise :class:`PasswordRefused` saying why ``password`` may not be set."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRefused(f"a password needs at least {MIN_PASSWORD_LENGTH} characters (got {len(password)})")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordRefused(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")
    if not password.strip():
        raise PasswordRefused("a password cannot be only spaces")


def hash_password(password: str) -> str:
    """The argon2id hash to store for ``password`` (checked against the rules first)."""
    check_new_password(password)
    return _hasher.hash(password)


def rehash(password: str) -> str:
    """A fresh hash of a password that was just verified (not checked against today's rules: it is theirs)."""
    return _hasher.hash(password)


def verify(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; False for a malformed hash, never an exception."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than today's: store a new one after a good sign-in."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


@cache
def _dummy_hash() -> str:
    return _hasher.hash("flowdesk-no-such-user")


def dummy_verify(password: str) -> None:
    """Spend a real verification's time on a hash no password matches (an unknown address was given)."""
    verify(_dummy_hash(), password[:MAX_PASSWORD_LENGTH])
