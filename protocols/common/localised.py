"""Per-language template tables over built-in ones, with the time zone results are shown in."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from protocols.common.results import result_fields
from protocols.common.templates import Blank, lookup, merge_tables


class LocalisedTemplates:
    """A channel's templates by language and key, and how it shows a result's times.

    Subclasses set L{builtin}.

    @ivar templates: language -> key -> template, configured ones over the built-in ones.
    @ivar zone: the time zone of C{{expiry}} and C{{unbar_time}}.
    """

    @staticmethod
    def builtin() -> dict[str, dict[str, str]]:
        """A new copy of the channel's built-in texts, language -> key -> template."""
        return {}

    def __init__(self, templates: dict[str, dict[str, str]] | None = None, *,
                 default_language: str = "en", timezone: str = "UTC",
                 date_format: str = "%Y-%m-%d", time_format: str = "%Y-%m-%d %H:%M") -> None:
        """
        @param templates: language -> key -> template, merged over
            L{builtin}; a key missing in a language falls back to
            C{default_language}, then to English.
        @param timezone: an IANA name; C{date_format} and C{time_format} are
            the C{strftime} formats of C{{expiry}} and C{{unbar_time}}.
        @raise zoneinfo.ZoneInfoNotFoundError: an unknown C{timezone}.
        """
        self.templates = merge_tables(self.builtin(), templates)
        self.default_language = default_language
        self.zone = ZoneInfo(timezone)
        self.date_format = date_format
        self.time_format = time_format

    @classmethod
    def from_settings(cls, settings):
        """Build from settings with C{templates}, C{default_language},
        C{timezone}, C{date_format} and C{time_format}."""
        return cls(settings.templates, default_language=settings.default_language,
                   timezone=settings.timezone, date_format=settings.date_format,
                   time_format=settings.time_format)

    def template(self, key: str, language: str) -> str:
        """The template C{key} in C{language}, falling back as documented; C{""} if none."""
        return lookup(self.templates, key, (language, self.default_language, "en"))

    def result_fields(self, result, msisdn: str = "") -> Blank:
        """The fields of an L{core.requests.ActivationResult}
        (L{protocols.common.results.result_fields}) in this time zone and these formats."""
        return result_fields(result, self.zone, self.date_format, self.time_format,
                             msisdn=msisdn)
