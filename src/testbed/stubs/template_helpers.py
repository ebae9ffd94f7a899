"""The Handlebars helpers WireMock 3.13 registers, each answering as WireMock does.

Handlebars' own (if, unless, each, with, lookup, log), Handlebars.java's StringHelpers, ConditionalHelpers,
NumberHelper and assign, and WireMock's (jsonPath, xPath, soapXPath, dates, random values, math, arrays,
JSON and XML helpers, formData, regexExtract...). A helper that WireMock answers with an ``[ERROR: ...]``
text answers with the same text here; one that makes WireMock fail the response (a 500) raises.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from testbed.stubs import bounded_json
from testbed.stubs.ids import new_id
from testbed.stubs.java_text import double_text
from testbed.stubs.templating import (
    MAX_ITEMS,
    JsonArray,
    JsonObject,
    ListOrSingle,
    Options,
    TemplateError,
    UrlPath,
    check_size,
    is_empty,
    ordered_items,
    to_text,
)

Helper = Callable[[Any, Options], Any]
HELPERS: dict[str, Helper] = {}


def helper(*names: str) -> Callable[[Helper], Helper]:
    def register(fn: Helper) -> Helper:
        for name in names:
            HELPERS[name] = fn
        return fn

    return register


def error(message: str) -> str:
    """What WireMock prints in place of a helper that cannot do its job."""
    return f"[ERROR: {message}]"


def _context_text(context: Any, options: Options) -> str:
    """The helper's input: its block's rendered body, or its first argument as text."""
    return options.fn() if options.is_block else to_text(context)


# --- Handlebars' built-in helpers --------------------------------------------------------------------


@helper("if")
def _if(context: Any, options: Options) -> Any:
    truthy = not is_empty(context) or (options.hash.get("includeZero") is True and context == 0)
    return options.fn() if truthy else options.inverse()


@helper("unless")
def _unless(context: Any, options: Options) -> Any:
    return options.inverse() if not is_empty(context) else options.fn()


@helper("with")
def _with(context: Any, options: Options) -> Any:
    if is_empty(context):
        return options.inverse(context)
    return options.fn(context, values=(context,))


@helper("each")
def _each(context: Any, options: Options) -> Any:
    out: list[str] = []
    if isinstance(context, UrlPath):
        context = context.segments  # WireMock's path is a list of segments that prints as the path
    if isinstance(context, list | tuple):
        base = int(options.hash.get("base", 0))
        options.iterate(len(context), "{{#each}}")
        for i, item in enumerate(context):
            index = base + i
            data = {
                "key": index,
                "index": index,
                "first": "first" if i == 0 else "",
                "last": "last" if i == len(context) - 1 else "",
                "odd": "odd" if index % 2 else "",
                "even": "" if index % 2 else "even",
                "index_1": index + 1,
            }
            out.append(options.fn(item, data, (item, index)))
        return "".join(out) if context else options.inverse()
    if isinstance(context, dict):
        items = ordered_items(context)
        options.iterate(len(items), "{{#each}}")
        for i, (key, value) in enumerate(items):
            data = {
                "key": key,
                "index": i,
                "first": "first" if i == 0 else "",
                "last": "last" if i == len(items) - 1 else "",
            }
            out.append(options.fn(value, data, (value, key)))
        return "".join(out) if items else options.inverse()
    # Handlebars.java walks the bean properties of any other object (a String has a dozen): testbed
    # treats a value that is not a list or a map as nothing to iterate over.
    return options.inverse()


@helper("lookup")
def _lookup(context: Any, options: Options) -> Any:
    if context is None:
        return None
    if not options.params:
        return context
    from testbed.stubs.templating import walk

    key = to_text(options.params[0])
    found = walk(context, [p for p in re.split(r"\.", key) if p]) if key else None
    return context if found is None else found


@helper("log")
def _log(context: Any, options: Options) -> Any:
    return ""


@helper("assign")
def _assign(context: Any, options: Options) -> Any:
    name = to_text(context)
    options.set_data(name, options.fn())
    return ""


# --- ConditionalHelpers and NumberHelper ---------------------------------------------------------------


def _answer(result: bool, options: Options) -> Any:
    if options.is_block:
        return options.fn() if result else options.inverse()
    return options.hash.get("yes", True) if result else options.hash.get("no", False)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _java_equals(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)
    if type(a) is not type(b):
        # a String is never equal to a request-model value (an enum, a path, a ListOrSingle...) in Java
        return False
    return bool(a == b)


def _compare(a: Any, b: Any) -> int:
    if isinstance(a, str) and isinstance(b, str) and type(a) is type(b):
        return (a > b) - (a < b)
    if _is_number(a) and _is_number(b):
        return (float(a) > float(b)) - (float(a) < float(b))
    if isinstance(a, bool) and isinstance(b, bool):
        return (a > b) - (a < b)
    raise TemplateError(f"response template: cannot compare {to_text(a)!r} with {to_text(b)!r}")


HELPERS["eq"] = lambda a, o: _answer(_java_equals(a, o.param(0)), o)
HELPERS["neq"] = lambda a, o: _answer(not _java_equals(a, o.param(0)), o)
HELPERS["gt"] = lambda a, o: _answer(_compare(a, o.param(0)) > 0, o)
HELPERS["gte"] = lambda a, o: _answer(_compare(a, o.param(0)) >= 0, o)
HELPERS["lt"] = lambda a, o: _answer(_compare(a, o.param(0)) < 0, o)
HELPERS["lte"] = lambda a, o: _answer(_compare(a, o.param(0)) <= 0, o)


@helper("and")
def _and(context: Any, options: Options) -> Any:
    values = [context, *options.params] if options.has_context else [context]
    return _answer(all(not is_empty(v) for v in values), options)


@helper("or")
def _or(context: Any, options: Options) -> Any:
    values = [context, *options.params] if options.has_context else [context]
    return _answer(any(not is_empty(v) for v in values), options)


@helper("not")
def _not(context: Any, options: Options) -> Any:
    return _answer(is_empty(context), options)


def _parity(name: str, odd: bool) -> Helper:
    def fn(context: Any, options: Options) -> Any:
        if not _is_number(context):  # Handlebars.java's NumberHelper: nothing for a non-number
            return None
        value = int(context)
        if (value % 2 == 1) == odd:
            return options.fn() if options.is_block else options.param(0, name)
        return options.inverse() if options.is_block else None

    return fn


HELPERS["isOdd"] = _parity("odd", True)
HELPERS["isEven"] = _parity("even", False)


@helper("stripes")
def _stripes(context: Any, options: Options) -> Any:
    if not _is_number(context):
        return None
    return options.param(0, "even") if int(_number(context)) % 2 == 0 else options.param(1, "odd")


# --- StringHelpers ------------------------------------------------------------------------------------


def string_helper(name: str) -> Callable[[Callable[[str, Options], Any]], Helper]:
    """Handlebars.java's StringHelpers: an empty context gives the first parameter (or nothing)."""

    def register(fn: Callable[[str, Options], Any]) -> Helper:
        def helper_fn(context: Any, options: Options) -> Any:
            if is_empty(context):
                p = options.param(0)
                return None if p is None else to_text(p)
            return fn(to_text(context), options)

        HELPERS[name] = helper_fn
        return helper_fn

    return register


