"""Structured events: text and JSON lines, spans, the run summary, and redaction."""

from __future__ import annotations

import io
import json

import pytest

from dome_tasks.errors import UsageError
from dome_tasks.events import MASK, EventLog, Redactor, unmaskable


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(fmt: str = "json", secrets=()) -> tuple[EventLog, io.StringIO, FakeClock]:
    stream, clock = io.StringIO(), FakeClock()
    log = EventLog(stream, fmt, redactor=Redactor(secrets), clock=clock, now=lambda: "T")
    return log, stream, clock


def test_json_lines_carry_the_standard_fields() -> None:
    log, stream, _ = make()
    log.emit("deploy", service="silo", environment="staging", duration_ms=1500, outcome="success",
             version_id="v1")
    line = json.loads(stream.getvalue())
    assert line == {"time": "T", "event": "deploy", "service": "silo", "environment": "staging",
                    "duration_ms": 1500, "outcome": "success", "version_id": "v1"}


def test_text_format_is_one_readable_line() -> None:
    log, stream, _ = make("text")
    log.emit("verify", service="silo", environment="staging", duration_ms=250, outcome="failure",
             detail="GET x -> 500")
    assert stream.getvalue().strip() == (
        '[dome] verify silo@staging failure (0.25s)  detail="GET x -> 500"'
    )


def test_span_times_and_marks_failures() -> None:
    log, stream, clock = make()
    with log.span("deploy", service="silo", environment="staging") as span:
        clock.now += 1.25
        span.fields["version_id"] = "v1"
    with pytest.raises(RuntimeError):
        with log.span("rollback", service="silo", environment="staging"):
            clock.now += 0.5
            raise RuntimeError("boom")
    first, second = (json.loads(x) for x in stream.getvalue().splitlines())
    assert first["duration_ms"] == 1250 and first["outcome"] == "success"
    assert first["version_id"] == "v1"
    assert second["outcome"] == "failure" and second["error"] == "boom"
    assert second["duration_ms"] == 500


def test_summary_counts_and_times_per_event() -> None:
    log, stream, clock = make()
    log.emit("deploy", outcome="success", duration_ms=1000)
    log.emit("deploy", outcome="success", duration_ms=3000)
    log.emit("verify", outcome="unhealthy", duration_ms=200)
    log.emit("note")
    clock.now += 5
    summary = log.summary()
    assert summary.counters == {"deploy.success": 2, "note.info": 1, "verify.unhealthy": 1}
    assert summary.timings["deploy"] == {"count": 2, "total_ms": 4000, "max_ms": 3000}
    assert summary.failures == 1 and summary.total_ms == 5000
    event = log.emit_summary()
    assert event.event == "run" and event.outcome == "failure"
    assert json.loads(stream.getvalue().splitlines()[-1])["counters"]["deploy.success"] == 2


def test_secret_values_never_reach_a_log_line() -> None:
    secret = "s3cr3t-VALUE-42"
    log, stream, _ = make("text", secrets=[secret + "\n"])
    log.emit("secret", service="silo", detail=f"wrangler said {secret}", nested={"a": [secret]},
             secret_value="anything")
    log.emit(f"oops {secret}")
    json_log, json_stream, _ = make("json", secrets=[secret])
    json_log.emit("secret", argv=["wrangler", "secret", "put", "X", secret])
    for output in (stream.getvalue(), json_stream.getvalue()):
        assert secret not in output
        assert MASK in output


def test_redactor_longest_first_and_environment_tokens() -> None:
    redact = Redactor(["s3cret-value", "s3cret-value-longer"])
    assert redact("x s3cret-value-longer y s3cret-value") == f"x {MASK} y {MASK}"
    env_redactor = Redactor.from_environ({"CLOUDFLARE_API_TOKEN": "tok-123", "OTHER": "x"})
    assert env_redactor("Bearer tok-123") == f"Bearer {MASK}"
    assert not Redactor([]) and Redactor([]).text("same") == "same"


def test_long_values_are_masked_anywhere_short_ones_only_as_whole_tokens() -> None:
    redact = Redactor(["pa55", "LongSecret99"])
    assert redact("xLongSecret99x") == f"x{MASK}x"
    assert redact("pa55") == MASK and redact("'pa55' in quotes") == f"'{MASK}' in quotes"
    assert redact("pa555 and spa55 stay") == "pa555 and spa55 stay"
    assert Redactor(["abc"]).text("abc") == "abc"  # too short to mask without mangling text


def test_a_one_letter_token_does_not_mangle_output() -> None:
    redact = Redactor.from_environ({"CLOUDFLARE_API_TOKEN": "t"})
    assert not redact
    text = "Uploaded silo-staging (0.31 sec)\nCurrent Version ID: 6a1b"
    assert redact(text) == text
    for word in ("staging", "TRUE", "secret"):  # common words are never credentials to mask
        assert not Redactor.from_environ({"CLOUDFLARE_API_TOKEN": word})


def test_ansi_colour_codes_count_as_token_boundaries() -> None:
    redact = Redactor(["hunt3r"])
    line = "\x1b[1mhunt3r\x1b[0m is the value"
    assert redact(line) == f"\x1b[1m{MASK}\x1b[0m is the value"


def test_a_short_secret_never_rewrites_json_keys_or_structure() -> None:
    log, stream, _ = make("json", secrets=["time", "event", "true"])
    log.emit("deploy", service="silo", outcome="success", verified=True, detail="time is up")
    line = json.loads(stream.getvalue())
    assert line["event"] == "deploy" and line["time"] == "T" and line["verified"] is True
    assert line["detail"] == f"{MASK} is up"


def test_spans_interrupted_by_a_signal_say_so() -> None:
    from dome_tasks.errors import Interrupted

    log, stream, _ = make()
    with pytest.raises(Interrupted):
        with log.span("deploy", service="silo", environment="staging"):
            raise Interrupted(2, command="wrangler deploy")
    event = json.loads(stream.getvalue())
    assert event["outcome"] == "interrupted"
    assert event["error"].startswith("interrupted by SIGINT while running `wrangler deploy`")
    assert log.summary().failures == 1


def test_quiet_keeps_events_and_unknown_format_is_refused() -> None:
    stream = io.StringIO()
    log = EventLog(stream, "json", quiet=True, redactor=Redactor())
    log.emit("x")
    assert stream.getvalue() == "" and len(log.events) == 1
    with pytest.raises(UsageError):
        EventLog(stream, "xml")


def test_a_multi_line_secret_is_masked_line_by_line() -> None:
    key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END KEY-----"
    redactor = Redactor([key])
    for line in key.splitlines():  # output reaches the redactor one line at a time
        assert redactor.text(f"wrangler echoed: {line}") == f"wrangler echoed: {MASK}"


def test_a_secret_that_is_an_ordinary_word_masks_nothing_and_says_why() -> None:
    redactor = Redactor()
    redactor.add("staging", ordinary=("silo", "staging", "silo-staging"))
    redactor.add("silo", ordinary=("silo", "staging", "silo-staging"))
    assert redactor.text("deploy silo-staging (staging) ok") == "deploy silo-staging (staging) ok"
    assert unmaskable("abc") == "shorter than 4 characters"
    assert unmaskable("silo", ("silo",)) == "an ordinary word ('silo')"
    assert unmaskable("password") == "an ordinary word ('password')"
    assert unmaskable("line one\nok") == "shorter than 4 characters"
    assert unmaskable("s3cr3t-v4lue-9f1c") is None
