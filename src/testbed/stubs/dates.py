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


_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_PATTERN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|.", re.DOTALL)


def _offset_text(dt: datetime, letter: str, count: int) -> str:
    """Java's Z / X / x / O offset forms (X prints Z for zero; x never does)."""
    off = dt.utcoffset() or timedelta(0)
    secs = int(off.total_seconds())
    if letter == "X" and secs == 0:
        return "Z"
    sign = "-" if secs < 0 else "+"
    secs = abs(secs)
    hh, mm = secs // 3600, secs % 3600 // 60
    if letter == "O":
        if secs == 0:
            return "GMT"
        return (
            f"GMT{sign}{hh}" + (f":{mm:02d}" if mm or count == 4 else "")
            if count == 1
            else f"GMT{sign}{hh:02d}:{mm:02d}"
        )
    if letter == "Z":
        if count == 4:
            return "GMT" if secs == 0 else f"GMT{sign}{hh:02d}:{mm:02d}"
        if count == 5:
            return "Z" if secs == 0 else f"{sign}{hh:02d}:{mm:02d}"
        return f"{sign}{hh:02d}{mm:02d}"
    # X / x
    if count == 1:
        return f"{sign}{hh:02d}" + (f"{mm:02d}" if mm else "")
    if count in (2, 4):
        return f"{sign}{hh:02d}{mm:02d}"
    return f"{sign}{hh:02d}:{mm:02d}"


