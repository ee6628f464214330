"""Open registries: what a config can name (backends, judges, benchmarks), filled by decorators and entry points.

Each extension point is one ``Registry``. iteralign's own entries register themselves with the registry's decorator
in the modules listed as ``builtins``, which are imported on the first look-up (so that ``import iteralign`` stays
light and no module imports its own plugins). A separate package adds an entry without editing iteralign by
declaring an entry point in the registry's group; the entry point's object is registered under the entry point's
name (or, if it is a module, importing it registers what it decorates)::

    # pyproject.toml of a plugin package
    [project.entry-points."iteralign.judges"]
    keyword = "my_plugin.judges:KeywordJudge"

The groups: ``iteralign.backends``, ``iteralign.judges``, ``iteralign.benchmarks``.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from types import ModuleType
from typing import Callable, Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class RegistryError(ValueError):
    """A name no registered entry answers to; the message lists the known names (a ValueError, so that a config
    naming an unknown judge or benchmark is reported as a config error)."""


class Registry(Generic[T]):
    """Named entries of one kind, from iteralign's own modules and from installed packages' entry points."""

    def __init__(self, kind: str, group: str, builtins: tuple[str, ...] = ()) -> None:
        self.kind, self.group, self.builtins = kind, group, builtins
        self._items: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@BACKENDS.register("hf")`` over a class (or any object the registry holds)."""

        def add(item: T) -> T:
            existing = self._items.get(name)
            if existing is not None and existing is not item:
                raise ValueError(f"{self.kind} {name!r} is registered twice ({existing!r} and {item!r})")
            self._items[name] = item
            return item

        return add

    def get(self, name: str) -> T:
        """The entry called ``name``; ``RegistryError`` names the known ones."""
        self.load()
        try:
            return self._items[name]
        except KeyError:
            raise RegistryError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or 'none'} "
                                f"(packages add more through the {self.group!r} entry-point group)") from None

    def names(self) -> list[str]:
        self.load()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        self.load()
        return sorted(self._items.items())

    def __contains__(self, name: str) -> bool:
        self.load()
        return name in self._items

    def load(self) -> None:
        """Import the built-in modules and every installed entry point of the group (once)."""
        if self._loaded:
            return
        self._loaded = True
        for module in self.builtins:
            importlib.import_module(module)
        for ep in entry_points(group=self.group):
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must not break the tool: say which, and go on
                log.warning("%s plugin %s (%s) failed to load: %s: %s", self.kind, ep.name, ep.value,
                            type(exc).__name__, exc)
                continue
            if not isinstance(obj, ModuleType) and ep.name not in self._items:
                self._items[ep.name] = obj
