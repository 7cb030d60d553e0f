"""Password hashing: argon2id, rules for new passwords, and a verify that never raises."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from engine.people.passwords import (
    MIN_PASSWORD_LENGTH,
    PasswordRefused,
    dummy_verify,
    hash_password,
    needs_rehash,
    verify,
)


def test_a_hash_is_argon2id_salted_and_checks_only_its_password() -> None:
    one = hash_password("correct horse battery")
    two = hash_password("correct horse battery")
    assert one.startswith("$argon2id$") and one != two  # salted
    assert verify(one, "correct horse battery") and verify(two, "correct horse battery")
    assert not verify(one, "correct horse batterY")
    assert not needs_rehash(one)


def test_new_passwords_need_a_length_and_say_so() -> None:
    with pytest.raises(PasswordRefused, match=f"at least {MIN_PASSWORD_LENGTH} characters"):
        hash_password("123456789")
    with pytest.raises(PasswordRefused, match="only spaces"):
        hash_password(" " * 12)
    with pytest.raises(PasswordRefused, match="at most"):
        hash_password("x" * 5000)
    hash_password("1234567890")


def test_verify_answers_false_for_mangled_hashes_and_huge_input() -> None:
    assert not verify("not a hash", "whatever password")
    assert not verify("", "whatever password")
    assert not verify(hash_password("correct horse battery"), "x" * 5000)
    dummy_verify("anything at all")  # spends the time, answers nothing, never raises


def test_old_parameters_ask_for_a_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192).hash("correct horse battery")
    assert verify(weak, "correct horse battery") and needs_rehash(weak)
    assert needs_rehash("garbage")