@string_helper("capitalizeFirst")
def _capitalize_first(value: str, options: Options) -> Any:
    return value[:1].upper() + value[1:]


def _pad(value: str, size: Any, pad: Any, where: str) -> str:
    width = check_size(f"{where} size", int(_number(size)))
    pad_text = to_text(pad) if pad is not None else " "
    missing = width - len(value)
    if missing <= 0 or not pad_text:
        return value
    if where == "center":
        left = missing // 2
        return (pad_text * width)[:left] + value + (pad_text * width)[: missing - left]
    fill = (pad_text * (missing // len(pad_text) + 1))[:missing]
    return value + fill if where == "ljust" else fill + value


def _size_hash(options: Options, name: str) -> Any:
    size = options.hash.get("size")
    if size is None:
        raise TemplateError(f"response template: {name} needs size=N")
    return size


HELPERS["center"] = string_helper("center")(lambda v, o: _pad(v, _size_hash(o, "center"), o.hash.get("pad"), "center"))
HELPERS["ljust"] = string_helper("ljust")(lambda v, o: _pad(v, _size_hash(o, "ljust"), o.hash.get("pad"), "ljust"))
HELPERS["rjust"] = string_helper("rjust")(lambda v, o: _pad(v, _size_hash(o, "rjust"), o.hash.get("pad"), "rjust"))


@helper("cut")
def _cut(context: Any, options: Options) -> Any:
    if is_empty(context):
        return ""
    return to_text(context).replace(to_text(options.param(0, " ")), "")


@helper("defaultIfEmpty")
def _default_if_empty(context: Any, options: Options) -> Any:
    if is_empty(context):
        return options.param(0, "")
    return to_text(context)


@helper("join")
def _join(context: Any, options: Options) -> Any:
    if is_empty(context):
        return ""
    if not options.params or not isinstance(options.params[-1], str):
        raise TemplateError("response template: join needs a separator string as its last parameter")
    sep = options.params[-1]
    prefix, suffix = to_text(options.hash.get("prefix", "")), to_text(options.hash.get("suffix", ""))
    items = list(context) if isinstance(context, list | tuple) else [context, *options.params[:-1]]
    return prefix + sep.join(to_text(i) for i in items) + suffix


@string_helper("substring")
def _substring(value: str, options: Options) -> Any:
    if not options.params:
        raise TemplateError("response template: substring needs a start offset")
    start = int(_number(options.params[0]))
    end = int(_number(options.param(1, len(value))))
    if not 0 <= start <= end <= len(value):
        raise TemplateError(f"response template: substring {start} {end} is out of range for {value!r}")
    return value[start:end]


HELPERS["lower"] = string_helper("lower")(lambda v, o: v.lower())
HELPERS["upper"] = string_helper("upper")(lambda v, o: v.upper())


@string_helper("slugify")
def _slugify(value: str, options: Options) -> Any:
    out = []
    for ch in value.strip():
        if ch.isalpha():
            out.append(ch.lower())
        if ch.isspace():
            out.append("-")
    return "".join(out)


@string_helper("stringFormat")
def _string_format(value: str, options: Options) -> Any:
    return java_format(value, options.params)


HELPERS["stripTags"] = string_helper("stripTags")(lambda v, o: re.sub(r"<[^>]*>", "", v, flags=re.DOTALL))


def _capitalize_words(value: str, fully: bool) -> str:
    out, start = [], True
    for ch in value.lower() if fully else value:
        if ch.isspace():
            start = True
            out.append(ch)
        elif start:
            out.append(ch.upper())
            start = False
        else:
            out.append(ch)
    return "".join(out)


HELPERS["capitalize"] = string_helper("capitalize")(lambda v, o: _capitalize_words(v, o.hash.get("fully") is True))


@string_helper("abbreviate")
def _abbreviate(value: str, options: Options) -> Any:
    width = options.param(0)
    if width is None:
        raise TemplateError("response template: abbreviate needs a width")
    w = int(_number(width))
    if len(value) <= w:
        return value
    if w < 4:
        raise TemplateError("response template: abbreviate: minimum width is 4")
    return value[: w - 3] + "..."


@string_helper("wordWrap")
def _word_wrap(value: str, options: Options) -> Any:
    length = options.param(0)
    if length is None:
        raise TemplateError("response template: wordWrap needs a length")
    width = max(1, int(_number(length)))
    lines: list[str] = []
    for paragraph in value.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            if line and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return "\n".join(lines)


@string_helper("replace")
def _replace(value: str, options: Options) -> Any:
    return value.replace(to_text(options.param(0)), to_text(options.param(1)))


@helper("yesno")
def _yesno(context: Any, options: Options) -> Any:
    if context is None:
        return options.hash.get("maybe", "maybe")
    if not isinstance(context, bool):
        raise TemplateError(f"response template: yesno needs true or false, got {to_text(context)!r}")
    return options.hash.get("yes", "yes") if context else options.hash.get("no", "no")


_DATE_STYLES = {"full": "EEEE, MMMM d, y", "long": "MMMM d, y", "medium": "MMM d, y", "short": "M/d/yy"}
_TIME_STYLES = {"full": "h:mm:ss a zzzz", "long": "h:mm:ss a z", "medium": "h:mm:ss a", "short": "h:mm a"}


def _date_format_helper(context: Any, options: Options) -> Any:
    from testbed.stubs.dates import format_java

    if is_empty(context):
        p = options.param(0)
        return None if p is None else to_text(p)
    if not isinstance(context, RenderableDate):
        raise TemplateError(f"response template: dateFormat needs a date, got {to_text(context)!r}")
    pattern = to_text(options.param(0, options.hash.get("format", "medium")))
    tz = options.hash.get("tz")
    dt = context.instant.astimezone(_zone(to_text(tz))) if tz else context.instant.astimezone(_local_zone())
    if pattern in _DATE_STYLES:
        time_style = options.hash.get("time")
        fmt = _DATE_STYLES[pattern]
        if time_style in _TIME_STYLES:
            fmt += ", " + _TIME_STYLES[time_style]
        return format_java(dt, fmt)
    return format_java(dt, pattern)


HELPERS["dateFormat"] = _date_format_helper


@helper("numberFormat")
def _number_format(context: Any, options: Options) -> Any:
    if not _is_number(context):
        p = options.param(0)
        return None if p is None else to_text(p)
    style = to_text(options.param(0, options.hash.get("format")) or "").strip()
    upper = style.upper() or "DEFAULT"
    patterns = {"DEFAULT": "#,##0.###", "INTEGER": "#,##0", "CURRENCY": "¤#,##0.00", "PERCENT": "#,##0%"}
    fmt = DecimalFormat(patterns.get(upper, style))
    for key, attr in (
        ("maximumFractionDigits", "max_frac"),
        ("minimumFractionDigits", "min_frac"),
        ("minimumIntegerDigits", "min_int"),
    ):
        if options.hash.get(key) is not None:
            setattr(fmt, attr, int(options.hash[key]))
    if options.hash.get("groupingUsed") is False:
        fmt.grouping = 0
    mode = options.hash.get("roundingMode")
    if mode is not None:
        fmt.rounding = {"HALF_UP": ROUND_HALF_UP, "HALF_EVEN": ROUND_HALF_EVEN}.get(
            to_text(mode).upper(), ROUND_HALF_EVEN
        )
    return fmt.format(context)


class DecimalFormat:
    """java.text.DecimalFormat for the usual patterns (grouping, fraction digits, %, currency)."""

    def __init__(self, pattern: str) -> None:
        body = pattern.split(";")[0]
        self.percent = "%" in body
        self.currency = "¤" in body
        self.prefix = re.match(r"^[^#0,.]*", body).group().replace("¤", "$") if body else ""  # type: ignore[union-attr]
        self.suffix = re.search(r"[^#0,.]*$", body).group() if body else ""  # type: ignore[union-attr]
        core = body[len(re.match(r"^[^#0,.]*", body).group()) :]  # type: ignore[union-attr]
        core = core[: len(core) - len(self.suffix)] if self.suffix else core
        integer, _, fraction = core.partition(".")
        self.grouping = len(integer) - integer.rfind(",") - 1 if "," in integer else 0
        self.min_int = integer.replace(",", "").count("0")
        self.min_frac = fraction.count("0")
        self.max_frac = len(fraction)
        self.rounding = ROUND_HALF_EVEN

    def format(self, number: Any) -> str:
        value = Decimal(double_text(number)) if isinstance(number, float) else Decimal(number)
        if self.percent:
            value *= 100
        quantum = Decimal(1).scaleb(-self.max_frac)
        value = value.quantize(quantum, rounding=self.rounding)
        negative = value < 0
        text = f"{abs(value):f}"
        integer, _, fraction = text.partition(".")
        fraction = fraction.rstrip("0")
        if len(fraction) < self.min_frac:
            fraction += "0" * (self.min_frac - len(fraction))
        integer = integer.lstrip("0")
        if len(integer) < self.min_int:
            integer = "0" * (self.min_int - len(integer)) + integer
        if self.grouping and integer:
            groups: list[str] = []
            while len(integer) > self.grouping:
                groups.insert(0, integer[-self.grouping :])
                integer = integer[: -self.grouping]
            groups.insert(0, integer)
            integer = ",".join(groups)
        out = integer + ("." + fraction if fraction else "")
        return ("-" if negative else "") + self.prefix + out + self.suffix


def java_format(fmt: str, args: list[Any]) -> str:
    """Java's String.format for the usual conversions: %s %d %f %x %b %c %n %% with flags and width."""
    spec = re.compile(r"%(\d+\$)?([-#+ 0,(]*)(\d+)?(\.\d+)?([sSdfxXbBcneE%])")
    out: list[str] = []
    pos = 0
    index = 0
    for m in spec.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        argno, flags, width, precision, conv = m.groups()
        if conv == "%":
            out.append("%")
            continue
        if conv == "n":
            out.append("\n")
            continue
        if argno:
            value = args[int(argno[:-1]) - 1]
        else:
            if index >= len(args):
                raise TemplateError(f"response template: stringFormat: no argument for {m.group()!r}")
            value = args[index]
            index += 1
        pyflags = flags.replace(",", "")
        if conv in "sS":
            text = to_text(value)
            if precision:
                text = text[: int(precision[1:])]
            text = text.upper() if conv == "S" else text
            out.append(f"{text:{'<' if '-' in flags else '>'}{width or ''}}")
        elif conv == "d":
            if not isinstance(value, int) or isinstance(value, bool):
                raise TemplateError(f"response template: stringFormat %d needs an integer, got {to_text(value)!r}")
            out.append(("%" + pyflags + (width or "") + "d") % value if "," not in flags else f"{value:,}")
        elif conv in "fFeE":
            if not _is_number(value):
                raise TemplateError(f"response template: stringFormat %{conv} needs a number, got {to_text(value)!r}")
            p = precision or ".6"
            out.append(("%" + pyflags + (width or "") + p + conv) % value)
        elif conv in "xX":
            out.append(("%" + pyflags + (width or "") + conv) % int(value))
        elif conv in "bB":
            text = "false" if value is None or value is False else "true"
            out.append(text.upper() if conv == "B" else text)
        elif conv == "c":
            out.append(chr(value) if isinstance(value, int) else to_text(value)[:1])
    out.append(fmt[pos:])
    return "".join(out)


# --- WireMock: text, encodings, regular expressions ----------------------------------------------------


@helper("trim")
def _trim(context: Any, options: Options) -> Any:
    return _context_text(context, options).strip(" \t\r\n\x00\x0b\x0c")


@helper("base64")
def _base64(context: Any, options: Options) -> Any:
    value = _context_text(context, options)
    if options.hash.get("decode") is True:
        return base64.b64decode(value + "=" * (-len(value) % 4)).decode("utf-8", "replace")
    out = base64.b64encode(value.encode()).decode()
    padding = options.hash.get("padding")
    return out.rstrip("=") if padding is not None and padding is not True else out


@helper("urlEncode")
def _url_encode(context: Any, options: Options) -> Any:
    value = _context_text(context, options)
    if options.hash.get("decode") is True:
        return unquote_plus(value)
    return quote_plus(value, safe="*").replace("~", "%7E")


@helper("formData")
def _form_data(context: Any, options: Options) -> Any:
    url_decode = options.hash.get("urlDecode") is True
    form: dict[str, ListOrSingle] = {}
    for pair in to_text(context).split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        if url_decode:
            key, value = unquote_plus(key), unquote_plus(value)
        form.setdefault(key, ListOrSingle()).append(value)
    if options.params:
        options.set_data(to_text(options.params[0]), form)
        return None
    return form


@helper("regexExtract")
def _regex_extract(context: Any, options: Options) -> Any:
    pattern = to_text(options.param(0))
    try:
        regex = re.compile(_java_regex(pattern))
    except re.error:
        return error(f"Invalid regex string {pattern}")
    text = to_text(context)
    groups: list[str] = []
    for m in regex.finditer(text):
        if len(options.params) == 1:
            return m.group()
        groups += [g if g is not None else "null" for g in m.groups()]
    if not groups:
        default = options.hash.get("default")
        return default if default is not None else error(f"Nothing matched {pattern}")
    options.set_data(to_text(options.params[1]), ListOrSingle(groups))
    return None


def _java_regex(regex: str) -> str:
    return re.sub(r"\(\?<(?![=!])", "(?P<", regex)


@helper("matches")
def _matches(context: Any, options: Options) -> Any:
    if not options.params:
        return error("You must specify the string to be matched and the regular expression")
    ok = re.fullmatch(_java_regex(to_text(options.params[0])), to_text(context)) is not None
    if options.is_block:
        return options.fn() if ok else ""
    return ok


@helper("contains")
def _contains(context: Any, options: Options) -> Any:
    if not options.params:
        return error("You must specify the string or array to be matched and the regular expression")
    expected = options.params[0]
    if context is None or expected is None:
        return False
    if isinstance(context, UrlPath):
        context = context.segments
    if isinstance(context, list | tuple) and not isinstance(context, str):
        ok = any(_java_equals(item, expected) for item in context)
    else:
        ok = to_text(expected) in to_text(context)
    if options.is_block:
        return options.fn() if ok else ""
    return ok


@helper("size")
def _size(context: Any, options: Options) -> Any:
    if isinstance(context, UrlPath):
        return len(context.segments)
    if isinstance(context, str | list | tuple | dict):
        return len(context)
    return None


@helper("val")
def _val(context: Any, options: Options) -> Any:
    default = options.hash.get("or", options.hash.get("default"))
    value = context if options.has_context and context is not None else default
    if options.hash.get("assign") is not None:
        options.set_data(to_text(options.hash["assign"]), value)
        return None
    return value


@helper("hostname")
def _hostname(context: Any, options: Options) -> Any:
    import socket

    return socket.gethostname()


@helper("systemValue")
def _system_value(context: Any, options: Options) -> Any:
    import os

    key = to_text(options.hash.get("key"))
    kind = to_text(options.hash.get("type", "ENVIRONMENT")).upper()
    if not key.lower().startswith("wiremock"):  # WireMock permits only wiremock.* keys by default
        return error(f"Access to {key} is denied")
    value = os.environ.get(key) if kind == "ENVIRONMENT" else None
    return value if value is not None else options.hash.get("default")


# --- WireMock: numbers, random values, arrays -----------------------------------------------------------


def _number(value: Any) -> float | int:
    if _is_number(value):
        return value  # type: ignore[no-any-return]
    text = to_text(value).strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        return Decimal(0)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(double_text(value))
    text = to_text(value).strip()
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        return Decimal(0)
    try:
        return Decimal(text)
    except InvalidOperation:
        return Decimal(0)


@helper("math")
def _math(context: Any, options: Options) -> Any:
    if len(options.params) != 2:
        return error("All maths functions require two operands and an operator as parameters e.g. 3 '+' 2")
    left, op, right = _decimal(context), to_text(options.params[0]), _decimal(options.params[1])
    if op == "+":
        result = left + right
    elif op == "-":
        result = left - right
    elif op in ("*", "x"):
        result = left * right
    elif op == "/":
        if right == 0:
            raise TemplateError("response template: math: division by zero")
        exponent = left.as_tuple().exponent
        result = (left / right).quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_UP)  # type: ignore[arg-type]
    elif op == "%":
        if right == 0:
            raise TemplateError("response template: math: division by zero")
        result = left % right
    else:
        return error(f"{op} is not a valid mathematical operator")
    exponent = result.as_tuple().exponent
    if exponent == 0:
        return int(result)
    if isinstance(exponent, int) and exponent > 0:  # BigDecimal scale < 0: still "not scale 0"
        return float(result)
    return float(result)


@helper("randomInt")
def _random_int(context: Any, options: Options) -> Any:
    lower = int(_number(options.hash.get("lower", -(2**31))))
    upper = int(_number(options.hash.get("upper", 2**31 - 1)))
    if upper <= lower:
        raise TemplateError("response template: randomInt: upper must be greater than lower")
    return random.randrange(lower, upper)


@helper("randomDecimal")
def _random_decimal(context: Any, options: Options) -> Any:
    lower = float(_number(options.hash.get("lower", 5e-324)))
    upper = float(_number(options.hash.get("upper", 1.7976931348623157e308)))
    if upper <= lower:
        raise TemplateError("response template: randomDecimal: upper must be greater than lower")
    return random.uniform(lower, upper)


_RANDOM = {
    "ALPHANUMERIC": string.ascii_letters + string.digits,
    "ALPHABETIC": string.ascii_letters,
    "NUMERIC": string.digits,
    "ALPHANUMERIC_AND_SYMBOLS": "".join(chr(c) for c in range(33, 127)),
    "HEXADECIMAL": "ABCDEF0123456789",
}


@helper("randomValue")
def _random_value(context: Any, options: Options) -> Any:
    kind = to_text(options.hash.get("type", "ALPHANUMERIC"))
    if kind == "UUID":
        value = new_id()
    else:
        length = check_size("randomValue length", int(_number(options.hash.get("length", 36))))
        alphabet = _RANDOM.get(kind, "".join(chr(c) for c in range(32, 127)))
        value = "".join(random.choices(alphabet, k=length))
    return value.upper() if options.hash.get("uppercase") is True else value.lower()


@helper("pickRandom")
def _pick_random(context: Any, options: Options) -> Any:
    if context is None or not options.has_context:
        return error("Must specify either a single list argument or a set of single value arguments.")
    values = list(context) if isinstance(context, list | tuple) else [context, *options.params]
    count = options.hash.get("count")
    if isinstance(count, int) and count > 0:
        return random.sample(values, min(count, len(values)))
    return random.choice(values) if values else None


@helper("range")
def _range(context: Any, options: Options) -> Any:
    try:
        lower = int(_number(context)) if options.has_context else None
        upper = int(_number(options.params[0])) if options.params else None
    except ValueError:
        lower = upper = None
    if lower is None or upper is None:
        return error("The range helper requires both lower and upper bounds as integer parameters")
    check_size(f"range {lower} {upper}", upper - lower + 1, MAX_ITEMS, "elements")
    return list(range(lower, upper + 1))


@helper("array")
def _array(context: Any, options: Options) -> Any:
    if not options.has_context or context is None:
        return []
    check_size("array", 1 + len(options.params), MAX_ITEMS, "elements")
    return [context, *options.params]


def _position(options: Options) -> int | None | str:
    spec = options.hash.get("position", "end")
    text = to_text(spec)
    if text.lower() == "start":
        return 0
    if text.lower() == "end":
        return None
    try:
        return int(text)
    except ValueError:
        return "bad"


@helper("arrayAdd")
def _array_add(context: Any, options: Options) -> Any:
    if context is None:
        return []
    items = _as_list(context, "arrayAdd")
    if not options.params:
        return error("Missing required parameter: additional value to add to list")
    position = _position(options)
    if position == "bad":
        return error("position must be 'start', 'end' or an integer")
    if position is None:
        items.append(options.params[0])
    else:
        assert isinstance(position, int)
        if not 0 <= position <= len(items):
            return error("position must be greater than or equal to 0 and less than or equal to the size of the list")
        items.insert(position, options.params[0])
    return items


@helper("arrayRemove")
def _array_remove(context: Any, options: Options) -> Any:
    items = _as_list(context, "arrayRemove")
    position = _position(options)
    if position == "bad":
        return error("position must be 'start', 'end' or an integer")
    if position is not None:
        assert isinstance(position, int)
        if not 0 <= position <= len(items):
            return error("position must be greater than or equal to 0 and less than or equal to the size of the list")
    index = len(items) - 1 if position is None else position
    if not 0 <= index < len(items):
        raise TemplateError(f"response template: arrayRemove: no element at {index}")
    del items[index]
    return items


def _as_list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise TemplateError(f"response template: {name} needs a list, got {to_text(value)!r}")
    return list(value)


@helper("arrayJoin")
def _array_join(context: Any, options: Options) -> Any:
    if not isinstance(context, str):
        return error("Separator parameter must be a String")
    first = options.param(0)
    if first is None:
        return error("The parameter must be list")
    items = list(first) if isinstance(first, list | tuple) else list(options.params)
    if not items:
        return ""
    prefix, suffix = to_text(options.hash.get("prefix", "")), to_text(options.hash.get("suffix", ""))
    if options.is_block:
        options.iterate(len(items), "{{#arrayJoin}}")
        rendered = [options.fn(item, values=(item,)) for item in items]
    else:
        rendered = [to_text(i) for i in items]
    return prefix + context.join(rendered) + suffix


# --- WireMock: JSON ----------------------------------------------------------------------------------


def jackson_pretty(value: Any, indent: int = 0) -> str:
    """JSON as Jackson's default pretty printer writes it (WireMock's formatJson / toJson)."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{ }"
        items = [
            f"{pad}{json.dumps(k, ensure_ascii=False)} : {jackson_pretty(v, indent + 1)}" for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[ ]"
        return "[ " + ", ".join(jackson_pretty(v, indent) for v in value) + " ]"
    return _json_scalar(value)


def _json_scalar(value: Any) -> str:
    if isinstance(value, float):
        return double_text(value) if value.is_integer() or "E" in double_text(value) else json.dumps(value)
    if isinstance(value, RenderableDate):
        return json.dumps(str(value))
    return json.dumps(value, ensure_ascii=False)


def _plain(value: Any) -> Any:
    """A template value as plain JSON data (for serialisation)."""
    if isinstance(value, RenderableDate):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str.__str__(value)
    return value


def _compact(value: Any) -> str:
    return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False)


def _read_json(text: str) -> Any:
    return bounded_json.loads(text)


@helper("jsonPath")
def _json_path(context: Any, options: Options) -> Any:
    from testbed.stubs.errors import InvalidStubError
    from testbed.stubs.jsonpath import JsonPathError, compile_jsonpath

    if context is None or (isinstance(context, str) and context == ""):
        return ""
    expression = options.param(0)
    if expression is None:
        return error("The JSONPath cannot be empty")
    if isinstance(context, dict | list):
        doc = _plain(context)
    else:
        try:
            doc = _read_json(to_text(context))
        except ValueError:
            return ""  # WireMock 3.13 renders nothing for a body that is not JSON
    try:
        path = compile_jsonpath(to_text(expression))
    except InvalidStubError:
        return error(f"{to_text(expression)} is not a valid JSONPath expression")
    default = options.hash.get("default")
    try:
        value = path.read(doc, leaf_to_null=True)
    except JsonPathError:
        value = default
    if value is None:
        value = default if default is not None else ""
    if isinstance(value, dict):
        return JsonObject(value)
    if isinstance(value, list):
        return JsonArray(value)
    return value


@helper("parseJson")
def _parse_json(context: Any, options: Options) -> Any:
    if context is None:
        return {}
    if options.is_block:
        text = options.fn()
        name = to_text(context) if options.has_context else None
    else:
        if not options.has_context:
            return error("Missing required JSON string parameter")
        text = to_text(context)
        name = to_text(options.params[0]) if options.params else None
    stripped = text.strip()
    if re.sub(r"\s", "", stripped) in ("{}", ""):
        result: Any = {}
    else:
        try:
            result = _read_json(stripped)
        except ValueError as exc:
            raise TemplateError(f"response template: parseJson: not valid JSON: {exc}") from exc
        if isinstance(result, list) != (stripped.startswith("[") and stripped.endswith("]")):
            raise TemplateError("response template: parseJson: the JSON must be an object or an array")
    if name is not None:
        options.set_data(name, result)
        return None
    return result


@helper("toJson")
def _to_json(context: Any, options: Options) -> Any:
    if context is None:
        return ""
    return jackson_pretty(_plain(context))


def _format_input(context: Any, options: Options, name: str, what: str) -> str | None:
    if options.is_block:
        text = options.fn().strip()
    elif isinstance(context, str):
        text = context.strip()
    else:
        text = ""
    return text or None


@helper("formatJson")
def _format_json(context: Any, options: Options) -> Any:
    text = _format_input(context, options, "formatJson", "JSON")
    if text is None:
        return error("formatJson should take a block of JSON to format or a single parameter of type String")
    fmt = to_text(options.hash.get("format", "pretty"))
    if fmt not in ("pretty", "compact"):
        return error(f"formatJson: format [{fmt}] should be one of [pretty, compact]")
    try:
        value = _read_json(text)
    except ValueError:
        return error("There was an error parsing the json. Please make sure the json is valid")
    return jackson_pretty(value) if fmt == "pretty" else _compact(value)


@helper("formatXml")
def _format_xml(context: Any, options: Options) -> Any:
    text = _format_input(context, options, "formatXml", "XML")
    if text is None:
        return error("formatXml should take a block of XML to format or a single parameter of type String")
    fmt = to_text(options.hash.get("format", "pretty"))
    if fmt not in ("pretty", "compact"):
        return error(f"formatXml: format [{fmt}] should be one of [pretty, compact]")
    from lxml import etree

    from testbed.stubs.xml_operators import _xml_parse

    try:
        doc = _xml_parse(text)
    except Exception:
        return error("Input is not valid XML")
    if fmt == "pretty":
        return str(etree.tostring(doc, encoding="unicode", pretty_print=True))
    return str(etree.tostring(doc, encoding="unicode"))


def _json_string_arg(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@helper("jsonMerge")
def _json_merge(context: Any, options: Options) -> Any:
    base_text = _json_string_arg(context)
    if base_text is None:
        return error("Base JSON parameter must be a string")
    try:
        base = _read_json(base_text)
    except ValueError:
        return error(f"Base JSON is not valid JSON ('{base_text}')")
    if not isinstance(base, dict):
        return error(f"Base JSON is not a JSON object ('{base_text}')")
    other_text = options.fn() if options.is_block else options.param(0)
    if not isinstance(other_text, str):
        return error("JSON to merge must be a string")
    try:
        other = _read_json(other_text)
    except ValueError:
        return error(f"JSON to merge is not valid JSON ('{other_text}')")
    if not isinstance(other, dict):
        return error(f"JSON to merge is not a JSON object ('{other_text}')")
    remove_nulls = options.hash.get("removeNulls") is True

    def merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            elif value is None and remove_nulls:
                into.pop(key, None)
            else:
                into[key] = value

    merge(base, other)
    return _compact(base)


@helper("jsonRemove")
def _json_remove(context: Any, options: Options) -> Any:
    from testbed.stubs.errors import InvalidStubError
    from testbed.stubs.jsonpath import JsonPathError, compile_jsonpath

    text = _json_string_arg(context)
    if text is None:
        return error("Input JSON must be a string")
    if text == "null":
        return text
    if len(options.params) != 1:
        return error("A single JSONPath expression parameter must be supplied")
    expression = options.params[0]
    if not isinstance(expression, str):
        return error("JSONPath parameter must be a string")
    try:
        doc = _read_json(text)
    except ValueError:
        return error(f"Input JSON string is not valid JSON ('{text}')")
    try:
        path = compile_jsonpath(expression)
        refs = path.locate(doc, leaf_to_null=True)
    except InvalidStubError:
        return error(f"JSONPath parameter is not a valid JSONPath expression ('{expression}')")
    except JsonPathError:
        return text
    if any(ref is None for ref in refs):
        return error(f"Delete operation cannot be applied to JSONPath expression ('{expression}')")
    removals: dict[int, tuple[Any, list[Any]]] = {}
    for container, key in refs:
        removals.setdefault(id(container), (container, []))[1].append(key)
    for container, keys in removals.values():
        if isinstance(container, list):
            for index in sorted({k for k in keys if isinstance(k, int)}, reverse=True):
                if 0 <= index < len(container):
                    del container[index]
        else:
            for key in keys:
                for k in key if isinstance(key, tuple) else (key,):
                    container.pop(k, None)
    return _compact(doc)


@helper("jsonArrayAdd")
def _json_array_add(context: Any, options: Options) -> Any:
    from testbed.stubs.errors import InvalidStubError
    from testbed.stubs.jsonpath import JsonPathError, compile_jsonpath

    text = _json_string_arg(context)
    if text is None:
        return error("Base JSON must be a string")
    try:
        root = _read_json(text)
    except ValueError:
        return error(f"Base JSON is not valid JSON ('{text}')")
    expression = options.hash.get("jsonPath")
    if expression is not None and not isinstance(expression, str):
        return error("jsonPath option must be a string")
    if expression is None:
        target = root
    else:
        try:
            target = compile_jsonpath(expression).read(root, leaf_to_null=True)
        except InvalidStubError:
            return error(f"jsonPath option is not valid JSONPath expression ('{expression}')")
        except JsonPathError:
            target = None
    if not isinstance(target, list):
        detail = f"'{text}'" if expression is None else f"root: '{text}', jsonPath: '{expression}'"
        return error(f"Target JSON is not a JSON array ({detail})")
    item_text = options.fn() if options.is_block else options.param(0)
    if not isinstance(item_text, str):
        return error("Item-to-add JSON must be a string")
    try:
        item = _read_json(item_text)
    except ValueError:
        return error(f"Item-to-add JSON is not valid JSON ('{item_text}')")
    flatten = options.hash.get("flatten")
    if flatten is not None and not isinstance(flatten, bool):
        return error("flatten option must be a boolean")
    if flatten and isinstance(item, list):
        target.extend(item)
    else:
        target.append(item)
    max_items = options.hash.get("maxItems")
    if max_items is not None:
        if not isinstance(max_items, int) or isinstance(max_items, bool):
            return error("maxItems option must be an integer")
        if max_items < 0:
            return error("maxItems option integer must be positive")
        if len(target) > max_items:
            del target[: len(target) - max_items]
    return _compact(root)


# --- WireMock: XML -----------------------------------------------------------------------------------


class XmlNode:
    """An XPath result as WireMock's XmlNode: prints as its text (or pretty XML for an element)."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def template_property(self, key: str) -> Any:
        from lxml import etree

        node = self.node
        if key == "text":
            if isinstance(node, etree._Element):
                return "".join(node.itertext())
            return str(node)
        if key == "name":
            return node.tag if isinstance(node, etree._Element) else getattr(node, "attrname", None)
        if key == "attributes":
            return dict(node.attrib) if isinstance(node, etree._Element) else {}
        return None

    def __str__(self) -> str:
        from lxml import etree

        node = self.node
        if isinstance(node, etree._Element):  # WireMock prints an element as indented XML
            text = str(etree.tostring(node, encoding="unicode", pretty_print=True, with_tail=False))
            parent = node.getparent()
            inherited = parent.nsmap if parent is not None else {}
            for prefix, uri in inherited.items():  # as written in the source: no inherited xmlns copies
                attr = f' xmlns:{prefix}="{uri}"' if prefix else f' xmlns="{uri}"'
                head, sep, rest = text.partition(">")
                text = head.replace(attr, "", 1) + sep + rest
            return text
        if isinstance(node, float):
            return str(int(node)) if node.is_integer() else double_text(node)
        if isinstance(node, bool):
            return "true" if node else "false"
        return str(node)


def _strip_namespaces(doc: Any) -> Any:
    """A copy of ``doc`` whose elements have bare local names, paired with the originals."""
    import copy

    from lxml import etree

    clone = copy.deepcopy(doc)
    for el in clone.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    etree.cleanup_namespaces(clone)
    return clone


def _xpath_helper(prefix: str) -> Helper:
    def fn(context: Any, options: Options) -> Any:
        from lxml import etree

        from testbed.stubs.xml_operators import _xml_parse

        if context is None:
            return ""
        expression = options.param(0)
        if expression is None:
            return error("The XPath expression cannot be empty")
        text = to_text(context)
        try:
            doc = _xml_parse(text)
        except Exception:
            return error(f"{text} is not valid XML")
        plain = _strip_namespaces(doc)
        try:
            result = etree.XPath(prefix + to_text(expression))(plain)
        except etree.XPathError:
            return error(f"{to_text(expression)} is not a valid XPath expression")
        originals = dict(zip(plain.iter(), doc.iter()))
        if isinstance(result, list):
            nodes = [XmlNode(originals.get(r, r)) for r in result]
            return ListOrSingle(nodes) if nodes else ""
        return ListOrSingle([XmlNode(result)])

    return fn


HELPERS["xPath"] = _xpath_helper("")
HELPERS["soapXPath"] = _xpath_helper("/Envelope/Body/")


# --- WireMock: dates ---------------------------------------------------------------------------------


def _local_zone() -> Any:
    return datetime.now().astimezone().tzinfo


def _zone(name: str) -> Any:
    import zoneinfo

    if name in ("UTC", "Z", "GMT"):
        return UTC
    m = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?", name)
    if m:
        from datetime import timezone

        sign = -1 if m.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0)))
    return zoneinfo.ZoneInfo(name)


