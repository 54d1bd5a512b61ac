"""Value records that cost nothing to import.

`typing.NamedTuple` needs `typing` (~6 ms) and `dataclasses` imports
`inspect` (~12 ms): start-up time on every annotated `podman run`. A record
lists its fields in __slots__ (in __init__'s order) and assigns them in
__init__; equality, hashing, repr and replace() come from here. Records of
different classes never compare equal (AddRoute(r) is not DeleteRoute(r)).
Records are not modified after __init__, by convention.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    R = TypeVar("R", bound="Record")


class Record:
    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple([getattr(self, name) for name in self.__slots__])

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._values() == self._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def replace(self: R, **changes: object) -> R:
        """A copy with some fields changed."""
        values = {name: getattr(self, name) for name in self.__slots__}
        return type(self)(**{**values, **changes})
