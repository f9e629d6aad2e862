"""The recharge pages as bytes: mobile-first HTML5 and an XHTML Mobile Profile 1.2 variant for WAP.

Pure functions: texts in, a document out.  Everything variable is escaped;
the HRN is never written into a page (the field is always empty).  The
pages need no JavaScript; the HTML page's only style sheet is inline and
allowed by its hash in the Content-Security-Policy (L{CSP}).
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

HTML_TYPE = b"text/html; charset=utf-8"
#: WAP 2.0 browsers ask for this type; others get application/xhtml+xml.
WAP_TYPE = b"application/vnd.wap.xhtml+xml; charset=utf-8"
XHTML_TYPE = b"application/xhtml+xml; charset=utf-8"

_CSS = (
    "body{font-family:sans-serif;margin:0 auto;max-width:28em;padding:1em;line-height:1.4}"
    "h1{font-size:1.3em}label{display:block;margin-top:1em;font-weight:bold}"
    "input{font-size:1.2em;width:100%;box-sizing:border-box;padding:.4em}"
    "button{font-size:1.2em;width:100%;margin-top:1.2em;padding:.5em}"
    ".ok{background:#e6f4ea;border:1px solid #2e7d32;padding:.6em}"
    ".err{background:#fdecea;border:1px solid #c62828;padding:.6em}"
    ".langs{float:right;font-size:.9em}"
)
CSP = ("default-src 'none'; style-src 'sha256-%s'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'"
       % base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()).encode()


def _e(text) -> str:
    return escape(str(text), quote=True)


def page(flavour: str, texts, lang: str, *, csrf: str, action: str, home: str,
         msisdn: str = "", notice: str | None = None, ok: bool | None = None,
         reference: str | None = None, show_form: bool = True) -> bytes:
    """One recharge page: an optional notice (a result or an error) and the form.

    @param flavour: C{"html"} or C{"wap"}.
    @param csrf: the hidden form token.
    @param action: the form's POST target (path).
    @param home: the form page (path), for the language links.
    @param msisdn: pre-filled phone number (the HRN never is).
    @param ok: True for a success notice, False for an error, None for none.
    """
    t = lambda key: _e(texts.get(key, lang))   # noqa: E731
    parts = []
    if notice is not None:
        cls = "ok" if ok else "err"
        parts.append('<p class="%s" id="result">%s</p>' % (cls, _e(notice)) if flavour == "html"
                     else '<p id="result"><b>%s</b></p>' % _e(notice))
        if reference:
            parts.append("<p>%s: %s</p>" % (t("reference"), _e(reference)))
    if show_form:
        parts.append(
            '<form method="post" action="%s">'
            '<div><input type="hidden" name="csrf" value="%s" />'
            '<input type="hidden" name="lang" value="%s" />'
            '<label for="msisdn">%s</label>'
            '<input id="msisdn" name="msisdn" type="%s" maxlength="32" value="%s"%s />'
            '<label for="hrn">%s</label>'
            '<input id="hrn" name="hrn" type="text" maxlength="40" value=""%s />'
            '%s</div></form>'
            % (_e(action), _e(csrf), _e(lang), t("msisdn"),
               "tel" if flavour == "html" else "text", _e(msisdn),
               ' inputmode="tel" autocomplete="tel" required="required"' if flavour == "html"
               else "",
               t("hrn"),
               ' inputmode="numeric" autocomplete="off" required="required"'
               if flavour == "html" else "",
               '<button type="submit">%s</button>' % t("submit") if flavour == "html"
               else '<br /><input type="submit" value="%s" />' % t("submit")))
    elif notice is not None:
        parts.append('<p><a href="%s?lang=%s">%s</a></p>' % (_e(home), _e(lang), t("again")))
    langs = " | ".join('<a href="%s?lang=%s">%s</a>' % (_e(home), _e(x), _e(x.upper()))
                       for x in texts.languages if x != lang)
    body = "".join(parts)
    if flavour == "html":
        return ('<!DOCTYPE html>\n<html lang="%s"><head><meta charset="utf-8" />'
                '<meta name="viewport" content="width=device-width, initial-scale=1" />'
                '<title>%s</title><style>%s</style></head><body>'
                '<p class="langs">%s</p><h1>%s</h1>%s</body></html>\n'
                % (_e(lang), t("title"), _CSS, langs, t("heading"), body)).encode("utf-8")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<!DOCTYPE html PUBLIC "-//WAPFORUM//DTD XHTML Mobile 1.2//EN" '
            '"http://www.openmobilealliance.org/tech/DTD/xhtml-mobile12.dtd">\n'
            '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="%s"><head>'
            '<title>%s</title></head><body><p>%s</p><h1>%s</h1>%s</body></html>\n'
            % (_e(lang), t("title"), langs or "&#160;", t("heading"), body)).encode("utf-8")
