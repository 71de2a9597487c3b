"""log_checks.scan: tracebacks (chained ones as one), EasyDL error counts, OOM signs, key lines."""

from __future__ import annotations

from inferpack.doctor.log_checks import INTERNAL, LICENSE, scan

LOG = """\
2030-06-01 12:00:00,001 INFO inferpack.server: ready: POST /cats/IC
2030-06-01 12:00:01,000 INFO inferpack.access: 127.0.0.1 "POST /cats/IC" 200 50 1ms log_id=11 error_code=0
2030-06-01 12:00:02,000 INFO inferpack.server: log_id=12 error_code=337000 Auth check failed: expired
2030-06-01 12:00:02,001 INFO inferpack.access: 127.0.0.1 "POST /cats/IC" 401 8 1ms log_id=12 error_code=337000
2030-06-01 12:00:03,000 ERROR inferpack.server: log_id=13 unexpected failure on POST /cats/IC
Traceback (most recent call last):
  File "/opt/inferpack/app.py", line 10, in predict
    run()
KeyError: 'logits'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/opt/inferpack/app.py", line 12, in predict
    raise RuntimeError("engine failed") from exc
RuntimeError: engine failed
2030-06-01 12:00:03,002 INFO inferpack.access: 127.0.0.1 "POST /cats/IC" 500 8 1ms log_id=13 error_code=336000
2030-06-01 12:00:04,000 WARNING inferpack.license: license refused: expired
Traceback (most recent call last):
  File "<string>", line 1, in <module>
MemoryError
"""


def test_chained_tracebacks_count_once_named_by_the_last_exception() -> None:
    found = scan(LOG)
    assert found.tracebacks == [
        "2030-06-01 12:00:03 RuntimeError: engine failed",
        "2030-06-01 12:00:04 MemoryError",
    ]


def test_error_codes_count_distinct_log_ids() -> None:
    found = scan(LOG)  # the server line and the access line of one request are one request
    assert found.count(LICENSE) == 1 and found.count(INTERNAL) == 1 and found.count(336100) == 0


def test_oom_signs_and_key_lines_with_timestamps() -> None:
    found = scan(LOG)
    assert found.oom == ["MemoryError"]
    assert found.key_lines == [
        "2030-06-01 12:00:03,000 ERROR inferpack.server: log_id=13 unexpected failure on POST /cats/IC",
        "2030-06-01 12:00:03 RuntimeError: engine failed",
        "2030-06-01 12:00:04,000 WARNING inferpack.license: license refused: expired",
        "2030-06-01 12:00:04 MemoryError",
    ]
    assert found.lines_read == len(LOG.splitlines())


def test_a_traceback_without_timestamps_before_it() -> None:
    found = scan("Traceback (most recent call last):\n  File 'x'\nValueError: bad\n")
    assert found.tracebacks == ["time unknown ValueError: bad"]


def test_a_clean_log() -> None:
    found = scan("2030-06-01 12:00:00,001 INFO inferpack.server: ready\n")
    assert not found.tracebacks and not found.oom and not found.codes and not found.key_lines


def test_what_came_before_the_last_start_is_stale() -> None:
    restarted = LOG + "2030-06-01 12:05:00,000 INFO inferpack.server: ready: POST /cats/IC (onnxruntime)\n"
    found = scan(restarted)
    assert len(found.tracebacks) == 2 and found.fresh_tracebacks == [] and found.fresh_oom == []
    assert found.count(LICENSE) == 0  # counts are since the last start
    crashed_again = restarted + "Traceback (most recent call last):\n  File 'x'\nValueError: again\n"
    assert scan(crashed_again).fresh_tracebacks == ["2030-06-01 12:05:00 ValueError: again"]


def test_the_supervisor_starting_the_server_is_a_start() -> None:
    started = "2030-06-01T12:00:00+00:00 supervise[a]: started /py as pid 7 (restart 1)"
    text = f"Traceback (most recent call last):\nValueError: x\n{started}\n"
    assert scan(text).fresh_tracebacks == []
