"""BER TLV reader and an extension-tolerant pyasn1 decoder (ITU-T X.690 §8, X.680 §52).

pyasn1 has no extensibility marker: a SEQUENCE carrying elements its schema does not
name fails with "Excessive components decoded". L{decode_tolerant} first walks the
TLVs itself, drops elements that a newer peer may add after the C{...} (unknown
elements once every mandatory component has been seen, extension containers, vendor
extensions), then lets pyasn1 decode the rest with the schema. Every failure, whatever
raised it, leaves as the caller's error type.
"""

from dataclasses import dataclass

from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.type import tag, univ

MAX_DEPTH = 24

CLASS_UNIVERSAL = 0x00
CLASS_APPLICATION = 0x40
CLASS_CONTEXT = 0x80
CLASS_PRIVATE = 0xC0


class BerError(Exception):
    """Malformed BER, or BER that does not match the schema; C{str()} says why."""


@dataclass(frozen=True)
class Tlv:
    """One BER element: C{tag_class} (one of the C{CLASS_*} values), C{constructed},
    C{tag_number}, the content octets and the element's complete encoding C{raw}."""

    tag_class: int
    constructed: bool
    tag_number: int
    content: bytes
    raw: bytes

    @property
    def key(self):
        """C{(tag_class, tag_number)}: what matching against a schema compares."""
        return (self.tag_class, self.tag_number)


def _read_header(data, pos, end):
    """Return C{(tag_class, constructed, number, content_start, length_or_None)}."""
    if pos >= end:
        raise BerError("truncated: missing tag at offset %d" % pos)
    first = data[pos]
    pos += 1
    number = first & 0x1F
    if number == 0x1F:
        number = 0
        for _ in range(5):
            if pos >= end:
                raise BerError("truncated: high tag number")
            octet = data[pos]
            pos += 1
            number = (number << 7) | (octet & 0x7F)
            if not octet & 0x80:
                break
        else:
            raise BerError("tag number too large")
    if pos >= end:
        raise BerError("truncated: missing length at offset %d" % pos)
    octet = data[pos]
    pos += 1
    if octet == 0x80:
        if not first & 0x20:
            raise BerError("indefinite length on a primitive element")
        return first & 0xC0, True, number, pos, None
    if octet & 0x80:
        size = octet & 0x7F
        if size > 4:
            raise BerError("length field of %d octets is too long" % size)
        if pos + size > end:
            raise BerError("truncated: length field")
        length = int.from_bytes(data[pos:pos + size], "big")
        pos += size
    else:
        length = octet
    return first & 0xC0, bool(first & 0x20), number, pos, length


def _read_one(data, pos, end, depth):
    """Read the element at C{pos}; return C{(Tlv, next_pos)}."""
    if depth > MAX_DEPTH:
        raise BerError("nesting deeper than %d" % MAX_DEPTH)
    start = pos
    tag_class, constructed, number, pos, length = _read_header(data, pos, end)
    if length is not None:
        if pos + length > end:
            raise BerError("truncated: element at offset %d needs %d octets, %d left"
                           % (start, length, end - pos))
        content_end = pos + length
        if constructed:
            _split(data, pos, content_end, depth + 1)  # validate the children
        return (Tlv(tag_class, constructed, number, bytes(data[pos:content_end]),
                    bytes(data[start:content_end])), content_end)
    # Indefinite length: children up to an end-of-contents 00 00.
    child = pos
    while True:
        if child + 2 <= end and data[child] == 0 and data[child + 1] == 0:
            break
        if child >= end:
            raise BerError("truncated: missing end-of-contents")
        _, child = _read_one(data, child, end, depth + 1)
    return (Tlv(tag_class, constructed, number, bytes(data[pos:child]),
                bytes(data[start:child + 2])), child + 2)


def _split(data, pos, end, depth):
    items = []
    while pos < end:
        item, pos = _read_one(data, pos, end, depth)
        items.append(item)
    return items


def read_tlv(data):
    """Parse exactly one BER element filling C{data}.

    @raise BerError: for truncation, bad lengths, nesting deeper than
        L{MAX_DEPTH}, or octets left over after the element.
    """
    data = bytes(data)
    item, pos = _read_one(data, 0, len(data), 0)
    if pos != len(data):
        raise BerError("%d octets left over after the element" % (len(data) - pos))
    return item


def split_tlvs(content):
    """Parse a run of BER elements (the content of a constructed element).

    @raise BerError: as L{read_tlv}.
    """
    content = bytes(content)
    return _split(content, 0, len(content), 0)


def encode_length(length):
    """Encode a BER definite length."""
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def encode_tlv(tag_class, constructed, number, content):
    """Encode one element with a definite length."""
    first = tag_class | (0x20 if constructed else 0)
    if number < 0x1F:
        head = bytes((first | number,))
    else:
        groups = []
        while True:
            groups.append(number & 0x7F)
            number >>= 7
            if not number:
                break
        groups.reverse()
        head = bytes([first | 0x1F] + [g | 0x80 for g in groups[:-1]] + groups[-1:])
    return head + encode_length(len(content)) + content


