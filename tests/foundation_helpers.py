"""Helpers for the foundation tests that must be importable by spawned processes."""
from __future__ import annotations


def race_set_state(url, batch_id, target, reason, barrier, results, actor):
    """In a fresh process: wait at C{barrier}, then move batch C{batch_id} to C{target}.

    Puts C{(actor, changed, skipped)} or C{(actor, 'error', text)} on C{results}.
    """
    from core.db import Store
    from core.timeutil import now_ms
    from core.vouchers import Selection, set_state
    store = Store(url)
    try:
        store.run_sync(lambda tx: tx.execute_raw("SELECT 1"))   # connect before the race
        barrier.wait(timeout=30)
        res = store.run_sync(set_state, Selection.of_batch(batch_id), target, actor=actor,
                             reason=reason, now=now_ms())
        results.put((actor, res.changed, res.skipped))
    except Exception as e:  # noqa: BLE001 - reported to the parent
        results.put((actor, "error", "%s: %s" % (type(e).__name__, e)))
    finally:
        store.dispose()


def set_toml_key(path, section, key, value):
    """Set C{key = value} (C{value} a TOML literal) inside C{[section]} of the file at
    C{path}, replacing the existing line; the shipped files comment every default, so
    the key is expected to be there."""
    import re
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    header = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+\s*(#.*)?$")
    current = ""
    for i, line in enumerate(lines):
        m = header.match(line)
        if m:
            current = m.group(1)
            continue
        if current == section and re.match(r"^\s*%s\s*=" % re.escape(key), line):
            lines[i] = "%s = %s\n" % (key, value)
            break
    else:
        raise AssertionError("no %s.%s in %s" % (section, key, path))
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(lines))
