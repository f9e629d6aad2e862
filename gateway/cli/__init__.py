"""The C{ivoms} command line (console script C{ivoms = gateway.cli:main}).

L{gateway.cli.main} builds the parser from the command modules
(C{vouchers}, C{activation}, C{admin}, C{serve}, C{loyalty},
C{housekeeping}), each of which registers its sub-commands and uses only
L{gateway.cli.runtime}.
"""
from __future__ import annotations

from gateway.cli.main import main

__all__ = ["main"]
