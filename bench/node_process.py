"""An C{ivoms run} node in a child process, as the chaos soak and the cluster tests drive it."""
from __future__ import annotations

import re
import signal
import socket
import subprocess


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def edit_once(text: str, pattern: str, repl: str) -> str:
    """C{text} with the one match of C{pattern} (multi-line regex) replaced by C{repl};
    raises when the shipped configuration no longer has that line."""
    out, n = re.subn(pattern, repl, text, count=1, flags=re.M)
    if n != 1:
        raise RuntimeError("conf/ivoms.toml changed: %r not found" % (pattern,))
    return out


class NodeProcess:
    """Stopping the child process held in C{self.proc} (a C{subprocess.Popen} or None)."""

    proc: subprocess.Popen | None = None

    def kill(self) -> None:
        """SIGKILL: no clean stop, whatever was in flight is cut off."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(20)

    def stop(self) -> None:
        """SIGTERM and wait for the orderly stop; SIGKILL after 30 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
