"""The ``ivoms`` command line: init, keys, db, generate, vouchers, activate, transactions, run."""
from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys

from gateway.config import DEFAULT_CONFIG, ConfigError, load_config

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def _errors():
    from core.db import StoreError
    from core.generation import GenerationError
    from core.keys import KeyFileError
    from core.users import UserError
    from core.vouchers import SelectionError
    return (CliError, ConfigError, StoreError, KeyFileError, GenerationError, SelectionError,
            UserError)


def main(argv=None) -> int:
    """Entry point of the ``ivoms`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args) or EXIT_OK
    except _errors() as e:
        print("ivoms: error: %s" % e, file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("ivoms: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ivoms", description="iVOMS - iVoucher management system")
    p.add_argument("--config", default=DEFAULT_CONFIG,
                   help="configuration file (default: %(default)s, or $IVOMS_CONFIG)")
    sub = p.add_subparsers(metavar="COMMAND")
    from gateway import cli_commands as c
    c.register(sub)
    return p


def config_of(args):
    """The validated configuration named by ``--config``."""
    return load_config(args.config)


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CliError("%r is not a date (YYYY-MM-DD)" % text)


def confirm(prompt: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(prompt + " [y/N] ").strip().lower() in ("y", "yes")


def whoami() -> str:
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli:%d" % os.getuid()


if __name__ == "__main__":
    sys.exit(main())
