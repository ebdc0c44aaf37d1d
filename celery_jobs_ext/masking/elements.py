"""Secret-named XML and HTML-like elements: ``<password>S</password>``, ``<ApiKey>S</ApiKey>``,
name/value element pairs (``<key>password</key><value>S</value>``) and elements named by an
attribute (``<Property name="password">S</Property>``)."""

from __future__ import annotations

import re

from celery_jobs_ext.masking.engine import Rule, literal_rule
from celery_jobs_ext.masking.keys import KeyMatcher, hides_nothing

#: XML and HTML-like elements: ``<password>value</password>``, ``<ApiKey>value</ApiKey>``,
#: the value alone on its line included.
_ELEMENT = (
    r"<(?P<key>[A-Za-z](?:[\w.:-]|\\u[0-9a-fA-F]{4}){0,64})>"
    r"(?:<!\[CDATA\[(?P<cdata>[^\]]{0,2048}(?:\](?!\]>)[^\]]{0,2048}){0,8})\]\]>"
    # the value, possibly on a line of its own: <token>\n    S\n</token>
    r"|(?:\s|\\[nrt]){0,64}(?P<value>[^<\s\\](?:[^<\n]{0,2046}[^<\s])?)\s{0,64})"
    r"</(?P=key)>"
)
_ESCAPED_TAIL = re.compile(r"(?:\s|\\[nrt])+$")
#: A name element then a value element: ``<key>password</key><value>S</value>`` (Java
#: properties as XML, plist-like entries).
_NAMED_ELEMENT = (
    r"<(?P<tag>[Kk]ey|[Nn]ame)>(?P<key>[^<\n]{1,128})</(?P=tag)>\s{0,64}"
    r"<(?P<vtag>[Vv]alue|string)>(?P<value>[^<]{1,2048})</(?P=vtag)>"
)


#: An element named by its attribute: ``<Property name="password">S</Property>`` (Ant, WildFly,
#: Hibernate), ``<entry key="db.password">S</entry>`` (Java properties as XML).
_ATTRIBUTE_NAMED_ELEMENT = (
    r"<(?P<tag>[A-Za-z][\w.:-]{0,64})[ \t][^<>\n]{0,256}?(?<![\w-])(?:name|key)=\\?(?P<quote>[\"'])"
    r"(?P<key>[^\"'<>\n\\]{1,128})\\?(?P=quote)[^<>\n/]{0,256}>(?P<value>[^<]{1,2048})</(?P=tag)>"
)


def attribute_named_element_rule(matcher: KeyMatcher) -> Rule:
    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | None:
        label = matcher.label_for(match.group("key").strip())
        value = match.group("value")
        if label is None or hides_nothing(value.strip(), label):
            return None
        return text[match.start() : match.start("value")] + label, match.end("value")

    return literal_rule("xml-attribute-named-element", "</", _ATTRIBUTE_NAMED_ELEMENT, replace)


def element_rule(matcher: KeyMatcher) -> Rule:
    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | None:
        label = matcher.label_for(match.group("key").rsplit(":", 1)[-1])
        group = "value" if match.group("value") is not None else "cdata"
        value = match.group(group)
        if group == "value":  # a repr's escaped line breaks around it are not part of it
            value = _ESCAPED_TAIL.sub("", value)
        if label is None or hides_nothing(value, label, structured=group == "cdata"):
            return None
        return text[match.start() : match.start(group)] + label, match.start(group) + len(value)

    return literal_rule("xml-element", "</", _ELEMENT, replace)


def named_element_rule(matcher: KeyMatcher) -> Rule:
    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | None:
        label = matcher.label_for(match.group("key").strip())
        value = match.group("value")
        if label is None or hides_nothing(value.strip(), label, structured=True):
            return None
        return text[match.start() : match.start("value")] + label, match.end("value")

    return literal_rule("xml-named-element", "</", _NAMED_ELEMENT, replace)  # the element rule's trigger
