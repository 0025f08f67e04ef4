"""Silence requests as the CLI builds them, before Alertmanager sees them (the real round trip is in
tests/integration/test_silences.py)."""

from __future__ import annotations

import pytest

from vigil.alerts.alertmanager import parse_time
from vigil.alerts.silences import Matcher, Silence, plan_silence
from vigil.durations import parse_moment

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("service=catalog", Matcher("service", "catalog")),
        ("severity=~page|ticket", Matcher("severity", "page|ticket", is_regex=True)),
        ("env != dev", Matcher("env", "dev", is_equal=False)),
        ('pod!~"canary-.*"', Matcher("pod", "canary-.*", is_regex=True, is_equal=False)),
        ("summary=a=b", Matcher("summary", "a=b")),
    ],
)
def test_matchers_parse_like_amtool(text: str, expected: Matcher) -> None:
    assert Matcher.parse(text) == expected
    assert Matcher.parse(str(expected)) == expected  # str() gives the filter form, which parses back


@pytest.mark.parametrize("text", ["service", "=catalog", "9x=1", "service~catalog"])
def test_malformed_matchers_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a matcher"):
        Matcher.parse(text)


def test_the_api_body_round_trips() -> None:
    silence = plan_silence(
        ["service=catalog", "severity=~page|ticket"], now=NOW, duration="2h", comment="deploy", author="ana"
    )
    body = silence.to_api()
    assert body["matchers"][1] == {
        "name": "severity",
        "value": "page|ticket",
        "isRegex": True,
        "isEqual": True,
    }
    assert (body["createdBy"], body["comment"]) == ("ana", "deploy")
    assert Silence.from_api({**body, "id": "x", "status": {"state": "active"}}) == Silence(
        silence.matchers, NOW, NOW + 7200, "ana", "deploy", id="x", state="active"
    )


def test_a_maintenance_window_starts_later() -> None:
    window = plan_silence(["service=search"], now=NOW, duration="30m", comment="reindex", start="+2h")
    assert (window.starts_at, window.ends_at) == (NOW + 7200, NOW + 9000)
    assert parse_moment("in 90m", NOW) == NOW + 5400
    assert parse_moment("2027-01-15T18:00", NOW) == parse_time("2027-01-15T18:00:00Z")


@pytest.mark.parametrize(
    ("matchers", "message"),
    [
        ([], "at least one matcher"),
        (["service=~.*"], "non-empty"),
        (["service!=catalog"], "non-empty"),
    ],
)
def test_silences_that_would_mute_everything_are_refused(matchers: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_silence(matchers, now=NOW, duration="1h", comment="x")


def test_a_silence_needs_a_reason_and_a_length() -> None:
    with pytest.raises(ValueError, match="comment"):
        plan_silence(["service=catalog"], now=NOW, duration="1h", comment=" ")
    with pytest.raises(ValueError, match="last a while"):
        plan_silence(["service=catalog"], now=NOW, duration="0s", comment="x")


def test_alertmanager_times_with_nanoseconds_parse() -> None:
    assert parse_time("2027-01-15T18:00:00.123456789Z") == pytest.approx(
        parse_time("2027-01-15T18:00:00Z") + 0.123456
    )
    assert parse_time("2027-01-15T18:00:00+01:00") == parse_time("2027-01-15T17:00:00Z")