# --- schema walking -------------------------------------------------------------------

_PYASN1_CLASS = {tag.tagClassUniversal: CLASS_UNIVERSAL,
                 tag.tagClassApplication: CLASS_APPLICATION,
                 tag.tagClassContext: CLASS_CONTEXT,
                 tag.tagClassPrivate: CLASS_PRIVATE}


def _key(pyasn1_tag):
    return (_PYASN1_CLASS[pyasn1_tag.tagClass], pyasn1_tag.tagId)


def _outer_keys(spec):
    """Tags that may start an encoding of C{spec}; C{None} means any tag."""
    tags = spec.tagSet.superTags
    if tags:
        return {_key(tags[-1])}
    if isinstance(spec, univ.Any):
        return None
    if isinstance(spec, univ.Choice):
        keys = set()
        for named in spec.componentType.namedTypes:
            sub = _outer_keys(named.asn1Object)
            if sub is None:
                return None
            keys |= sub
        return keys
    return set()


def _matches(item, spec):
    keys = _outer_keys(spec)
    return keys is None or item.key in keys


def _clean(item, spec):
    """Return the encoding of C{item} with unknown extension elements removed."""
    if isinstance(spec, univ.Any):
        return definite(item)
    layers = len(spec.tagSet.superTags)
    if not isinstance(spec, univ.Choice):
        layers -= 1  # the innermost tag is the type's own (universal or implicit) tag
    return _clean_inner(item, spec, layers)


def _clean_inner(item, spec, layers):
    """Clean C{item} that still wears C{layers} explicit tags of C{spec}."""
    if layers > 0:
        inner = split_tlvs(item.content) if item.constructed else []
        if len(inner) != 1:
            raise BerError("explicit tag %r must wrap exactly one element" % (item.key,))
        body = _clean_inner(inner[0], spec, layers - 1)
        return encode_tlv(item.tag_class, True, item.tag_number, body)
    if isinstance(spec, univ.Choice):
        for named in spec.componentType.namedTypes:
            if _matches(item, named.asn1Object):
                return _clean(item, named.asn1Object)
        raise BerError("element %r matches no alternative of %s"
                       % (item.key, type(spec).__name__))
    return _clean_body(item, spec)


def _clean_body(item, spec):
    if isinstance(spec, (univ.SequenceOf, univ.SetOf)):
        if not item.constructed:
            raise BerError("SEQUENCE OF %r is primitive" % (item.key,))
        member = spec.componentType
        body = b"".join(_clean(child, member) for child in split_tlvs(item.content))
        return encode_tlv(item.tag_class, True, item.tag_number, body)
    if isinstance(spec, univ.Sequence):
        if not item.constructed:
            raise BerError("SEQUENCE %r is primitive" % (item.key,))
        return encode_tlv(item.tag_class, True, item.tag_number,
                          _clean_sequence(split_tlvs(item.content), spec))
    return definite(item)


def definite(item):
    """Re-encode C{item} with definite lengths throughout (pyasn1 mishandles an
    indefinite length inside an ANY)."""
    if not item.constructed:
        return item.raw
    body = b"".join(definite(child) for child in split_tlvs(item.content))
    return encode_tlv(item.tag_class, True, item.tag_number, body)


def _clean_sequence(children, spec):
    """Keep the children that match C{spec}'s components in order; drop the others
    only where an extension may stand (no mandatory component still expected)."""
    named = spec.componentType.namedTypes
    kept = []
    idx = 0
    for child in children:
        pos = idx
        missing = None
        while pos < len(named):
            if _matches(child, named[pos].asn1Object):
                break
            if not (named[pos].isOptional or named[pos].isDefaulted):
                missing = named[pos].name
                pos = len(named) + 1  # a mandatory component is still expected
                break
            pos += 1
        if pos < len(named):
            kept.append(_clean(child, named[pos].asn1Object))
            idx = pos + 1
        elif pos == len(named):
            continue  # unknown element after every mandatory component: an extension
        else:
            raise BerError("unexpected element %r in %s where %r is mandatory"
                           % (child.key, type(spec).__name__, missing))
    return b"".join(kept)


def decode_tolerant(data, spec):
    """Decode C{data} (exactly one element) with pyasn1, ignoring unknown extensions.

    @param data: BER octets.
    @param spec: a pyasn1 type instance (the schema).
    @return: the pyasn1 value.
    @raise BerError: for any malformation or schema mismatch; pyasn1's own exceptions
        (and any other error it lets slip) are converted, never passed on.
    """
    item = read_tlv(data)
    if not _matches(item, spec):
        raise BerError("tag %r is not a %s" % (item.key, type(spec).__name__))
    cleaned = _clean(item, spec)
    try:
        value, rest = ber_decoder.decode(cleaned, asn1Spec=spec)
    except BerError:
        raise
    except Exception as exc:  # pyasn1 raises PyAsn1Error, but also plain errors
        raise BerError("%s: %s" % (type(exc).__name__, exc)) from None
    if rest:
        raise BerError("%d octets left over" % len(rest))
    return value
