"""Name → class maps whose modules are imported when a name is first looked up.

A conversion uses one or two codecs and one container; importing every codec and writer
module would cost it more start-up than some whole conversions take.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Maps each name to the class at "module:attribute", imported on first lookup."""

    __slots__ = ("_loaded", "_places")

    def __init__(self, places: Mapping[str, str]) -> None:
        self._places = dict(places)
        self._loaded: dict[str, T] = {}

    def __getitem__(self, name: str) -> T:
        found = self._loaded.get(name)
        if found is None:
            module, _, attribute = self._places[name].partition(":")
            found = self._loaded[name] = getattr(importlib.import_module(module), attribute)
        return found

    def __contains__(self, name: object) -> bool:
        return name in self._places

    def __iter__(self) -> Iterator[str]:
        return iter(self._places)

    def __len__(self) -> int:
        return len(self._places)
