"""Run the billing simulator as a child process (tests and benchmarks).

C{SimProcess.spawn(*options)} starts C{python -m billing.sim} on
127.0.0.1 with ephemeral ports unless given, waits (bounded) for its
ready line and exposes the bound ports; C{stop()} terminates it.
"""
from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time

_READY = re.compile(r"billing-sim ready diameter=(\d+) cai=(\d+)(?: ucip=(\d+))?")


class SimProcess:
    """A running simulator child process."""

    def __init__(self, proc: subprocess.Popen, diameter_port: int,
                 cai_port: int, ucip_port: int = 0):
        self.proc = proc
        self.diameter_port = diameter_port
        self.cai_port = cai_port
        self.ucip_port = ucip_port

    @classmethod
    def spawn(cls, *options: str, diameter_port: int = 0, cai: bool = False,
              cai_port: int = 0, ucip: bool = False, ucip_port: int = 0,
              timeout: float = 15.0) -> "SimProcess":
        """Start the simulator; raises RuntimeError if not ready in time."""
        args = [sys.executable, "-m", "billing.sim", "--diameter",
                "tcp:%d:interface=127.0.0.1" % diameter_port]
        if cai:
            args += ["--cai", "tcp:%d:interface=127.0.0.1" % cai_port]
        if ucip:
            args += ["--ucip", "tcp:%d:interface=127.0.0.1" % ucip_port]
        args += list(options)
        root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=root + os.pathsep +
                   os.environ.get("PYTHONPATH", ""))
        proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=env,
                                cwd=root)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                line = proc.stdout.readline()
                m = _READY.search(line)
                if m:
                    return cls(proc, int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
                if not line and proc.poll() is not None:
                    break
            elif proc.poll() is not None:
                break
        proc.kill()
        proc.wait(5)
        raise RuntimeError("billing simulator did not start: %s" % (args,))

    def kill(self) -> None:
        """Die abruptly (SIGKILL): a billing system crashing mid-flight."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """Terminate (SIGTERM), then kill after 10 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc.stdout:
            self.proc.stdout.close()
