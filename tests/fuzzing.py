"""What the property tests share: settings, seeding, and mutations of real byte strings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from hypothesis import example, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=300, deadline=None)
F = TypeVar("F", bound=Callable[..., None])


def seeded(*values: object) -> Callable[[F], F]:
    """Apply `@example(value)` for each value (single-argument properties)."""

    def decorate(function: F) -> F:
        for value in values:
            function = example(value)(function)
        return function

    return decorate


def first(params: Iterable[Any]) -> list[Any]:
    """The first value of each `pytest.param` of a vector table."""
    return [param.values[0] for param in params]


@st.composite
def mutations(draw: st.DrawFn, seeds: Sequence[bytes], head: int = 16) -> bytes:
    """A seed with up to five bit flips, overwrites, truncations or extensions.

    Headers sit in the first `head` bytes and padding counts / superframe indexes in the last
    one, so those positions are drawn more often than the rest.
    """
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 5))):
        operation = draw(st.sampled_from(("flip", "set", "truncate", "extend")))
        if operation == "truncate":
            del data[draw(st.integers(0, len(data))) :]
        elif operation == "extend":
            data += draw(st.binary(min_size=1, max_size=16))
        elif data:
            last = len(data) - 1
            index = draw(
                st.one_of(st.integers(0, min(last, head - 1)), st.just(last), st.integers(0, last))
            )
            if operation == "flip":
                data[index] ^= 1 << draw(st.integers(0, 7))
            else:
                data[index] = draw(st.integers(0, 255))
    return bytes(data)
