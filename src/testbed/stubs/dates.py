"""Date-times as WireMock reads and writes them: ISO-8601 / RFC 1123 / epoch parsing, Java format patterns,
offsets and truncations, and the before / after / equalToDateTime operators."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from testbed.stubs.errors import InvalidStubError
from testbed.stubs.operators import ValuePattern, bool_option, str_option

JsonObj = dict[str, Any]

_UNITS = {
    "second": "seconds",
    "minute": "minutes",
    "hour": "hours",
    "day": "days",
    "week": "weeks",
    "month": "months",
    "year": "years",
    "milli": "milliseconds",
    "millisecond": "milliseconds",
}


def _add_offset(base: datetime, amount: int, unit: str) -> datetime:
    unit = unit.lower().rstrip("s")
    if unit in ("month", "year"):
        months = amount * (12 if unit == "year" else 1)
        y, m = divmod(base.month - 1 + months, 12)
        year, month = base.year + y, m + 1
        day = min(base.day, calendar.monthrange(year, month)[1])
        return base.replace(year=year, month=month, day=day)
    if unit not in _UNITS:
        raise InvalidStubError(
            f"unknown date offset unit {unit!r}; use seconds, minutes, hours, days, weeks, months or years"
        )
    return base + timedelta(**{_UNITS[unit]: amount})


def _truncate(dt: datetime, how: str | None) -> datetime:
    if not how:
        return dt
    h = how.lower()
    table: dict[str, Callable[[datetime], datetime]] = {
        "first second of minute": lambda d: d.replace(microsecond=0),
        "first minute of hour": lambda d: d.replace(minute=0, second=0, microsecond=0),
        "first hour of day": lambda d: d.replace(hour=0, minute=0, second=0, microsecond=0),
        "first day of month": lambda d: d.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
        "first day of next month": lambda d: _add_offset(
            d.replace(day=1, hour=0, minute=0, second=0, microsecond=0), 1, "months"
        ),
        "last day of month": lambda d: d.replace(
            day=calendar.monthrange(d.year, d.month)[1], hour=0, minute=0, second=0, microsecond=0
        ),
        "first day of year": lambda d: d.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0),
        "first day of next year": lambda d: d.replace(
            year=d.year + 1, month=1, day=1, hour=0, minute=0, second=0, microsecond=0
        ),
        "last day of year": lambda d: d.replace(month=12, day=31, hour=0, minute=0, second=0, microsecond=0),
    }
    if h not in table:
        raise InvalidStubError(f"unknown date truncation {how!r}; valid: {', '.join(table)}")
    return table[h](dt)


_JAVA_FORMAT = [
    ("yyyy", "%Y"),
    ("yy", "%y"),
    ("MMM", "%b"),
    ("MM", "%m"),
    ("dd", "%d"),
    ("HH", "%H"),
    ("mm", "%M"),
    ("ss", "%S"),
    ("SSS", "%f"),
    ("EEE", "%a"),
    ("Z", "%z"),
    ("XXX", "%z"),
]


def java_date_format_to_strftime(fmt: str) -> str:
    """Translate the common tokens of a Java DateTimeFormatter pattern to strftime."""
    out = fmt.replace("'T'", "T")
    for java, py in _JAVA_FORMAT:
        out = out.replace(java, py)
    return out


def parse_datetime(text: str, fmt: str | None = None) -> datetime | None:
    """An ISO-8601 / RFC 1123 / epoch-millis date-time (or one in a Java format), as an aware datetime."""
    text = text.strip()
    try:
        if fmt:
            if fmt == "unix":
                return datetime.fromtimestamp(int(text), UTC)
            if fmt == "epoch":
                return datetime.fromtimestamp(int(text) / 1000, UTC)
            dt = datetime.strptime(text, java_date_format_to_strftime(fmt))
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            dt = datetime.fromisoformat(text)
        elif re.match(r"\d{4}-\d{2}-\d{2}[T ]", text):
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        else:
            from email.utils import parsedate_to_datetime

            dt = parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


@dataclass(frozen=True)
class DateTimePattern(ValuePattern):
    kind: str  # before | after | equalToDateTime
    value: str
    actual_format: str | None = None
    expected_offset: int | None = None
    expected_offset_unit: str | None = None
    truncate_expected: str | None = None
    truncate_actual: str | None = None
    apply_truncation_last: bool = False

    @property
    def operator(self) -> str:  # type: ignore[override]
        return self.kind

    def expected_datetime(self) -> datetime:
        text = self.value.strip()
        m = re.fullmatch(r"now(?:\s*([+-])\s*(\d+)\s+(\w+))?", text, re.IGNORECASE)
        if m:
            dt = datetime.now(UTC)
            if m.group(1):
                amount = int(m.group(2)) * (-1 if m.group(1) == "-" else 1)
                dt = _add_offset(dt, amount, m.group(3))
        else:
            parsed = parse_datetime(text)
            if parsed is None:
                raise InvalidStubError(
                    f"{self.operator}: {self.value!r} is not a date-time; use ISO-8601 "
                    "(2024-01-31T10:00:00Z) or now +/-N units"
                )
            dt = parsed
        if self.apply_truncation_last:
            if self.expected_offset is not None:
                dt = _add_offset(dt, self.expected_offset, self.expected_offset_unit or "days")
            return _truncate(dt, self.truncate_expected)
        dt = _truncate(dt, self.truncate_expected)
        if self.expected_offset is not None:
            dt = _add_offset(dt, self.expected_offset, self.expected_offset_unit or "days")
        return dt

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        actual = parse_datetime(value, self.actual_format)
        if actual is None:
            return False
        actual = _truncate(actual, self.truncate_actual)
        expected = self.expected_datetime()
        if self.operator == "before":
            return actual < expected
        if self.operator == "after":
            return actual > expected
        return actual == expected

    def to_json(self) -> JsonObj:
        out: JsonObj = {self.operator: self.value}
        for key, v in (
            ("actualFormat", self.actual_format),
            ("expectedOffset", self.expected_offset),
            ("expectedOffsetUnit", self.expected_offset_unit),
            ("truncateExpected", self.truncate_expected),
            ("truncateActual", self.truncate_actual),
        ):
            if v is not None:
                out[key] = v
        if self.apply_truncation_last:
            out["applyTruncationLast"] = True
        return out




def parse_date_operator(op: str, obj: Mapping[str, Any], pointer: str) -> ValuePattern:
    """before / after / equalToDateTime from their WireMock JSON."""
    # before / after / equalToDateTime
    offset = obj.get("expectedOffset")
    dtp = DateTimePattern(
        op,
        str_option(obj, op, pointer),
        actual_format=obj.get("actualFormat"),
        expected_offset=int(offset) if offset is not None else None,
        expected_offset_unit=obj.get("expectedOffsetUnit"),
        truncate_expected=obj.get("truncateExpected"),
        truncate_actual=obj.get("truncateActual"),
        apply_truncation_last=bool_option(obj, "applyTruncationLast", pointer),
    )
    try:
        dtp.expected_datetime()
        _truncate(datetime.now(UTC), dtp.truncate_actual)
    except InvalidStubError as exc:
        raise InvalidStubError(exc.detail, f"{pointer}/{op}") from exc
    return dtp


