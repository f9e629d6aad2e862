"""The C{ivoms} command line: the parser, the command modules it registers, and C{main}."""
from __future__ import annotations

import argparse
import sys

from core.db import StoreError
from core.generation import GenerationError
from core.keys import KeyFileError
from core.users import UserError
from core.vouchers import SelectionError
from gateway.cli import activation, admin, housekeeping, loyalty, serve, settle, vouchers
from gateway.cli.runtime import EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError
from gateway.config import DEFAULT_CONFIG, ConfigError

#: The command modules, in the order their sub-commands are listed in C{--help}.
COMMAND_MODULES = (vouchers, activation, settle, admin, serve, loyalty, housekeeping)

#: The failures printed as one C{ivoms: error:} line with exit status 1.
USER_ERRORS = (CliError, ConfigError, StoreError, KeyFileError, GenerationError, SelectionError,
               UserError)


def main(argv=None) -> int:
    """Entry point of the C{ivoms} console script.

    @param argv: the arguments (default: C{sys.argv[1:]}).
    @return: the exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args) or EXIT_OK
    except USER_ERRORS as e:
        print("ivoms: error: %s" % e, file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("ivoms: interrupted", file=sys.stderr)
        return 130


def version_text() -> str:
    """C{ivoms <version> (Python <v>, Twisted <v>)}; the version of the installed package."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def of(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"
    return "ivoms %s (Python %s, Twisted %s)" % (of("ivoms"), platform.python_version(),
                                                 of("twisted"))


def build_parser() -> argparse.ArgumentParser:
    """The C{ivoms} parser with every command module's sub-commands registered."""
    p = argparse.ArgumentParser(prog="ivoms", description="iVOMS - iVoucher management system")
    p.add_argument("--config", default=DEFAULT_CONFIG,
                   help="configuration file (default: %(default)s, or $IVOMS_CONFIG)")
    p.add_argument("--version", action="version", version=version_text(),
                   help="print the iVOMS, Python and Twisted versions and exit")
    sub = p.add_subparsers(metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return p
