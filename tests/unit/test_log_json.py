"""The JSON log line (issue 18): readable fields, no Twisted internals, no secrets."""
from __future__ import annotations

import io
import json

from twisted.logger import Logger, LogLevel, LogPublisher, textFileLogObserver
from twisted.python.failure import Failure

from gateway.logs import LogFile, json_event, make_observer


def _emit(**kw):
    events = []
    pub = LogPublisher(events.append)
    log = Logger(namespace="core.test", observer=pub)
    log.emit(kw.pop("level", LogLevel.info), kw.pop("fmt"), **kw)
    return events[0]


def test_one_object_per_line_with_time_level_message_namespace_and_fields():
    ev = _emit(fmt="batch {batch_id} of {count} vouchers", batch_id=7, count=1000)
    ev["log_time"] = 1764950400.25
    line = json_event(ev)
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line) == {"time": "2025-12-05T16:00:00.250Z", "level": "info",
                                "message": "batch 7 of 1000 vouchers",
                                "namespace": "core.test", "batch_id": 7, "count": 1000}


def test_no_twisted_internals_and_objects_become_text():
    class Peer:
        def __str__(self):
            return "peer-1"
    ev = _emit(level=LogLevel.warn, fmt="lost {peer}", peer=Peer(), codes=(1, 2), extra={"a": b"x"})
    doc = json.loads(json_event(ev))
    assert not [k for k in doc if k.startswith("log_")]
    assert "log_flattened" not in json_event(ev) and "log_format" not in json_event(ev)
    assert doc["level"] == "warn" and doc["peer"] == "peer-1" and doc["message"] == "lost peer-1"
    assert doc["codes"] == [1, 2] and doc["extra"] == {"a": "x"}


def test_fields_naming_an_hrn_or_a_secret_are_never_written():
    ev = _emit(fmt="activation {txn_id}", txn_id=5, hrn="12345678901234", voucherHrn="1",
               password="pw", admin_password="pw", pin="1234", api_token="t",
               mapping="kept", key_id=3, spin="kept")
    doc = json.loads(json_event(ev))
    for gone in ("hrn", "voucherHrn", "password", "admin_password", "pin", "api_token"):
        assert gone not in doc
    assert "12345678901234" not in json_event(ev)
    assert doc["mapping"] == "kept" and doc["key_id"] == 3 and doc["spin"] == "kept"


def test_a_failure_adds_exception_and_traceback_as_text():
    try:
        1 / 0
    except ZeroDivisionError:
        f = Failure()
    ev = _emit(level=LogLevel.critical, fmt="unit {n} failed", n=1, log_failure=f)
    doc = json.loads(json_event(ev))
    assert doc["level"] == "critical" and doc["message"] == "unit 1 failed"
    assert doc["exception"].startswith("ZeroDivisionError: ")
    assert "Traceback" in doc["traceback"]


def test_a_broken_format_still_gives_a_line():
    ev = _emit(fmt="value {missing}")
    doc = json.loads(json_event(ev))
    assert doc["namespace"] == "core.test" and isinstance(doc["message"], str)


def test_level_filter_and_text_format_unchanged():
    out = io.StringIO()
    obs = make_observer("json", "warn", out)
    obs(_emit(fmt="quiet"))
    obs(_emit(level=LogLevel.error, fmt="loud"))
    lines = out.getvalue().splitlines()
    assert [json.loads(x)["message"] for x in lines] == ["loud"]
    text, expected = io.StringIO(), io.StringIO()
    ev = _emit(fmt="hello {who}", who="ops")
    make_observer("text", "info", text)(ev)
    textFileLogObserver(expected)(ev)
    assert text.getvalue() == expected.getvalue()
    assert "[core.test#info] hello ops" in text.getvalue()


def test_log_file_reopen_writes_to_a_new_file_at_the_same_path(tmp_path):
    path = tmp_path / "ivoms.log"
    f = LogFile(str(path))
    f.write("one\n")
    path.rename(tmp_path / "ivoms.log.1")
    f.write("two\n")
    f.reopen()
    f.write("three\n")
    f.close()
    assert (tmp_path / "ivoms.log.1").read_text() == "one\ntwo\n"
    assert path.read_text() == "three\n"
