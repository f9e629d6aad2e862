"""The simulator's prepaid accounts: balances and expiry dates in memory.

Every credit is recorded by its reference (the idempotency key), so a
repeated credit answers what the first did; C{void} closes a reference
that was never used so it can never apply later (what the CAI lookup
relies on).  Accounts may be seeded from a CSV file:
C{msisdn,balance_minor,currency[,expires YYYY-MM-DD]} ('#' comments).
With a L{billing.sim.journal.Journal} every decision is fsynced before
it is answered and replayed on start (a crash forgets nothing answered).
"""
from __future__ import annotations

import dataclasses
import datetime

DAY_MS = 86_400_000


@dataclasses.dataclass
class Account:
    msisdn: str
    balance: int          # minor units
    currency: str         # ISO 4217 alpha
    expires_at: int       # epoch ms


@dataclasses.dataclass(frozen=True)
class Record:
    """What became of one reference: status 'credited', 'unknown'
    (no such subscriber), 'refused' or 'void'."""

    status: str
    balance: int | None = None
    expires_at: int | None = None

    @property
    def credited(self) -> bool:
        return self.status == "credited"


class SimLedger:
    """In-memory accounts; C{clock} is an IReactorTime."""

    def __init__(self, clock, *, auto_create: bool = True,
                 currency: str = "EUR", journal=None):
        self.clock = clock
        self.auto_create = auto_create
        self.currency = currency
        self.accounts: dict[str, Account] = {}
        self.records: dict[str, Record] = {}
        self.applied = 0
        self.journal = None
        if journal is not None:
            for e in journal.replay():
                self._replay(e)
            self.journal = journal

    def _replay(self, e: dict) -> None:
        if e["status"] == "credited":
            acc = self.accounts.get(e["msisdn"])
            if acc is None:
                acc = self.add_account(e["msisdn"], 0, e["currency"], e["expires_at"])
            acc.balance, acc.expires_at = e["balance"], e["expires_at"]
            self.applied += 1
            self.records[e["key"]] = Record("credited", e["balance"], e["expires_at"])
        else:
            self.records.setdefault(e["key"], Record(e["status"]))

    def _keep(self, key: str, rec: Record, **extra) -> Record:
        """Record C{rec} for C{key} (durably first, with a journal)."""
        if self.journal is not None:
            self.journal.append(dict(extra, key=key, status=rec.status, balance=rec.balance,
                                     expires_at=rec.expires_at))
        self.records[key] = rec
        return rec

    def now_ms(self) -> int:
        return int(self.clock.seconds() * 1000)

    def add_account(self, msisdn: str, balance: int = 0, currency: str | None = None,
                    expires_at: int | None = None) -> Account:
        acc = Account(msisdn, balance, currency or self.currency,
                      expires_at if expires_at is not None else self.now_ms())
        self.accounts[msisdn] = acc
        return acc

    def load(self, path: str) -> int:
        """Seed accounts from a CSV file; returns how many were read.

        @raise ValueError: a line is malformed (naming the line).
        """
        n = 0
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = [p.strip() for p in line.split(",")]
                try:
                    msisdn, balance, currency = parts[0], int(parts[1]), parts[2]
                    expires = None
                    if len(parts) > 3 and parts[3]:
                        day = datetime.date.fromisoformat(parts[3])
                        expires = int(datetime.datetime(
                            day.year, day.month, day.day,
                            tzinfo=datetime.timezone.utc).timestamp() * 1000) + DAY_MS
                    if not msisdn.isdigit():
                        raise ValueError("MSISDN must be digits")
                except (IndexError, ValueError) as e:
                    raise ValueError("%s:%d: %s" % (path, lineno, e)) from None
                self.add_account(msisdn, balance, currency, expires)
                n += 1
        return n

    def get(self, key: str) -> Record | None:
        return self.records.get(key)

    def record(self, key: str, status: str) -> Record:
        """Record a refusal decided elsewhere (an injected fault)."""
        old = self.records.get(key)
        return old if old is not None else self._keep(key, Record(status))

    def void(self, key: str) -> Record:
        """Close an unused reference: a later credit with it is refused."""
        old = self.records.get(key)
        return old if old is not None else self._keep(key, Record("void"))

    def credit(self, key: str, msisdn: str, amount: int, currency: str,
               validity_days: int = 0, until: int | None = None
               ) -> tuple[Record, bool]:
        """Credit once per C{key}; returns (record, duplicate)."""
        old = self.records.get(key)
        if old is not None:
            return old, True
        acc = self.accounts.get(msisdn)
        now = self.now_ms()
        if acc is None:
            if not self.auto_create:
                return self.record(key, "unknown"), False
            acc = self.add_account(msisdn, 0, currency, now)
        if acc.currency != currency:
            return self.record(key, "refused"), False
        target = until if until is not None else now + validity_days * DAY_MS
        rec = Record("credited", acc.balance + amount, max(acc.expires_at, target))
        self._keep(key, rec, msisdn=msisdn, currency=currency, amount=amount)
        acc.balance, acc.expires_at = rec.balance, rec.expires_at
        self.applied += 1
        return rec, False
