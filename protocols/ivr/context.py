"""What every document builder needs: the settings, prompts, HRN lengths, time zone and URLs."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from protocols.ivr.config import IvrSettings
from protocols.ivr.prompts import Prompts


@dataclass(frozen=True)
class Urls:
    """The channel's URLs below C{base} (C{"/ivr/"} or the configured C{base_url}).

    No URL ever carries an HRN: it only travels in the body of the
    activation POST.
    """

    base: str

    def entry(self) -> str:
        return self.base

    def collect(self, lang: str, attempt: int = 1) -> str:
        return self.base + "collect?" + urlencode([("lang", lang), ("attempt", str(attempt))])

    def activate(self) -> str:
        return self.base + "activate"


@dataclass(frozen=True)
class Context:
    """Shared, immutable inputs of the document builders.

    @ivar lengths: the HRN lengths of the configured voucher types, ascending.
    """

    settings: IvrSettings
    prompts: Prompts
    lengths: tuple[int, ...]
    zone: ZoneInfo

    @classmethod
    def build(cls, settings: IvrSettings, lengths) -> "Context":
        """@param lengths: HRN lengths (non-empty iterable of ints)."""
        lengths = tuple(sorted(set(lengths)))
        if not lengths:
            raise ValueError("no HRN lengths: configure at least one voucher type")
        return cls(settings, Prompts(settings), lengths, ZoneInfo(settings.timezone))
