"""Every option of every C{ivoms} command has its own help text (issue 18)."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from gateway.cli.main import build_parser, main


def _walk(parser, path=("ivoms",)):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, path + (name,))
        else:
            yield path, action


def test_every_option_and_argument_has_help():
    missing, seen = [], {}
    for path, action in _walk(build_parser()):
        if isinstance(action, argparse._HelpAction):
            continue
        if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
            missing.append("%s %s" % (" ".join(path), "/".join(action.option_strings)
                                      or action.dest))
        seen.setdefault(path, []).append(action.help)
    assert not missing, "options without help: %s" % ", ".join(missing)
    # one command's options are each described, not one text repeated
    for path, texts in seen.items():
        repeated = {t for t in texts if texts.count(t) > 1}
        assert not repeated, "%s repeats %r" % (" ".join(path), repeated)


def test_every_command_has_help():
    def commands(parser, path=("ivoms",)):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {a.dest for a in action._choices_actions if a.help}
                for name, sub in action.choices.items():
                    yield path + (name,), name in helped
                    yield from commands(sub, path + (name,))
    assert [" ".join(p) for p, ok in commands(build_parser()) if not ok] == []


def test_version(capsys):
    from importlib.metadata import version
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    assert out.startswith("ivoms %s " % version("ivoms")) and "Twisted" in out


@pytest.mark.integration     # starts a Python process
def test_version_from_the_console():
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "--version"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("ivoms ")
