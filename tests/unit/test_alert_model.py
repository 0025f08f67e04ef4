"""The alert's identity and its Alertmanager shape."""

from __future__ import annotations

from vigil.alerts.model import Alert, fingerprint


def test_the_fingerprint_is_the_label_set_whatever_the_order_or_annotations() -> None:
    a = Alert({"alertname": "VigilAnomaly", "service": "catalog"}, {"summary": "slow"}, starts_at=1.0)
    b = Alert({"service": "catalog", "alertname": "VigilAnomaly"}, {"summary": "slower"}, starts_at=2.0)
    assert a.fingerprint == b.fingerprint == fingerprint({"service": "catalog", "alertname": "VigilAnomaly"})
    assert a.fingerprint != Alert({"alertname": "VigilAnomaly", "service": "cart"}).fingerprint
    # Not confusable by moving text between a name and a value.
    assert fingerprint({"a": "b=c"}) != fingerprint({"a=b": "c"})


def test_the_api_body_has_rfc3339_times_and_endsat_only_once_resolved() -> None:
    firing = Alert({"alertname": "X"}, starts_at=1795552680.25, generator_url="http://vigil/x")
    assert firing.to_api() == {
        "labels": {"alertname": "X"},
        "annotations": {},
        "startsAt": "2026-11-24T20:38:00.250Z",
        "generatorURL": "http://vigil/x",
    }
    resolved = firing.resolve(1795552740.0)
    assert resolved.to_api()["endsAt"] == "2026-11-24T20:39:00.000Z"
    assert resolved.resolved(now=1795552740.0)
    assert not resolved.resolved(now=1795552739.0)
    assert not firing.resolved(now=1e12)
