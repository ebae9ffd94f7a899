"""The XML operators: equalToXml (with XMLUnit placeholders) and matchesXPath (XPath 1.0 via lxml)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from testbed.stubs.errors import InvalidStubError
from testbed.stubs.operators import ValuePattern, bool_option, parse_value_pattern, str_option

JsonObj = dict[str, Any]


def _xml_parse(text: str) -> Any:
    from lxml import etree

    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    return etree.fromstring(text.strip().encode("utf-8"), parser)


def _xml_equal(exp: Any, act: Any, placeholders: bool, any_order: bool) -> bool:
    if exp.tag != act.tag:
        return False
    ignore = "${xmlunit.ignore}"
    exp_attrs, act_attrs = dict(exp.attrib), dict(act.attrib)
    if exp_attrs.keys() != act_attrs.keys():
        return False
    for k, v in exp_attrs.items():
        if not (placeholders and v == ignore) and v != act_attrs[k]:
            return False
    et, at = (exp.text or "").strip(), (act.text or "").strip()
    if not (placeholders and et == ignore) and et != at:
        return False
    ec, ac = [c for c in exp if isinstance(c.tag, str)], [c for c in act if isinstance(c.tag, str)]
    if len(ec) != len(ac):
        return False
    if not any_order:
        # XMLUnit pairs children by name: siblings of different names may come in any order, those of
        # one name must come in the same order (unless ignoreOrderOfSameNode).
        by_tag: dict[Any, list[Any]] = {}
        for a in ac:
            by_tag.setdefault(a.tag, []).append(a)
        seen: dict[Any, int] = {}
        for e in ec:
            i = seen.get(e.tag, 0)
            candidates = by_tag.get(e.tag, [])
            if i >= len(candidates) or not _xml_equal(e, candidates[i], placeholders, any_order):
                return False
            seen[e.tag] = i + 1
        return True
    used: set[int] = set()
    for e in ec:
        for j, a in enumerate(ac):
            if j not in used and _xml_equal(e, a, placeholders, any_order):
                used.add(j)
                break
        else:
            return False
    return True


@dataclass(frozen=True)
class EqualToXml(ValuePattern):
    value: str
    enable_placeholders: bool = False
    ignore_order_of_same_node: bool = False
    extra: tuple[tuple[str, Any], ...] = ()
    operator = "equalToXml"

    @cached_property
    def _expected(self) -> Any:
        try:
            return _xml_parse(self.value)
        except Exception as exc:
            raise InvalidStubError(f"equalToXml value is not well-formed XML: {exc}") from exc

    def matches(self, value: str | None) -> bool:
        if not value:
            return False
        try:
            actual = _xml_parse(value)
        except Exception:
            return False
        return _xml_equal(self._expected, actual, self.enable_placeholders, self.ignore_order_of_same_node)

    def to_json(self) -> JsonObj:
        out: JsonObj = {"equalToXml": self.value}
        if self.enable_placeholders:
            out["enablePlaceholders"] = True
        if self.ignore_order_of_same_node:
            out["ignoreOrderOfSameNode"] = True
        out.update(dict(self.extra))
        return out


@dataclass(frozen=True)
class MatchesXPath(ValuePattern):
    expression: str
    namespaces: tuple[tuple[str, str], ...] = ()
    sub: ValuePattern | None = None
    operator = "matchesXPath"

    @cached_property
    def _xpath(self) -> Any:
        from lxml import etree

        try:
            return etree.XPath(self.expression, namespaces=dict(self.namespaces) or None)
        except etree.XPathSyntaxError as exc:
            raise InvalidStubError(f"invalid XPath expression {self.expression!r}: {exc}") from exc

    def matches(self, value: str | None) -> bool:
        if not value:
            return False
        try:
            result = self._xpath(_xml_parse(value))
        except Exception:
            return False
        if isinstance(result, list):
            if self.sub is None:
                return bool(result)
            return any(self.sub.matches(_xpath_text(r)) for r in result)
        if self.sub is None:
            return bool(result)
        return self.sub.matches(_xpath_text(result))

    def to_json(self) -> JsonObj:
        inner: Any = self.expression
        if self.sub is not None:
            inner = {"expression": self.expression, **self.sub.to_json()}
        out: JsonObj = {"matchesXPath": inner}
        if self.namespaces:
            out["xPathNamespaces"] = dict(self.namespaces)
        return out


def _xpath_text(node: Any) -> str:
    from lxml import etree

    if isinstance(node, etree._Element):  # WireMock compares an element as its XML, text() as its text
        return str(etree.tostring(node, encoding="unicode", with_tail=False))
    if isinstance(node, float) and node.is_integer():
        return str(int(node))
    return str(node)


def parse_xml_operator(op: str, obj: Mapping[str, Any], pointer: str) -> ValuePattern:
    """equalToXml / matchesXPath from their WireMock JSON."""
    if op == "equalToXml":
        known = {"equalToXml", "enablePlaceholders", "ignoreOrderOfSameNode"}
        xml = EqualToXml(
            str_option(obj, op, pointer),
            bool_option(obj, "enablePlaceholders", pointer),
            bool_option(obj, "ignoreOrderOfSameNode", pointer),
            tuple((k, v) for k, v in obj.items() if k not in known),
        )
        try:
            xml._expected  # noqa: B018  # parse now so a bad mapping fails when added, not when matched
        except InvalidStubError as exc:
            raise InvalidStubError(exc.detail, f"{pointer}/{op}") from exc
        return xml
    if op == "matchesXPath":
        spec = obj[op]
        ns = obj.get("xPathNamespaces") or {}
        namespaces = tuple(sorted((str(k), str(v)) for k, v in ns.items()))
        if isinstance(spec, str):
            xp = MatchesXPath(spec, namespaces)
        elif isinstance(spec, dict) and isinstance(spec.get("expression"), str):
            rest = {k: v for k, v in spec.items() if k != "expression"}
            xp = MatchesXPath(spec["expression"], namespaces, parse_value_pattern(rest, f"{pointer}/{op}"))
        else:
            raise InvalidStubError(
                'matchesXPath needs an XPath string or {"expression": ..., <operator>}', f"{pointer}/{op}"
            )
        try:
            xp._xpath  # noqa: B018
        except InvalidStubError as exc:
            raise InvalidStubError(exc.detail, f"{pointer}/{op}") from exc
        return xp
    raise AssertionError(op)
