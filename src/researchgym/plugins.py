"""Small name -> object registries that also accept `package.module:Object` and entry points."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from researchgym.errors import UnknownNameError


def load_object(reference: str) -> Any:
    """Import `package.module:Object` (the attribute may be dotted)."""
    module_name, _, attribute = reference.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split(".") if attribute else []:
        target = getattr(target, part)
    return target


class Registry:
    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.group = entry_point_group
        self._items: dict[str, Any] = {}
        self._loaded_entry_points = False

    def add(self, name: str, obj: Any) -> None:
        """Register an object or a lazy `module:Object` reference under `name`."""
        self._items[name] = obj

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points or not self.group:
            return
        self._loaded_entry_points = True
        for entry in entry_points(group=self.group):
            self._items.setdefault(entry.name, entry.value)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def find(self, name: str) -> Any | None:
        """The object registered (or entry-pointed) under `name`, or None: no error, no
        `module:Object` fallback (for callers with further ways to read a name)."""
        if name not in self._items:
            self._load_entry_points()
        return self.get(name) if name in self._items else None

    def get(self, name: str) -> Any:
        if name not in self._items:
            self._load_entry_points()
        if name not in self._items:
            if ":" in name:
                return load_object(name)
            raise UnknownNameError(self.kind, name, self.names())
        item = self._items[name]
        if isinstance(item, str):
            item = self._items[name] = load_object(item)
        return item
