"""C{python -m gateway.cli}: the C{ivoms} command line."""
from __future__ import annotations

import sys

from gateway.cli.main import main

sys.exit(main())
