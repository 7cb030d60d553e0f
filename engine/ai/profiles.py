"""A chain provider's parameters: its profile from settings, then the flow's, secrets resolved.

Profiles (``ai_profiles`` in flowdesk.yaml) hold base URLs and keys, written
``${env:NAME}``; a flow's provider entry adds or overrides ``model``,
``temperature``, ``max_tokens``, ``knowledge`` and ``params`` (whose strings may
use ``{{ secret('NAME') }}``). Everything is resolved here, inside the activity,
right before the call: the resolved values exist only in the worker's memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.ai.types import ProviderConfigError
from engine.errors import ConfigError, FlowdeskError
from engine.flow import expr
from engine.flow.compile import parse_duration
from engine.flow.model import ProviderRef
from engine.settings import resolve_env_ref

#: Flow options that configure Flowdesk around the provider rather than the provider.
_CHAIN_OPTIONS = frozenset({"breaker"})
#: Profile keys Flowdesk reads itself; every other key is handed to the provider.
_PROFILE_OWN = frozenset({"provider", "timeout", "params"})


@dataclass(frozen=True)
class ResolvedParams:
    """What a provider is built from, and the secrets in it (to scrub from any text)."""

    use: str
    label: str
    params: dict[str, Any]
    secrets: tuple[str, ...] = ()
    timeout_ms: int | None = None
    breaker: Mapping[str, Any] = field(default_factory=dict)

    def cache_key(self) -> str:
        """Identifies the configuration (a digest, so the key holds no secret in clear)."""
        text = json.dumps([self.use, self.params], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def breaker_key(self) -> str:
        return f"{self.label}|{self.params.get('base_url', '')}"


def provider_label(ref: ProviderRef) -> str:
    return f"{ref.use}/{ref.profile}" if ref.profile else ref.use


def resolve_params(
    ref: ProviderRef,
    profiles: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str],
    *,
    knowledge_dir: Path,
) -> ResolvedParams:
    """The parameters of ``ref``; :class:`ProviderConfigError` names what is missing."""
    secrets: list[str] = []
    profile: Mapping[str, Any] = {}
    if ref.profile is not None:
        if ref.profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ProviderConfigError(f"AI profile {ref.profile!r} is not in ai_profiles (known: {known})")
        profile = profiles[ref.profile]
        declared = profile.get("provider")
        if declared and declared != ref.use:
            raise ProviderConfigError(f"AI profile {ref.profile!r} is for provider {declared!r}, not {ref.use!r}")

    def from_env(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            resolved = resolve_env_ref(value, environ)
        except ConfigError as exc:
            raise ProviderConfigError(str(exc)) from None
        if resolved is not value:
            secrets.append(resolved)
        return resolved

    params: dict[str, Any] = {"profile": ref.profile or ""}
    # base_url, api_key, model and the provider's own settings (bot_id, inputs, headers, ...)
    for key, value in profile.items():
        if key not in _PROFILE_OWN:
            params[key] = from_env(value)
    extra = {k: from_env(v) for k, v in (profile.get("params") or {}).items()}
    options = dict(ref.options)
    flow_extra = options.pop("params", None) or {}
    extra.update(expr.map_strings(flow_extra, _secret_renderer(environ, secrets.append)))
    for key, value in options.items():
        if key not in _CHAIN_OPTIONS:
            params[key] = value
    if ref.model:
        params["model"] = ref.model
    if isinstance(params.get("knowledge"), str):
        params["knowledge"] = str((knowledge_dir / params["knowledge"]).resolve())
    params["params"] = extra
    timeout_ms = ref.timeout_ms or parse_duration(profile.get("timeout"))
    return ResolvedParams(
        use=ref.use,
        label=provider_label(ref),
        params=params,
        secrets=tuple(secrets),
        timeout_ms=timeout_ms,
        breaker=dict(options.get("breaker") or {}),
    )


def _secret_renderer(environ: Mapping[str, str], found: Callable[[str], None]) -> Callable[[str], str]:
    """Render a template in which only ``secret()`` is in scope, and swap the markers for values."""

    def render(template: str) -> str:
        try:
            text = expr.render(template, {"secret": expr.secret_marker})
        except FlowdeskError as exc:
            raise ProviderConfigError(f"provider params: {exc}") from None

        def value(match: Any) -> str:
            name = match.group(1)
            secret = environ.get(name)
            if secret is None:
                raise ProviderConfigError(f"secret {name!r} is not set in the worker's environment")
            found(secret)
            return secret

        return expr.SECRET_MARKER_RE.sub(value, text)

    return render