def format_java(dt: datetime, pattern: str) -> str:
    """Format ``dt`` with a Java DateTimeFormatter pattern (``yyyy-MM-dd'T'HH:mm:ssXXX``, ``EEE``...)."""
    out: list[str] = []
    for m in _PATTERN.finditer(pattern):
        tok = m.group()
        if tok.startswith("'"):
            out.append(tok[1:-1].replace("''", "'") if tok != "''" else "'")
            continue
        if not m.group(1):
            out.append(tok)
            continue
        c, n = tok[0], len(tok)
        if c in "yu":
            out.append(f"{dt.year % 100:02d}" if n == 2 else f"{dt.year:0{n}d}")
        elif c in "ML":
            out.append(
                _MONTHS[dt.month - 1]
                if n == 4
                else _MONTHS[dt.month - 1][:3]
                if n == 3
                else _MONTHS[dt.month - 1][0]
                if n == 5
                else f"{dt.month:0{n}d}"
            )
        elif c == "d":
            out.append(f"{dt.day:0{n}d}")
        elif c == "D":
            out.append(f"{dt.timetuple().tm_yday:0{n}d}")
        elif c in "Ee":
            name = _DAYS[dt.weekday()]
            out.append(
                name if n == 4 else name[0] if n == 5 else name[:3] if c == "E" or n == 3 else str(dt.isoweekday())
            )
        elif c == "H":
            out.append(f"{dt.hour:0{n}d}")
        elif c == "h":
            out.append(f"{(dt.hour % 12) or 12:0{n}d}")
        elif c == "K":
            out.append(f"{dt.hour % 12:0{n}d}")
        elif c == "k":
            out.append(f"{dt.hour or 24:0{n}d}")
        elif c == "m":
            out.append(f"{dt.minute:0{n}d}")
        elif c == "s":
            out.append(f"{dt.second:0{n}d}")
        elif c == "S":
            out.append(f"{dt.microsecond:06d}{'0' * max(0, n - 6)}"[:n])
        elif c == "n":
            out.append(str(dt.microsecond * 1000))
        elif c == "A":
            out.append(str((dt.hour * 3600 + dt.minute * 60 + dt.second) * 1000 + dt.microsecond // 1000))
        elif c == "a":
            out.append("AM" if dt.hour < 12 else "PM")
        elif c in "XxZO":
            out.append(_offset_text(dt, c, n))
        elif c == "z":
            out.append(dt.tzname() or "UTC" if n < 4 else str(dt.tzinfo))
        elif c == "V":
            out.append(str(getattr(dt.tzinfo, "key", None) or dt.tzname() or "Z"))
        elif c == "G":
            out.append("AD")
        elif c == "Q" or c == "q":
            out.append(str((dt.month - 1) // 3 + 1))
        elif c == "w":
            out.append(f"{dt.isocalendar()[1]:0{n}d}")
        else:
            raise ValueError(f"unknown pattern letter {c!r} in {pattern!r}")
    return "".join(out)


def _parse_regex(pattern: str) -> tuple[re.Pattern[str], list[tuple[str, int]]]:
    parts: list[str] = []
    fields: list[tuple[str, int]] = []
    for m in _PATTERN.finditer(pattern):
        tok = m.group()
        if tok.startswith("'"):
            parts.append(re.escape(tok[1:-1].replace("''", "'") if tok != "''" else "'"))
            continue
        if not m.group(1):
            parts.append(re.escape(tok))
            continue
        c, n = tok[0], len(tok)
        if c in "yu":
            parts.append(r"(\d{2})" if n == 2 else r"(\d{4,9})")
        elif c in "ML" and n >= 3:
            parts.append(r"([A-Za-z]+)")
        elif c in "XxZO":
            parts.append(r"(Z|GMT|[+-]\d{2}(?::?\d{2})?)")
        elif c in "Ee":
            parts.append(r"([A-Za-z]+)")
        elif c == "a":
            parts.append(r"(AM|PM|am|pm)")
        elif c == "S":
            parts.append(rf"(\d{{{n}}})")
        elif c in "MdHhmsDkK":
            parts.append(r"(\d{1,2})" if n == 1 else rf"(\d{{{n}}})" if c != "D" else r"(\d{1,3})")
        else:
            parts.append(r"(.+?)")
        fields.append((c, n))
    return re.compile("".join(parts), re.IGNORECASE), fields


def parse_java(text: str, pattern: str) -> datetime:
    """Parse ``text`` with a Java DateTimeFormatter pattern; ValueError if it does not fit."""
    regex, fields = _parse_regex(pattern)
    m = regex.fullmatch(text.strip())
    if not m:
        raise ValueError(f"{text!r} does not match the date format {pattern!r}")
    v: dict[str, Any] = {"year": 1970, "month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0, "micro": 0}
    tz: timedelta | None = None
    pm: bool | None = None
    for (c, n), raw in zip(fields, m.groups()):
        if c in "yu":
            v["year"] = 2000 + int(raw) if n == 2 else int(raw)
        elif c in "ML":
            if raw.isdigit():
                v["month"] = int(raw)
            else:
                names = [x.lower() for x in _MONTHS]
                short = [x[:3] for x in names]
                low = raw.lower()
                v["month"] = (names.index(low) if low in names else short.index(low)) + 1
        elif c == "d":
            v["day"] = int(raw)
        elif c in "Hk":
            v["hour"] = int(raw) % 24
        elif c in "hK":
            v["hour"] = int(raw) % 12
        elif c == "m":
            v["minute"] = int(raw)
        elif c == "s":
            v["second"] = int(raw)
        elif c == "S":
            v["micro"] = int((raw + "000000")[:6])
        elif c == "a":
            pm = raw.lower() == "pm"
        elif c in "XxZO":
            if raw in ("Z", "GMT"):
                tz = timedelta(0)
            else:
                sign = -1 if raw[0] == "-" else 1
                digits = raw[1:].replace(":", "")
                tz = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    if pm is not None and pm:
        v["hour"] += 12
    from datetime import timezone

    return datetime(
        v["year"],
        v["month"],
        v["day"],
        v["hour"],
        v["minute"],
        v["second"],
        v["micro"],
        tzinfo=timezone(tz) if tz is not None else None,
    )


def java_date_format_to_strftime(fmt: str) -> str:
    """Kept for callers that format with strftime: the common tokens of a Java pattern."""
    out = fmt.replace("'T'", "T")
    for java, py in [
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
    ]:
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
            dt = parse_java(text, fmt)
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
