"""Tests that the USSD result texts are the shared ones, without diacritics."""
from protocols.common.texts import RESULT_TEXTS
from protocols.ussd.replies import default_templates, plain


def test_plain_drops_diacritics():
    """
    L{plain} writes č, ć, š, ž and đ (either case) as GSM 7-bit letters.
    """
    assert plain("Već iskorišćen, obrađuje, Žuta, Đak") == \
        "Vec iskoriscen, obradjuje, Zuta, Djak"


def test_result_texts_come_from_common():
    """
    Every shared result text appears in the USSD built-ins (without
    diacritics), except C{SUBSCRIBER_UNKNOWN}, which USSD words for any
    number.
    """
    builtin = default_templates()
    for language, table in RESULT_TEXTS.items():
        for key, text in table.items():
            if key == "SUBSCRIBER_UNKNOWN":
                continue
            assert builtin[language][key] == plain(text)
