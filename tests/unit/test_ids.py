"""Transaction ids: random, unique, in the version-4 UUID form, with few system calls."""
from __future__ import annotations

import re
import threading
import uuid

from core.ids import IdSource, new_txn_id


def test_ids_look_like_uuid4_hex_and_do_not_repeat():
    ids = [new_txn_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for i in ids[:50]:
        assert re.fullmatch(r"[0-9a-f]{32}", i)
        assert uuid.UUID(hex=i).version == 4


def test_one_draw_from_the_os_serves_many_ids():
    calls = []

    def urandom(n):
        calls.append(n)
        return bytes(range(256)) * (n // 256)
    src = IdSource(urandom)
    ids = [src.new() for _ in range(300)]
    assert calls == [4096, 4096]              # 256 ids per draw
    assert ids[0] == uuid.UUID(bytes=bytes(range(16)), version=4).hex


def test_threads_never_get_the_same_id():
    src = IdSource()
    out: list[str] = []

    def work():
        local = [src.new() for _ in range(2000)]
        out.extend(local)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 8000 == len(set(out))
