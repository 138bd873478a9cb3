"""Typed hyperparameter specs that families declare, so every value is checked before Ray starts.

Each spec's `check(value)` returns None when the value is allowed, else a short reason
such as "must be > 0" that the search-space loader turns into a one-line error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestration.errors import quote


@dataclass(frozen=True)
class Param:
    default: Any
    help: str = ""

    def check(self, value: Any) -> str | None:  # pragma: no cover - overridden
        return None

    @property
    def numeric(self) -> bool:
        return False


@dataclass(frozen=True)
class Float(Param):
    """A real number in [low, high], with exclusive bounds where low_open / high_open."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    @property
    def numeric(self) -> bool:
        return True

    def range_text(self) -> str:
        lo = "" if self.low is None else f"{'>' if self.low_open else '>='} {self.low}"
        hi = "" if self.high is None else f"{'<' if self.high_open else '<='} {self.high}"
        return " and ".join(part for part in (lo, hi) if part) or "any number"

    def check(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number ({self.range_text()}), got {quote(value)}"
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if too_low or too_high:
            return f"must be {self.range_text()}, got {quote(value)}"
        return None


@dataclass(frozen=True)
class Int(Float):
    def check(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer ({self.range_text()}), got {quote(value)}"
        return super().check(value)


@dataclass(frozen=True)
class Choice(Param):
    choices: tuple = ()

    def check(self, value: Any) -> str | None:
        if value not in self.choices:
            return f"must be one of {', '.join(map(str, self.choices))}; got {quote(value)}"
        return None


@dataclass(frozen=True)
class Bool(Param):
    def check(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else f"must be true or false, got {quote(value)}"


@dataclass(frozen=True)
class Text(Param):
    """A string, or null where `optional`."""

    optional: bool = False

    def check(self, value: Any) -> str | None:
        if value is None and self.optional:
            return None
        return None if isinstance(value, str) else f"must be a string, got {quote(value)}"


@dataclass(frozen=True)
class IntList(Param):
    """A list of integers, each >= low."""

    low: int = 0
    min_length: int = 0

    def check(self, value: Any) -> str | None:
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            return f"must be a list of integers, got {quote(value)}"
        if len(value) < self.min_length:
            return f"must hold at least {self.min_length} integers, got {quote(value)}"
        if any(v < self.low for v in value):
            return f"must hold integers >= {self.low}, got {quote(value)}"
        return None
