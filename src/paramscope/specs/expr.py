"""Arithmetic that prints itself: one formula, three views.

``4 * (i + u + 1) * u`` with ``i = Sym("inputs", 501)`` and ``u = Sym("units", 40)`` gives
``4 · (inputs + units + 1) · units`` (symbolic), ``4 × (501 + 40 + 1) × 40`` (expression) and
86,720 (value). Writing each layer's formula once keeps the words, the numbers and the value
from drifting apart; the value is then checked against the layer's real tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class Expr:
    """A node of an arithmetic expression over named quantities."""

    precedence = 3  # atoms bind tightest

    @property
    def value(self) -> int:
        raise NotImplementedError

    def render(self, numeric: bool) -> str:
        raise NotImplementedError

    @property
    def symbolic(self) -> str:
        return self.render(numeric=False)

    @property
    def expression(self) -> str:
        return self.render(numeric=True)

    def __add__(self, other: Expr | int) -> Expr:
        return Sum((self, lift(other)))

    def __radd__(self, other: int) -> Expr:
        return Sum((lift(other), self))

    def __mul__(self, other: Expr | int) -> Expr:
        return Product((self, lift(other)))

    def __rmul__(self, other: int) -> Expr:
        return Product((lift(other), self))


def lift(value: Expr | int) -> Expr:
    return value if isinstance(value, Expr) else Const(int(value))


@dataclass(frozen=True, eq=False)
class Const(Expr):
    number: int

    @property
    def value(self) -> int:
        return self.number

    def render(self, numeric: bool) -> str:
        return str(self.number)


@dataclass(frozen=True, eq=False)
class Sym(Expr):
    """A named quantity from the layer's configuration or input (`units`, `inputs`)."""

    name: str
    number: int

    @property
    def value(self) -> int:
        return self.number

    def render(self, numeric: bool) -> str:
        return str(self.number) if numeric else self.name


@dataclass(frozen=True, eq=False)
class _Op(Expr):
    terms: tuple[Expr, ...]

    def __post_init__(self) -> None:  # flatten (a + b) + c into a + b + c
        flat: list[Expr] = []
        for term in self.terms:
            flat.extend(term.terms if type(term) is type(self) else (term,))
        object.__setattr__(self, "terms", tuple(flat))

    def render(self, numeric: bool) -> str:
        parts = []
        for term in self.terms:
            text = term.render(numeric)
            parts.append(f"({text})" if term.precedence < self.precedence else text)
        return self.joiner(numeric).join(parts)


class Sum(_Op):
    precedence = 1

    @property
    def value(self) -> int:
        return sum(term.value for term in self.terms)

    def joiner(self, numeric: bool) -> str:
        return " + "


class Product(_Op):
    precedence = 2

    @property
    def value(self) -> int:
        return math.prod(term.value for term in self.terms)

    def joiner(self, numeric: bool) -> str:
        return " × " if numeric else " · "


def product(factors: list[Expr | int]) -> Expr:
    """The product of several factors (a single factor stays itself)."""
    lifted = [lift(f) for f in factors]
    return lifted[0] if len(lifted) == 1 else Product(tuple(lifted))


def total(terms: list[Expr | int]) -> Expr:
    """The sum of several terms (a single term stays itself)."""
    lifted = [lift(t) for t in terms]
    return lifted[0] if len(lifted) == 1 else Sum(tuple(lifted))


def times(n: int, expr: Expr) -> Expr:
    """``n · expr`` written plainly: 0 for none, ``expr`` itself for one."""
    return Const(0) if n == 0 else expr if n == 1 else n * expr
