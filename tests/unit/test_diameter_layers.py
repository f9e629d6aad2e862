"""Tests that the Diameter message layer is pure: it never imports twisted."""
import os
import subprocess
import sys
import textwrap

import pytest

_PROBE = textwrap.dedent("""
    import importlib, pkgutil, sys

    class BlockTwisted:
        def find_spec(self, name, path=None, target=None):
            if name == "twisted" or name.startswith("twisted."):
                raise ImportError("twisted is blocked: " + name)
            return None

    sys.meta_path.insert(0, BlockTwisted())
    import billing.diameter.message as message
    for info in pkgutil.iter_modules(message.__path__):
        importlib.import_module("billing.diameter.message." + info.name)
    assert not any(m == "twisted" or m.startswith("twisted.")
                   for m in sys.modules), "twisted was imported"
""")


@pytest.mark.integration     # starts a Python process
def test_message_layer_imports_without_twisted():
    """
    Every module of L{billing.diameter.message} imports in an interpreter
    where importing twisted fails.
    """
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
