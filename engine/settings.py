"""Settings of an installation: ``flowdesk.yaml`` plus ``FLOWDESK_*`` environment overrides.

The file is optional (every key has a default) and is validated with
``schemas/settings.schema.json``; a mistake is a :class:`~engine.errors.ConfigError`
that says ``file:line:col`` and what to fix. A few top-level scalars can be set
from the environment (see :data:`ENV_VARIABLES`), which wins over the file.

``${env:NAME}`` references in the file are kept as written: secrets are resolved
only where they are used (inside activities, see :func:`resolve_env_ref`), so they
never reach workflow history, the database or logs.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, Diagnostic
from engine.flow.context import FlowSettings, Limits
from engine.flow.installation import Installation
from engine.flow.load import LoadedDocument, load_document
from engine.flow.public_settings import PublicSettings
from engine.flow.schema_check import schema_diagnostics, settings_validator
from engine.people.settings import PeopleSettings
from engine.settings_sections import (
    AISettings,
    ChannelsSettings,
    LogSettings,
    ServerSettings,
    StoreSettings,
    TemporalSettings,
    WebChatSettings,
    resolve_env_ref,
)

#: Where settings are looked for when no file is named.
DEFAULT_FILE = "flowdesk.yaml"

#: Environment variables that override a setting, and the setting each one sets.
ENV_VARIABLES: dict[str, tuple[str, ...]] = {
    "FLOWDESK_BRAND": ("brand",),
    "FLOWDESK_DATA_DIR": ("data_dir",),
    "FLOWDESK_FLOWS_DIR": ("flows_dir",),
    "FLOWDESK_DATABASE_URL": ("database", "url"),
    "FLOWDESK_TEMPORAL_ADDRESS": ("temporal", "address"),
    "FLOWDESK_LOG_LEVEL": ("log", "level"),
    "FLOWDESK_LOG_FORMAT": ("log", "format"),
    "FLOWDESK_HOST": ("server", "host"),
    "FLOWDESK_PORT": ("server", "port"),
    "FLOWDESK_TEMPORAL_PORT": ("temporal", "embedded_port"),
    "FLOWDESK_TEMPORAL_UI_PORT": ("temporal", "ui_port"),
}
#: Settings whose environment value is a whole number (the schema checks the rest).
_INTEGER_SETTINGS = {("server", "port"), ("temporal", "embedded_port"), ("temporal", "ui_port")}


@dataclass(frozen=True, slots=True)
class EnvOverride:
    """One ``FLOWDESK_*`` variable that is set, and the setting it replaces."""

    variable: str
    path: tuple[str, ...]
    value: str

    @property
    def setting(self) -> str:
        """The setting's dotted name, e.g. ``database.url``."""
        return ".".join(self.path)


def env_overrides(environ: Mapping[str, str]) -> list[EnvOverride]:
    """The overrides ``environ`` asks for. A variable set to the empty string counts:
    ``FLOWDESK_TEMPORAL_ADDRESS=`` means "run an embedded Temporal"."""
    return [EnvOverride(name, path, environ[name]) for name, path in ENV_VARIABLES.items() if name in environ]


