"""Where ``secret('NAME')`` gets its value: the worker's environment, else a configured default.

The ``secrets:`` section of the settings may give a secret a ``default`` used
while the environment does not set it: the demo's ``SHOP_TOKEN`` (its order API
takes any token), so a fresh install needs no variables. Values are looked up
inside activities only; they never enter workflow history, the settings
revision, the database or logs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from engine.settings import Settings

#: A secret's name -> its value, or None when it is not set.
SecretLookup = Callable[[str], str | None]


def secret_lookup(settings: Settings, environ: Mapping[str, str]) -> SecretLookup:
    """Look secrets up in ``environ`` first, then in the settings' ``secrets.<NAME>.default``."""
    defaults = {
        name: str(spec["default"])
        for name, spec in (settings.get("secrets", default={}) or {}).items()
        if isinstance(spec, Mapping) and spec.get("default") is not None
    }

    def lookup(name: str) -> str | None:
        value = environ.get(name)
        return value if value is not None else defaults.get(name)

    return lookup


def missing_secret_message(name: str) -> str:
    """What a step whose secret is not set says, in one line."""
    return f"secret {name!r} is not set (set the environment variable {name} on the worker)"


__all__ = ["SecretLookup", "missing_secret_message", "secret_lookup"]
