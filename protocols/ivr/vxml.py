"""A small VoiceXML 2.1 element builder over lxml: text is always escaped by lxml.

C{el("prompt", "Hello ", el("break", time="300ms"), "world", bargein=False)}
builds C{<prompt bargein="false">Hello <break time="300ms"/>world</prompt>}.
Attribute names are Python names with C{_} for C{-} (C{interpret_as}) and
C{xml_lang} for C{xml:lang}; C{None} values are left out; booleans become
C{true}/C{false}.  Elements live in the VoiceXML namespace
(C{http://www.w3.org/2001/vxml}, W3C VoiceXML 2.1 §1.5 / 2.0 appendix B).
"""
from __future__ import annotations

from lxml import etree

NS = "http://www.w3.org/2001/vxml"
XML_NS = "http://www.w3.org/XML/1998/namespace"
VERSION = "2.1"
#: The W3C VoiceXML 2.1 DTD (REC-voicexml21-20070619).
DOCTYPE = ('<!DOCTYPE vxml PUBLIC "-//W3C//DTD VOICEXML 2.1//EN" '
           '"http://www.w3.org/TR/voicexml21/vxml.dtd">')
CONTENT_TYPE = b"application/voicexml+xml; charset=utf-8"


def _attr_name(name: str) -> str:
    if name == "xml_lang":
        return "{%s}lang" % XML_NS
    return name.rstrip("_").replace("_", "-")


def _attr_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def el(tag: str, *children, **attrs) -> etree._Element:
    """A VoiceXML element with C{children} (elements, strings, or None to skip)."""
    node = etree.Element("{%s}%s" % (NS, tag), nsmap={None: NS})
    for name, value in attrs.items():
        if value is not None:
            node.set(_attr_name(name), _attr_value(value))
    append(node, *children)
    return node


def append(node: etree._Element, *children) -> etree._Element:
    """Append C{children} (elements, strings, lists of them, or None) to C{node}."""
    for child in children:
        if child is None:
            continue
        if isinstance(child, (list, tuple)):
            append(node, *child)
        elif isinstance(child, str):
            if len(node):
                last = node[-1]
                last.tail = (last.tail or "") + child
            else:
                node.text = (node.text or "") + child
        else:
            node.append(child)
    return node


def document(xml_lang: str, *children) -> etree._Element:
    """The C{<vxml version="2.1">} root holding C{children}."""
    return el("vxml", *children, version=VERSION, xml_lang=xml_lang)


def serialise(root: etree._Element) -> bytes:
    """C{root} as a UTF-8 document with the XML declaration and the 2.1 DOCTYPE."""
    # Not pretty-printed: whitespace added inside <prompt>/<say-as> would be spoken content.
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", doctype=DOCTYPE)
