"""Drain templates: variable parts are masked, so one kind of message is one template with a stable id."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.collectors.log_templates import LogTemplates


@pytest.mark.parametrize(
    ("message", "masked"),
    [
        ("order 6f80c8fa-9c75-4f45-8b12-c8f4e43c9eee placed", "order <UUID> placed"),
        ("request 39a7a6799fe6434f82261a193fd9abf8 failed", "request <HEX> failed"),
        ("lock 0x7f3a held", "lock <HEX> held"),
        (
            "Uvicorn running on http://127.0.0.1:20101 (Press CTRL+C to quit)",
            "Uvicorn running on http://<IP> (Press CTRL+C to quit)",
        ),
        ("connect to 10.0.0.7 refused", "connect to <IP> refused"),
        ("Started server process [48213]", "Started server process [<NUM>]"),
        ("charged 12.50 EUR, 3 retries.", "charged <NUM> EUR, <NUM> retries."),
        ("payment took 120ms then 1.5s", "payment took <DURATION> then <DURATION>"),
        ("receipt sent to jane.doe+shop@example.co.uk", "receipt sent to <EMAIL>"),
        ("""search "red shoes" for key 'sku'""", "search <STR> for key <STR>"),
        # Words with digits or hex letters, apostrophes and versions are not variables.
        ("can't add sha256 digest with client v1.2.3", "can't add sha256 digest with client v1.2.3"),
    ],
)
def test_masks(message: str, masked: str) -> None:
    assert LogTemplates().mask(message) == masked


def test_messages_differing_in_variables_share_one_template() -> None:
    templates = LogTemplates()
    variants = [
        "order 6f80c8fa-9c75-4f45-8b12-c8f4e43c9eee paid 12.50 in 120ms from 10.0.0.1:5672",
        "order 47590a32-e616-4d7d-81b0-a68ca8c08e75 paid 7 in 3s from 192.168.1.20:5672",
        "order 0d6c1f52-3a85-4c47-9a35-6c0a1e1b2f11 paid 1999.99 in 15ms from 127.0.0.1",
    ]
    results = [templates.add(message) for message in variants]
    assert {template_id for template_id, _ in results} == {results[0][0]}
    assert results[-1][1] == "order <UUID> paid <NUM> in <DURATION> from <IP>"
    assert templates.template(results[0][0]) == "order <UUID> paid <NUM> in <DURATION> from <IP>"
    assert len(templates) == 1


def test_different_messages_get_different_templates() -> None:
    templates = LogTemplates()
    messages = [
        "order placed",
        "order paid",
        "order fulfilled",
        "request failed",
        "cache read failed, using the database",
        "recommendations unavailable, serving the page without them",
        "Started server process [4821]",
        "Finished server process [4821]",
    ]
    ids = [templates.add(message)[0] for message in messages]
    assert len(set(ids)) == len(messages)
    # Ids stay with their template: the same kind of message maps back to the id it got first.
    assert templates.add("Started server process [977]")[0] == ids[6]
    assert templates.add("order paid")[0] == ids[1]
    assert templates.templates()[ids[4]] == "cache read failed, using the database"


def test_one_unmasked_variable_word_in_a_longer_message_generalises() -> None:
    templates = LogTemplates()
    first_id, _ = templates.add("user alice logged in")
    second_id, template = templates.add("user bob logged in")
    assert second_id == first_id
    assert template == "user <*> logged in"
    assert templates.template(first_id) == "user <*> logged in"


def test_unknown_template_id() -> None:
    templates = LogTemplates()
    assert templates.template("1") is None
    assert templates.template("not-an-id") is None


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "drain" / "templates.bin"
    before = LogTemplates(state)
    placed, _ = before.add("order 1 placed")
    failed, _ = before.add("payment for order 1 failed: card declined")
    assert state.exists()

    after = LogTemplates(state)
    assert after.templates() == before.templates()
    assert after.add("order 2 placed")[0] == placed
    assert after.add("payment for order 9 failed: card declined")[0] == failed
    new_id, _ = after.add("warehouse reservation expired")
    assert new_id not in {placed, failed}  # the id counter was restored too, so ids are never reused