class RenderableDate:
    """WireMock's RenderableDate: an instant, an optional output format and an optional zone."""

    def __init__(self, instant: datetime, fmt: str | None = None, zone: Any = None) -> None:
        self.instant = instant.astimezone(UTC)
        self.format = fmt
        self.zone = zone

    def __str__(self) -> str:
        from testbed.stubs.dates import format_java

        if self.format == "epoch":
            return str(int(self.instant.timestamp() * 1000))
        if self.format == "unix":
            return str(int(self.instant.timestamp()))
        if self.format is not None:
            return format_java(self.instant.astimezone(self.zone or _local_zone()), self.format)
        local = self.instant.astimezone(self.zone) if self.zone is not None else self.instant
        offset = local.utcoffset() or timedelta(0)
        text = local.strftime("%Y-%m-%dT%H:%M:%S")
        if offset == timedelta(0):
            return text + "Z"
        secs = int(offset.total_seconds())
        sign = "-" if secs < 0 else "+"
        return f"{text}{sign}{abs(secs) // 3600:02d}:{abs(secs) % 3600 // 60:02d}"


def _shift(dt: datetime, offset: str) -> datetime:
    from testbed.stubs.dates import _add_offset

    m = re.fullmatch(r"\s*([+-]?\d+)\s+([A-Za-z]+)\s*", offset)
    if not m:
        raise TemplateError(f"response template: date offset {offset!r}: use e.g. '3 days' or '-1 hours'")
    return _add_offset(dt, int(m.group(1)), m.group(2))


