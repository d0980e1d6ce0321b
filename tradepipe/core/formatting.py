"""How money, prices and percentages are shown: one formatter, rounding named, never the thread's.

``Decimal.quantize`` without ``rounding=`` takes the thread's decimal context, and a library may change
that context (ccxt's ``decimal_to_precision`` does): -15.405 would then show as -15.41. Every value shown
here is rounded half to even (banker's rounding) in a private context, whatever the thread's context says.
Floats are taken through their shortest ``repr`` (``Decimal(str(x))``), so 0.1 is 0.1, not its binary tail.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

Number = Decimal | float | int | str

CENT = Decimal("0.01")
# Enough digits for any book: quantize fails (InvalidOperation) when the result needs more than ``prec``.
_CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN)


def to_decimal(value: Number) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def rounded(value: Number, quantum: Decimal = CENT) -> Decimal:
    """``value`` on the grid of ``quantum`` (a cent by default, or a market's tick), half to even."""
    return to_decimal(value).quantize(quantum, rounding=ROUND_HALF_EVEN, context=_CONTEXT)


def cents(value: Number) -> Decimal:
    return rounded(value, CENT)


def money(value: Number | None, *, grouping: bool = True, missing: str = "-") -> str:
    """Money to the cent, half to even: ``-1,234.50``; ``grouping=False`` gives ``-1234.50`` (JSON strings)."""
    if value is None:
        return missing
    return format(cents(value), ",f" if grouping else "f")


def price(value: Number | None, places: int, *, grouping: bool = True, missing: str = "-") -> str:
    """A price to ``places`` decimals (the market's tick), half to even."""
    if value is None:
        return missing
    return format(rounded(value, Decimal(1).scaleb(-places)), ",f" if grouping else "f")


def percent(fraction: Number | None, places: int = 2, *, signed: bool = False, missing: str = "-") -> str:
    """A fraction shown as a percentage: ``percent(0.0842) == "8.42%"`` (half to even)."""
    if fraction is None:
        return missing
    text = format(rounded(_CONTEXT.multiply(to_decimal(fraction), 100), Decimal(1).scaleb(-places)), "f")
    return ("+" + text if signed and not text.startswith("-") else text) + "%"