@dataclass(frozen=True)
class Settings:
    """Validated settings: ``data`` is the file's mapping with environment overrides applied.

    Each concern's settings are a frozen object built once, on first use
    (:attr:`server`, :attr:`temporal`, :attr:`store`, :attr:`log`, :attr:`webchat`,
    :attr:`channels`, :attr:`ai`; see :mod:`engine.settings_sections`).
    """

    data: Mapping[str, Any] = field(default_factory=dict)
    #: the file they came from; ``None`` when there was none
    file: Path | None = None
    overrides: tuple[EnvOverride, ...] = ()

    @classmethod
    def load(cls, path: str | Path | None = None, *, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``path`` (default: ``./flowdesk.yaml`` if it exists) and apply ``environ``.

        A file named explicitly must exist; the default file is optional.
        """
        env = os.environ if environ is None else environ
        if path is None:
            default = Path(DEFAULT_FILE)
            if not default.is_file():
                return cls.from_mapping({}, environ=env)
            path = default
        file = Path(path)
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"settings file {file} not found") from None
        except OSError as exc:
            raise ConfigError(f"cannot read settings file {file}: {exc.strerror or exc}") from None
        return cls.from_source(raw, str(file), environ=env)

    @classmethod
    def from_source(cls, raw: bytes | str, file: str, *, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the text of a ``flowdesk.yaml``."""
        doc, problems = load_document(raw, file)
        if doc is None:
            if [p.code for p in problems] == ["FD103"]:
                # An empty file (or one with only comments) means "all defaults".
                return cls.from_mapping({}, environ=environ, file=Path(file))
            raise _invalid_file(file, problems)
        if not isinstance(doc.data, dict):
            raise ConfigError(f"{file}:1:1: settings must be a mapping of names to values (like `brand: Acme`)")
        problems = schema_diagnostics(doc, settings_validator())
        if problems:
            raise _invalid_file(file, problems)
        return cls.from_mapping(doc.data, environ=environ, file=Path(file))

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, environ: Mapping[str, str] | None = None, file: Path | None = None
    ) -> Settings:
        """Settings from already-parsed data; the environment overrides are applied and checked."""
        merged = copy.deepcopy(dict(data))
        overrides = env_overrides(os.environ if environ is None else environ)
        for override in overrides:
            target = merged
            for key in override.path[:-1]:
                if not isinstance(target.get(key), dict):
                    target[key] = {}
                target = target[key]
            value: Any = override.value
            if override.path in _INTEGER_SETTINGS and value.strip().isdigit():
                value = int(value)
            target[override.path[-1]] = value
        source = str(file) if file is not None else "<settings>"
        problems = schema_diagnostics(LoadedDocument(source, "", merged), settings_validator())
        if problems:
            # Values from the file were checked with their positions already (from_source);
            # name the variable for what the environment brought in.
            by_path = {"$." + o.setting: o for o in overrides}
            lines = []
            for problem in problems:
                culprit = by_path.get(problem.path)
                if culprit is not None:
                    hint = f" ({problem.hint})" if problem.hint else ""
                    lines.append(f"{culprit.variable}={culprit.value!r}: {problem.message}{hint}")
                else:
                    lines.append(_settings_wording(problem).format())
            raise ConfigError("invalid settings:\n" + "\n".join(lines))
        return cls(merged, file, tuple(overrides))

    def get(self, *path: str, default: Any = None) -> Any:
        """The value at ``path`` (``settings.get("temporal", "address")``), or ``default``."""
        node: Any = self.data
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                return default
            node = node[key]
        return node

    @cached_property
    def server(self) -> ServerSettings:
        return ServerSettings.from_data(self.data)

    @cached_property
    def temporal(self) -> TemporalSettings:
        # TLS files are relative to the settings file's directory (the working one without a file).
        return TemporalSettings.from_data(self.data, base=self.file.parent if self.file is not None else Path())

    @cached_property
    def store(self) -> StoreSettings:
        return StoreSettings.from_data(self.data)

    @cached_property
    def log(self) -> LogSettings:
        return LogSettings.from_data(self.data)

    @cached_property
    def webchat(self) -> WebChatSettings:
        return WebChatSettings.from_data(self.data)

    @cached_property
    def channels(self) -> ChannelsSettings:
        return ChannelsSettings.from_data(self.data)

    @cached_property
    def ai(self) -> AISettings:
        return AISettings.from_data(self.data)

    @cached_property
    def people(self) -> PeopleSettings:
        return PeopleSettings.from_data(self.data)

    @property
    def brand(self) -> str:
        return str(self.get("brand", default="Flowdesk"))

    def public(self) -> PublicSettings:
        """The settings revision conversations carry: what flows can read, never a secret.

        The simulator (``try``/``test``) and the server both make it here, so a flow
        test sees what a conversation on the server sees.
        """
        try:
            return PublicSettings.from_settings_data(self.data)
        except ValueError as exc:
            raise ConfigError(f"{self._where()}{exc}") from None

    def flow_settings(self) -> FlowSettings:
        """What flows may read as ``settings.*`` and ``business_hours(name)`` (of :meth:`public`)."""
        return self.public().flow_settings

    def word_lists(self) -> dict[str, dict[str, Any]]:
        """The named word lists of ``sensitive_words``, files made absolute (relative: to this file's directory)."""
        base = self.file.parent if self.file is not None else Path.cwd()
        lists: dict[str, dict[str, Any]] = {}
        for name, spec in (self.get("word_lists", default={}) or {}).items():
            files = [str((base / f).resolve()) for f in spec.get("files") or []]
            lists[name] = {"files": files, "words": list(spec.get("words") or [])}
        return lists

    def limits(self) -> Limits:
        """Interpreter limits, with ``limits.max_steps_per_turn`` from the settings (of :meth:`public`)."""
        return self.public().limits

    def _where(self) -> str:
        return f"{self.file}: " if self.file is not None else ""

    def installation(self) -> Installation:
        """The names these settings define, for the validator (calendars, ``settings.x``, AI profiles)."""
        names = {"brand", *(self.get("values", default={}) or {})}
        if self.get("demo", "order_api", default=False):
            names.add("shop_api")  # serve points it at its demo order API while unset (engine/server/demo_shop.py)
        return Installation(
            calendars=frozenset(self.get("business_hours", default={}) or {}),
            settings_names=frozenset(names),
            ai_profiles=frozenset(self.ai.profiles),
            channel_accounts=self._channel_accounts(),
            queues=frozenset(self.people.queues) or None,
            source=str(self.file) if self.file is not None else "<settings>",
        )

    def _channel_accounts(self) -> dict[str, frozenset[str]]:
        """Accounts by channel kind as configured; a kind whose block is malformed names none."""
        accounts: dict[str, frozenset[str]] = {}
        for kind in self.channels.kinds:
            try:
                accounts[kind] = frozenset(self.channels.accounts(kind))
            except ConfigError:
                accounts[kind] = frozenset()
        return accounts


def _settings_wording(problem: Diagnostic) -> Diagnostic:
    # The schema layer words places for flow files; at the top level it says "the flow".
    if problem.message.endswith(" in the flow"):
        return replace(problem, message=problem.message.removesuffix(" in the flow") + " in the settings")
    return problem


def _invalid_file(file: str, problems: list[Diagnostic]) -> ConfigError:
    """The error of a settings file with ``problems``: one line each, and the diagnostics themselves."""
    worded = [_settings_wording(problem) for problem in problems]
    lines = "\n".join(problem.format() for problem in worded)
    return ConfigError(f"invalid settings file {file}:\n{lines}", worded)


__all__ = ["DEFAULT_FILE", "ENV_VARIABLES", "EnvOverride", "Settings", "env_overrides", "resolve_env_ref"]