def _date_helper(now_only: bool) -> Helper:
    def fn(context: Any, options: Options) -> Any:
        fmt = options.hash.get("format")
        offset = options.hash.get("offset")
        tz = options.hash.get("timezone")
        if not now_only and isinstance(context, RenderableDate):
            instant, zone = context.instant, context.zone  # WireMock keeps a parsed date's own zone
        else:
            instant = datetime.now(UTC)
            zone = _zone(to_text(tz)) if tz is not None else None
        if offset is not None:
            instant = _shift(instant, to_text(offset))
        return RenderableDate(instant, to_text(fmt) if fmt is not None else None, zone)

    return fn


HELPERS["now"] = _date_helper(True)
HELPERS["date"] = _date_helper(False)


@helper("parseDate")
def _parse_date(context: Any, options: Options) -> Any:
    from testbed.stubs.dates import parse_java

    text = to_text(context)
    fmt = options.hash.get("format")
    if fmt is not None:
        f = to_text(fmt)
        try:
            if f.lower() == "epoch":
                return RenderableDate(datetime.fromtimestamp(int(text) / 1000, UTC))
            if f.lower() == "unix":
                return RenderableDate(datetime.fromtimestamp(int(text), UTC))
            dt = parse_java(text, f)
        except (ValueError, OverflowError, OSError):
            return None
        if dt.tzinfo is None:
            return RenderableDate(dt.replace(tzinfo=UTC))
        return RenderableDate(dt, None, dt.tzinfo)
    return _parse_zoned(text)


def _parse_zoned(text: str) -> RenderableDate | None:
    """WireMock's zoned parsers, in order: ISO with an offset, RFC 1123, RFC 1036, asctime."""
    t = text.strip()
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})(\[[^\]]+\])?", t)
    if m:
        base, off = m.group(1), m.group(2)
        frac = re.search(r"\.(\d+)", base)
        if frac and len(frac.group(1)) > 6:
            base = base.replace(frac.group(1), frac.group(1)[:6])
        try:
            dt = datetime.fromisoformat(base + ("+00:00" if off == "Z" else off))
        except ValueError:
            return None
        return RenderableDate(dt, None, dt.tzinfo)
    from email.utils import parsedate_to_datetime

    try:
        dt = parsedate_to_datetime(t)
    except (TypeError, ValueError, IndexError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return RenderableDate(dt, None, dt.tzinfo)


@helper("truncateDate")
def _truncate_date(context: Any, options: Options) -> Any:
    from testbed.stubs.dates import _truncate

    if not options.params:
        return error("Truncation type must be specified as the first parameter to truncateDate")
    if not isinstance(context, RenderableDate):
        return error("A date object must be passed to the truncateDate helper")
    return RenderableDate(_truncate(context.instant, to_text(options.params[0])))
