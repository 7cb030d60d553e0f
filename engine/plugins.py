"""Finding plugins by name: built-ins, decorator registrations, entry points, ``module:attr``.

One :class:`PluginRegistry` per kind of plugin (AI providers, pipeline processors,
channels). A name is looked up, in order, among

1. names registered in this process with :meth:`PluginRegistry.register`
   (the ``@register_provider("name")`` decorator, for instance);
2. the built-ins, given as ``module:attr`` strings so that a built-in's
   dependencies are imported only when a flow uses it;
3. the installed distributions' entry points of the registry's group
   (``flowdesk.ai`` ...);
4. a ``package.module:attr`` reference written in the flow itself.

A plugin that fails to import is reported by name with its exception
(:class:`PluginError`), and the other plugins still load; an unknown name gets an
error listing the known ones.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from engine.errors import PluginError
from engine.flow.vocabulary import IMPORT_REFERENCE

log = logging.getLogger(__name__)

T = TypeVar("T")


class PluginRegistry(Generic[T]):
    """Named plugins of one kind; ``T`` is what a name resolves to (a factory, a class)."""

    def __init__(self, kind: str, group: str, builtins: Mapping[str, str]) -> None:
        self.kind = kind
        self.group = group
        self.builtins = dict(builtins)
        self._registered: dict[str, T] = {}
        self._loaded: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: make ``name`` resolve to the decorated object in this process."""

        def decorate(target: T) -> T:
            self._registered[name] = target
            self._loaded.pop(name, None)
            return target

        return decorate

    def names(self) -> frozenset[str]:
        """Every name that resolves without a ``module:attr`` reference (nothing is imported)."""
        return frozenset(self._registered) | frozenset(self.builtins) | frozenset(self._entry_points())

    def resolve(self, name: str) -> T:
        """The plugin called ``name``; :class:`PluginError` says why there is none."""
        if name in self._registered:
            return self._registered[name]
        if name in self._loaded:
            return self._loaded[name]
        target = self._load(name)
        self._loaded[name] = target
        return target

    def _load(self, name: str) -> T:
        if name in self.builtins:
            return self._import(name, self.builtins[name])
        points = self._entry_points()
        if name in points:
            try:
                loaded: T = points[name].load()
            except Exception as exc:
                raise self._broken(name, f"entry point {points[name].value}", exc) from exc
            return loaded
        if IMPORT_REFERENCE.match(name):
            return self._import(name, name)
        known = ", ".join(sorted(self.names())) or "none"
        raise PluginError(f"unknown {self.kind} {name!r}; known: {known} (or a `package.module:attr` reference)")

    def _import(self, name: str, reference: str) -> T:
        module_name, _, attr = reference.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise self._broken(name, f"module {module_name}", exc) from exc
        # Importing may have registered the name (a module that uses the decorator).
        if name in self._registered:
            return self._registered[name]
        try:
            target: T = getattr(module, attr)
        except AttributeError:
            raise PluginError(f"{self.kind} {name!r}: module {module_name} has no attribute {attr!r}") from None
        return target

    def _broken(self, name: str, where: str, exc: Exception) -> PluginError:
        log.warning("%s %r failed to load from %s: %s: %s", self.kind, name, where, type(exc).__name__, exc)
        return PluginError(f"{self.kind} {name!r} failed to load ({where}): {type(exc).__name__}: {exc}")

    def _entry_points(self) -> dict[str, EntryPoint]:
        return {point.name: point for point in entry_points(group=self.group)}

    def load_all(self) -> dict[str, PluginError]:
        """Import every known plugin; the ones that failed, by name (the rest are loaded)."""
        failures: dict[str, PluginError] = {}
        for name in sorted(self.names()):
            try:
                self.resolve(name)
            except PluginError as exc:
                failures[name] = exc
        return failures
