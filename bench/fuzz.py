"""Coverage-guided fuzzing of every decoder with atheris, for N minutes each.

    python bench/fuzz.py --minutes 10 --decoder all
    python bench/fuzz.py --minutes 1 --decoder smpp --decoder tcap

Each decoder runs in a child process under libFuzzer (atheris, the C{fuzz}
extra), over the same targets as the property tests (C{tests/fuzz_targets}).
An input is a crash when the decoder raises anything but its documented error
type; the harness records each distinct crash (exception type and raising
line) with its input under C{--out} and keeps fuzzing, so one run counts all
of them.  A hang (C{--timeout} seconds on one input) ends that decoder's run
and counts as a crash.  Printed per decoder: executions, libFuzzer's edge
coverage (C{cov}) and features (C{ft}), corpus size and distinct crashes.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

#: Packages whose bytecode atheris instruments for coverage.
INSTRUMENTED = ["protocols", "billing", "gateway", "admin", "core"]


def _child(name: str, out_dir: str, libfuzzer_args: list[str]) -> None:
    """Fuzz one decoder in this process until libFuzzer's time limit ends it."""
    import atheris
    with atheris.instrument_imports(include=INSTRUMENTED):
        from tests.fuzz_targets import targets
        target = targets()[name]
        try:                          # import the decoder's lazily imported modules
            target.run(b"")
        except Exception:
            pass
    seen: set[tuple] = set()
    crash_log = os.path.join(out_dir, "crashes.jsonl")

    def one_input(data: bytes) -> None:
        try:
            target.run(data)
        except target.errors:
            pass
        except Exception as e:       # anything else escaping the decoder is a crash
            tb = traceback.extract_tb(e.__traceback__)[-1]
            key = (type(e).__name__, tb.filename, tb.lineno)
            if key in seen:
                return
            seen.add(key)
            with open(crash_log, "a") as f:
                f.write(json.dumps({"decoder": name, "error": type(e).__name__,
                                    "message": str(e)[:200],
                                    "where": "%s:%d" % (os.path.relpath(tb.filename, ROOT),
                                                        tb.lineno),
                                    "input": data.hex()}) + "\n")

    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input)
    atheris.Fuzz()


_STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)", re.M)
_EXECUTED = re.compile(r"stat::number_of_executed_units: (\d+)")


def run_decoder(name: str, seconds: int, out_dir: str, timeout: int) -> dict:
    """Fuzz C{name} for C{seconds} in a child process; its figures as a dict."""
    work = os.path.join(out_dir, name)
    corpus = os.path.join(work, "corpus")
    os.makedirs(corpus, exist_ok=True)
    args = [sys.executable, os.path.abspath(__file__), "--child", name, "--out", work, "--",
            "-max_total_time=%d" % seconds, "-timeout=%d" % timeout, "-print_final_stats=1",
            "-max_len=4096", "-rss_limit_mb=2048", "-artifact_prefix=%s/" % work, corpus]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT)
    log = proc.stderr + proc.stdout
    with open(os.path.join(work, "libfuzzer.log"), "w") as f:
        f.write(log)
    status = _STATUS.findall(log)
    executed = _EXECUTED.search(log)
    crashes = []
    crash_log = os.path.join(work, "crashes.jsonl")
    if os.path.exists(crash_log):
        with open(crash_log) as f:
            crashes = [json.loads(line) for line in f if line.strip()]
    hung = proc.returncode != 0 and "timeout" in log.lower()
    last = status[-1] if status else ("0", "0", "0", "0")
    return {"decoder": name, "seconds": seconds,
            "executions": int(executed.group(1)) if executed else int(last[0]),
            "cov": int(last[1]), "ft": int(last[2]), "corpus": int(last[3]),
            "crashes": len(crashes) + (1 if hung else 0),
            "crash_details": crashes + ([{"error": "hang"}] if hung else []),
            "exit": proc.returncode}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="minutes per decoder")
    p.add_argument("--decoder", action="append", default=[],
                   help="decoder name, or 'all' (default); repeatable")
    p.add_argument("--out", default=None, help="directory for corpora, logs and crashes")
    p.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    p.add_argument("--json", action="store_true", help="print the figures as JSON lines")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("libfuzzer", nargs="*", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        _child(a.child, a.out, a.libfuzzer)
        return 0
    from tests.fuzz_targets import targets
    names = sorted(targets())
    chosen = names if not a.decoder or "all" in a.decoder else a.decoder
    unknown = [n for n in chosen if n not in names]
    if unknown:
        p.error("unknown decoder %s (known: %s)" % (", ".join(unknown), ", ".join(names)))
    out = a.out or tempfile.mkdtemp(prefix="ivoms-fuzz-")
    seconds = max(1, int(a.minutes * 60))
    print("%-12s %8s %12s %7s %7s %7s %8s" % ("decoder", "seconds", "executions", "cov", "ft",
                                              "corpus", "crashes"), flush=True)
    total = 0
    for name in chosen:
        r = run_decoder(name, seconds, out, a.timeout)
        total += r["crashes"]
        if a.json:
            print(json.dumps(r), flush=True)
        else:
            print("%-12s %8d %12d %7d %7d %7d %8d" % (name, seconds, r["executions"], r["cov"],
                                                      r["ft"], r["corpus"], r["crashes"]), flush=True)
            for c in r["crash_details"]:
                print("    crash: %s at %s: %s" % (c.get("error"), c.get("where", "-"),
                                                   c.get("message", "")), flush=True)
    print("output in %s" % out)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
