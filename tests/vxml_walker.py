"""A DTMF-driven VoiceXML 2.1 browser for tests: it walks documents the way a platform would.

It fetches documents over HTTP, runs forms with the Form Interpretation
Algorithm (VoiceXML 2.0 §2.1.6 and appendix C, simplified): C{<var>},
C{<block>}, C{<field>} with DTMF grammars, C{<filled>}, C{<if>/<elseif>/<else>},
C{<clear>}, C{<goto>}, C{<submit>}, C{<throw>}, C{<reprompt>}, C{<exit>},
C{<disconnect>}, C{<transfer>}, C{<menu>}/C{<choice>}, and event handlers
(C{<catch>}, C{<noinput>}, C{<nomatch>}, C{<error>}) chosen by the spec's
count rules (§5.2.4).  Counters follow the spec exactly: each form item has
a prompt counter (prompts chosen by their C{count}, §4.1.6, incremented each
time the item's prompts are queued, appendix C) and event counters; both
are reset when the form is entered and by C{<clear>} of that item
(§5.3.3), and by nothing else (C{<assign>} of an item's variable keeps them).  Expressions are a small ECMAScript subset
(identifiers, literals, C{. ()} member calls C{length}, C{substring},
C{indexOf}, C{charAt}, C{String()}, and C{! + - * == != === !== < > <= >= && ||}).

Inputs are DTMF strings (C{"12345678901234#"}, C{"1"}) or the events
L{NOINPUT} and L{NOMATCH}.  What the caller would hear lands in
L{Call.prompts}; how the call ended in L{Call.ended}.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from io import BytesIO
from urllib.parse import urldefrag, urlencode, urljoin

from lxml import etree

from tests.vxml_script import (
    UNDEFINED, Throw, WalkerError, evaluate, js_str, truthy)

NS = "{http://www.w3.org/2001/vxml}"
NOINPUT = "<noinput>"
NOMATCH = "<nomatch>"
HANGUP = "<hangup>"

#: Where Debian's w3c-sgml-lib package installs the W3C VoiceXML 2.1 DTD.
VXML21_DTD_PATHS = (
    "/usr/share/xml/w3c-sgml-lib/schema/dtd/REC-voicexml21-20070619/vxml.dtd",
)


# -- control flow ----------------------------------------------------------
class _Goto(Exception):
    def __init__(self, url):
        self.url = url


class _Submit(Exception):
    def __init__(self, url, method, fields):
        self.url, self.method, self.fields = url, method, fields


class _End(Exception):
    def __init__(self, how):
        self.how = how


@dataclass
class Call:
    """What happened in one walked call."""

    prompts: list = field(default_factory=list)      # spoken texts, in order
    audio: list = field(default_factory=list)        # recording URLs played
    fetches: list = field(default_factory=list)      # (method, url, fields)
    documents: list = field(default_factory=list)    # (url, status, headers, body bytes)
    events: list = field(default_factory=list)       # events thrown, in order
    transfer: dict | None = None                     # {"dest", "type"} when transferred
    ended: str = ""                                  # exit | disconnect | transfer | end | badfetch
    meta: dict = field(default_factory=dict)         # <meta> of the last document

    @property
    def transcript(self) -> str:
        return " | ".join(self.prompts)

    def said(self, text: str) -> bool:
        return text in self.transcript


def vxml21_dtd():
    """The W3C VoiceXML 2.1 DTD as an C{lxml.etree.DTD}; fails the test clearly when missing."""
    import os

    import pytest
    for path in VXML21_DTD_PATHS:
        if os.path.exists(path):
            return etree.DTD(path)
    pytest.fail("the W3C VoiceXML 2.1 DTD is not installed (looked in %s); install it with "
                "'apt-get install w3c-sgml-lib'" % ", ".join(VXML21_DTD_PATHS))


def assert_valid(body: bytes, dtd=None) -> etree._Element:
    """Parse C{body} (no DTD or network fetch) and validate it against the 2.1 DTD."""
    dtd = dtd or vxml21_dtd()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(body, parser)
    if not dtd.validate(root):
        raise AssertionError("not valid VoiceXML 2.1: %s\n%s"
                             % (dtd.error_log.filter_from_errors(), body.decode("utf-8", "replace")))
    return root


# -- grammars --------------------------------------------------------------
def _srgs_regex(grammar) -> str:
    rules = {r.get("id"): r for r in grammar.iter(NS + "rule")}

    def expand(node) -> str:
        parts = []
        if node.text and node.text.strip():
            parts.extend(re.escape(t) for t in node.text.split())
        for child in node:
            tag = etree.QName(child).localname
            if tag == "item":
                inner = "(?:%s)" % expand(child)
                rep = child.get("repeat")
                if rep:
                    m = re.fullmatch(r"(\d+)(?:-(\d*))?", rep)
                    lo, hi = m.group(1), m.group(2)
                    exact = m.group(2) is None
                    inner += "{%s}" % lo if exact else "{%s,%s}" % (lo, hi or "")
                parts.append(inner)
            elif tag == "one-of":
                items = [expand(i) for i in child if etree.QName(i).localname == "item"]
                parts.append("(?:%s)" % "|".join(items))
            elif tag == "ruleref":
                uri = child.get("uri", "")
                if not uri.startswith("#") or uri[1:] not in rules:
                    raise WalkerError("unsupported ruleref %r" % uri)
                parts.append("(?:%s)" % expand(rules[uri[1:]]))
            elif tag in ("tag", "example"):
                pass
            else:
                raise WalkerError("unsupported SRGS element %r" % tag)
            if child.tail and child.tail.strip():
                parts.extend(re.escape(t) for t in child.tail.split())
        return "".join(parts)
    return expand(rules[grammar.get("root")])


def match_grammar(grammar, dtmf: str):
    """The value C{grammar} gives C{dtmf}, or None when it does not match."""
    if grammar.get("mode", "voice") != "dtmf":
        return None
    src = grammar.get("src")
    if src:
        m = re.fullmatch(r"builtin:dtmf/(digits|boolean)(?:\?(.*))?", src)
        if not m:
            raise WalkerError("unsupported grammar src %r" % src)
        if m.group(1) == "boolean":
            return {"1": True, "2": False}.get(dtmf)
        params = dict(p.split("=", 1) for p in (m.group(2) or "").split(";") if p)
        lo, hi = int(params.get("minlength", 1)), int(params.get("maxlength", 99))
        if params.get("length"):
            lo = hi = int(params["length"])
        return dtmf if re.fullmatch(r"\d{%d,%d}" % (lo, hi), dtmf) else None
    return dtmf if re.fullmatch(_srgs_regex(grammar), dtmf) else None


# -- the browser -----------------------------------------------------------
def _tag(node) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _kids(node, *tags):
    return [c for c in node if _tag(c) in tags]


class Walker:
    """Walks VoiceXML documents with scripted DTMF input.

    @param fetch: C{async fetch(method, url, fields) -> (status, headers, body)};
        see L{http_fetch}.
    @param session: dotted session variables, e.g.
        C{{"session.connection.remote.uri": "tel:+381641234567"}}.
    @param transfer_outcome: value a C{<transfer>} gets (e.g. C{"busy"}); None
        ends the call at the transfer, as a successful blind transfer does.
    """

    def __init__(self, fetch, session: dict | None = None, *, transfer_outcome=None,
                 max_steps: int = 400):
        self.fetch = fetch
        self.session = {}
        for dotted, value in (session or {}).items():
            parts = dotted.split(".")
            assert parts[0] == "session", dotted
            node = self.session
            for p in parts[1:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = value
        self.transfer_outcome = transfer_outcome
        self.max_steps = max_steps

    async def call(self, url: str, inputs) -> Call:
        """Fetch C{url} (GET) and walk the call with C{inputs}."""
        self.c = Call()
        self.inputs = list(inputs)
        self.steps = 0
        self.doc = None
        self.doc_url = None
        self.doc_vars = {}
        nxt = ("GET", url, None)
        while nxt is not None:
            nxt = await self._load_and_run(*nxt)
        return self.c

    async def play(self, url: str, body: bytes, inputs) -> Call:
        """Walk the call from a document already fetched from C{url}."""
        self.c = Call()
        self.inputs = list(inputs)
        self.steps = 0
        self.doc = None
        nxt = self._parse(url, body)
        while nxt is not None:
            nxt = await self._load_and_run(*nxt)
        return self.c

    async def _load_and_run(self, method, url, fields):
        if method == "LOCAL":                     # <goto next="#dialog"> in this document
            return self._run_document(url)
        base, frag = urldefrag(url)
        self.c.fetches.append((method, base, fields))
        status, headers, body = await self.fetch(method, base, fields)
        self.c.documents.append((base, status, headers, body))
        if not 200 <= status < 300:
            if self.doc is None:
                self.c.ended = "badfetch"
                return None
            return self._run_handler_at_document("error.badfetch")
        return self._parse(base, body, frag)

    def _parse(self, base, body, frag=""):
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        self.doc = etree.fromstring(body, parser)
        self.doc_url = base
        self.doc_vars = {}
        self.c.meta = {m.get("name"): m.get("content") for m in _kids(self.doc, "meta")}
        for v in _kids(self.doc, "var"):
            self.doc_vars[v.get("name")] = self.eval(v.get("expr")) if v.get("expr") else UNDEFINED
        return self._run_document(frag)

    def _run_handler_at_document(self, event):
        try:
            self._handle(event, None, None, {})
        except _Goto as g:
            if g.url.startswith("#"):
                return ("LOCAL", g.url[1:], None)
            return ("GET", urljoin(self.doc_url, g.url), None)
        except _Submit as s:
            return (s.method, urljoin(self.doc_url, s.url), s.fields)
        except _End as e:
            self.c.ended = e.how
        return None

    def _run_document(self, frag):
        dialogs = _kids(self.doc, "form", "menu")
        if frag:
            dialogs = [d for d in dialogs if d.get("id") == frag]
            if not dialogs:
                raise WalkerError("no dialog #%s in %s" % (frag, self.doc_url))
        if not dialogs:
            raise WalkerError("no dialog in %s" % self.doc_url)
        try:
            if _tag(dialogs[0]) == "menu":
                self._run_menu(dialogs[0])
            else:
                self._run_form(dialogs[0])
            self.c.ended = "end"
        except _Goto as g:
            if g.url.startswith("#"):
                return ("LOCAL", g.url[1:], None)
            return ("GET", urljoin(self.doc_url, g.url), None)
        except _Submit as s:
            return (s.method, urljoin(self.doc_url, s.url), s.fields)
        except _End as e:
            self.c.ended = e.how
        return None

    # -- scopes and expressions --
    def lookup(self, name):
        for scope in (self.dialog, self.doc_vars):
            if name in scope:
                return scope[name]
        if name == "session":
            return self.session
        raise Throw("error.semantic")

    def eval(self, expr):
        return evaluate(expr, self.lookup)

    def cond(self, node) -> bool:
        c = node.get("cond")
        return True if c is None else truthy(self.eval(c))

    # -- input --
    def _next_input(self) -> str:
        self.steps += 1
        if self.steps > self.max_steps:
            raise WalkerError("too many steps; transcript: %s" % self.c.transcript)
        if not self.inputs:
            raise WalkerError("no input left; transcript: %s" % self.c.transcript)
        dtmf = self.inputs.pop(0)
        if dtmf == HANGUP:
            raise _End("hangup")
        return dtmf

    def _termchar(self) -> str:
        props = {p.get("name"): p.get("value") for p in _kids(self.doc, "property")}
        return props.get("termchar", "#")

    # -- output --
    def _render(self, node) -> str:
        out = [node.text or ""]
        for child in node:
            tag = _tag(child)
            if tag == "value":
                out.append(js_str(self.eval(child.get("expr"))))
            elif tag == "break":
                out.append(" ")
            elif tag == "audio":
                if child.get("src"):
                    self.c.audio.append(child.get("src"))
                out.append(self._render(child))
            elif tag in ("say-as", "emphasis", "prosody", "p", "s", "voice", "sub"):
                out.append(self._render(child))
            elif tag in ("mark", "desc", "metadata", "meta", "lexicon", "phoneme"):
                pass
            elif tag:
                raise WalkerError("unsupported prompt content %r" % tag)
            out.append(child.tail or "")
        return "".join(out)

    def _say(self, text):
        text = " ".join(text.split())
        if text:
            self.c.prompts.append(text)

    def _play_prompts(self, item, key=None):
        """Queue C{item}'s prompts per §4.1.6: of those whose C{cond} holds, the
        ones with the highest C{count} not above the item's prompt counter;
        then increment the counter (appendix C)."""
        key = key if key is not None else item.get("name") or item.get("id")
        counter = self.prompt_counters.get(key, 1)
        eligible = [(int(p.get("count") or 1), p) for p in _kids(item, "prompt", "audio")
                    if self.cond(p)]
        eligible = [(c, p) for c, p in eligible if c <= counter]
        best = max((c for c, _ in eligible), default=None)
        for c, p in eligible:
            if c == best:
                if _tag(p) == "audio" and p.get("src"):
                    self.c.audio.append(p.get("src"))
                self._say(self._render(p))
        self.prompt_counters[key] = counter + 1

    # -- executable content --
    def _execute(self, nodes):
        """Run executable content; return True when it ended with <reprompt/>."""
        reprompt = False
        if isinstance(nodes, etree._Element):
            if nodes.text and nodes.text.strip():
                self._say(nodes.text)
            nodes = list(nodes)
        for n in nodes:
            tag = _tag(n)
            reprompt = False
            if tag == "prompt":
                if self.cond(n):
                    self._say(self._render(n))
            elif tag == "audio":
                self._play_prompts_of_audio(n)
            elif tag == "value":
                self._say(js_str(self.eval(n.get("expr"))))
            elif tag == "var":
                self.dialog[n.get("name")] = self.eval(n.get("expr")) if n.get("expr") else UNDEFINED
            elif tag == "assign":
                name = n.get("name")
                scope = next((sc for sc in (self.dialog, self.doc_vars) if name in sc), None)
                if scope is None:
                    raise Throw("error.semantic")
                scope[name] = self.eval(n.get("expr"))
            elif tag == "clear":
                names = (n.get("namelist") or "").split() or list(self.items)
                for name in names:           # §5.3.3: value, prompt and event counters
                    self.dialog[name] = UNDEFINED
                    self.counters.pop(name, None)
                    self.prompt_counters.pop(name, None)
            elif tag == "if":
                reprompt = self._if(n)
            elif tag == "goto":
                if n.get("nextitem") or n.get("expritem"):
                    raise WalkerError("goto nextitem is not supported")
                raise _Goto(n.get("next") or js_str(self.eval(n.get("expr"))))
            elif tag == "submit":
                names = (n.get("namelist") or "").split()
                fields = [(name, js_str(self.lookup(name))) for name in names]
                url = n.get("next") or js_str(self.eval(n.get("expr")))
                raise _Submit(url, (n.get("method") or "get").upper(), fields)
            elif tag == "throw":
                raise Throw(n.get("event") or js_str(self.eval(n.get("eventexpr"))))
            elif tag == "reprompt":
                reprompt = True
            elif tag == "exit":
                raise _End("exit")
            elif tag == "disconnect":
                raise _End("disconnect")
            elif tag in ("log", "meta", "property"):
                pass
            elif tag:
                raise WalkerError("unsupported executable element %r" % tag)
            if n.tail and n.tail.strip():
                self._say(n.tail)
        return reprompt

    def _play_prompts_of_audio(self, n):
        if n.get("src"):
            self.c.audio.append(n.get("src"))
        self._say(self._render(n))

    def _if(self, node) -> bool:
        branches, current, taken = [], [], node
        for child in node:
            if _tag(child) in ("elseif", "else"):
                branches.append((taken, current))
                taken, current = child, []
            else:
                current.append(child)
        branches.append((taken, current))
        for guard, body in branches:
            if _tag(guard) == "else" or self.cond(guard):
                return self._execute(body)
        return False

    # -- events (VoiceXML 2.0 §5.2.4) --
    def _handlers(self, node):
        out = []
        for h in _kids(node, "catch", "noinput", "nomatch", "error", "help"):
            tag = _tag(h)
            events = (h.get("event") or "").split() if tag == "catch" else [tag]
            out.append((events, int(h.get("count") or 1), h))
        return out

    def _handle(self, event, item, form, counters) -> bool:
        """Run the handler for C{event}; return True when it ended with <reprompt/>."""
        self.c.events.append(event)
        key = item.get("name") if item is not None else None
        count = counters.setdefault(key, {}).get(event, 0) + 1
        counters[key][event] = count
        candidates = []
        for scope in (item, form, self.doc):
            if scope is not None:
                candidates += self._handlers(scope)

        def matches(names):
            return not names or any(event == n or event.startswith(n + ".") for n in names)
        candidates = [(c, h) for names, c, h in candidates if matches(names) and c <= count and self.cond(h)]
        if not candidates:
            if event in ("noinput", "nomatch"):
                return True
            raise _End("exit")
        best = max(c for c, _ in candidates)
        handler = next(h for c, h in candidates if c == best)
        return self._execute(handler)

    # -- dialogs --
    def _run_form(self, form):
        self.dialog = {}
        self.counters = {}
        self.prompt_counters = {}
        items = [c for c in form if _tag(c) in ("block", "field", "transfer", "initial",
                                                  "record", "object", "subdialog")]
        self.items = {}
        for i, it in enumerate(items):
            name = it.get("name") or "_item%d" % i
            if _tag(it) not in ("block", "field", "transfer"):
                raise WalkerError("unsupported form item %r" % _tag(it))
            self.items[name] = it
            self.dialog[name] = UNDEFINED
        try:
            for v in _kids(form, "var"):
                self.dialog[v.get("name")] = self.eval(v.get("expr")) if v.get("expr") else UNDEFINED
        except Throw as t:                      # e.g. a session variable the platform lacks
            self._handle(t.event, None, form, self.counters)
        play = True
        while True:
            item = next((it for name, it in self.items.items()
                         if self.dialog[name] is UNDEFINED and self.cond(it)), None)
            if item is None:
                return
            name = next(n for n, it in self.items.items() if it is item)
            try:
                tag = _tag(item)
                if tag == "block":
                    self.dialog[name] = True
                    self._execute(item)
                elif tag == "field":
                    if play:
                        self._play_prompts(item, name)
                    play = True
                    self.dialog[name] = self._collect(item)
                    for filled in _kids(item, "filled"):
                        self._execute(filled)
                else:
                    self._play_prompts(item)
                    self.c.transfer = {"dest": item.get("dest"), "type": item.get("type")}
                    if self.transfer_outcome is None:
                        raise _End("transfer")
                    self.dialog[name] = self.transfer_outcome
                    for filled in _kids(item, "filled"):
                        self._execute(filled)
            except Throw as t:
                play = self._handle(t.event, item, form, self.counters)

    def _collect(self, item):
        dtmf = self._next_input()
        if dtmf == NOINPUT:
            raise Throw("noinput")
        if dtmf == NOMATCH:
            raise Throw("nomatch")
        term = self._termchar()
        if term and dtmf.endswith(term):
            dtmf = dtmf[:-len(term)]
        for g in _kids(item, "grammar"):
            value = match_grammar(g, dtmf)
            if value is not None:
                return value
        raise Throw("nomatch")

    def _run_menu(self, menu):
        self.dialog = {}
        self.counters = {}
        self.prompt_counters = {}
        self.items = {}
        play = True
        while True:
            try:
                if play:
                    self._play_prompts(menu)
                play = True
                dtmf = self._next_input()
                if dtmf == NOINPUT:
                    raise Throw("noinput")
                if dtmf == NOMATCH:
                    raise Throw("nomatch")
                dtmf = dtmf.rstrip(self._termchar() or "#")
                for choice in _kids(menu, "choice"):
                    if choice.get("dtmf") == dtmf:
                        raise _Goto(choice.get("next"))
                raise Throw("nomatch")
            except Throw as t:
                play = self._handle(t.event, None, menu, self.counters)


def read_body(response):
    """A Deferred firing with the whole body of a twisted.web.client response."""
    from twisted.internet import defer, protocol
    from twisted.web.client import ResponseDone
    from twisted.web.http import PotentialDataLoss

    class _Body(protocol.Protocol):
        def __init__(self, done):
            self.done, self.parts = done, []

        def dataReceived(self, data):
            self.parts.append(data)

        def connectionLost(self, reason):
            if reason.check(ResponseDone, PotentialDataLoss):
                self.done.callback(b"".join(self.parts))
            else:
                self.done.errback(reason)

    done = defer.Deferred()
    response.deliverBody(_Body(done))
    return done


def http_fetch(reactor):
    """A L{Walker} fetch over real HTTP (twisted.web.client.Agent): POST sends the
    fields form-encoded in the body, GET in the query string."""
    from twisted.web.client import Agent, FileBodyProducer
    from twisted.web.http_headers import Headers
    agent = Agent(reactor)

    async def fetch(method, url, fields):
        headers = Headers({b"user-agent": [b"ivoms-vxml-walker"]})
        body = None
        if fields:
            data = urlencode(fields).encode("utf-8")
            if method == "POST":
                headers.addRawHeader(b"content-type", b"application/x-www-form-urlencoded")
                body = FileBodyProducer(BytesIO(data))
            else:
                url += ("&" if "?" in url else "?") + data.decode("ascii")
        response = await agent.request(method.encode("ascii"), url.encode("ascii"), headers, body)
        content = await read_body(response)
        hdrs = {k.decode("latin-1").lower(): b",".join(v).decode("latin-1")
                for k, v in response.headers.getAllRawHeaders()}
        return response.code, hdrs, content
    return fetch
