"""Drain templates: variable parts are masked, so one kind of message is one template with a stable id."""

from __future__ import annotations

from pathlib import Path

import pytest
from drain3.masking import LogMasker
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vigil.collectors.log_masks import GuardedMasker, may_span_tokens
from vigil.collectors.log_templates import LogTemplates, default_config


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
        ("retried after 5 seconds, then 250 ms", "retried after <DURATION>, then <DURATION>"),
        # A size is one value however written, with its equivalent in other units or without.
        ("1910 bytes (1.86 KB) sent, 276 bytes received", "<SIZE> sent, <SIZE> received"),
        ("phys_ram=64172MB used_ram=2.5 GiB", "phys_ram=<SIZE> used_ram=<SIZE>"),
        ("receipt sent to jane.doe+shop@example.co.uk", "receipt sent to <EMAIL>"),
        ("""search "red shoes" for key 'sku'""", "search <STR> for key <STR>"),
        # Words with digits or hex letters, apostrophes and versions are not variables.
        ("can't add sha256 digest with client v1.2.3", "can't add sha256 digest with client v1.2.3"),
        # Ids of a name and numbers joined by underscores; snake-case words without a number part are not.
        (
            "Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106",
            "Receiving block <ID> src: /<IP>",
        ),
        ("attempt_1445144423722_0020_m_000000_0 done", "<ID> done"),
        ("http_5xx db_client counters", "http_5xx db_client counters"),
        # Timestamps are one variable however many spaces they hold; paths need two segments.
        ("connection from 10.0.0.7 at Sun Jul  3 10:05:25 2005", "connection from <IP> at <TIME>"),
        ("started at 2024-05-01T10:00:00Z", "started at <TIME>"),
        ("reading /var/lib/app/data.db failed", "reading <PATH> failed"),
        ("GET /healthz ok", "GET /healthz ok"),
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


def test_tokens_of_one_shape_match_and_keep_their_constant_part() -> None:
    templates = LogTemplates()
    first_id, _ = templates.add("generating core.4505 for job 7")
    second_id, template = templates.add("generating core.23873 for job 12")
    assert second_id == first_id
    assert template == "generating core.<*> for job <NUM>"
    # A plain word in that place is not a variable of that shape.
    assert templates.add("generating space.dump for job 3 now")[0] != first_id


def test_a_list_of_any_length_is_one_variable() -> None:
    templates = LogTemplates()
    ids = {
        templates.add(message)[0]
        for message in (
            "deleting blocks blk_1 blk_2 blk_3",
            "deleting blocks blk_4",
            "deleting blocks blk_5 blk_6",
        )
    }
    assert len(ids) == 1
    assert templates.templates().popitem()[1] == "deleting blocks <ID>"


def test_a_long_message_that_changes_two_words_is_another_event() -> None:
    base = "authentication failure; logname= uid=0 tty=ssh ruser= rhost={} user={}"
    templates = LogTemplates()
    root, _ = templates.add(base.format("a.example", "root"))
    # Two changed words are a different event, although seven of nine tokens (0.78 > sim_th) match ...
    assert templates.add(base.format("b.example", "bob"))[0] != root
    # ... one changed word is a variable.
    assert templates.add(base.format("a.example", "carol"))[0] == root
    # Allowing two changed words merges them.
    lenient = LogTemplates(max_word_changes=2)
    first, _ = lenient.add(base.format("a.example", "root"))
    assert lenient.add(base.format("b.example", "bob"))[0] == first


def test_places_that_already_vary_are_not_changed_words() -> None:
    templates = LogTemplates()
    first, _ = templates.add("session opened for user alice by sshd on console")
    assert templates.add("session opened for user bob by sshd on console")[0] == first
    # "user" is now a wildcard: a new user and one more changed word still join the template.
    second, template = templates.add("session opened for user carol by cron on console")
    assert second == first
    assert template == "session opened for user <*> by <*> on console"


def test_short_messages_differing_in_one_word_stay_apart() -> None:
    templates = LogTemplates()
    ids = {templates.add(message)[0] for message in ("cupsd startup succeeded", "cupsd shutdown succeeded")}
    assert len(ids) == 2


def test_vigil_run_keeps_each_replicas_templates_with_its_state(tmp_path: Path) -> None:
    """The log novelty detector's series are labelled by template id: after a restart the same message
    must come back under the same id, or what was learned about it is learned about another."""
    from vigil.collectors.logs import LogCollector
    from vigil.config import VigilConfig
    from vigil.runtime.build import build_collectors
    from vigil.runtime.service import templates_state

    config = VigilConfig.model_validate(
        {
            "state_dir": str(tmp_path),
            "shard": {"index": 1, "count": 2},
            "sources": {"elasticsearch": {"url": "http://127.0.0.1:9"}},
        }
    )
    state = templates_state(config)
    assert state == tmp_path / "log-templates-1-of-2.json"  # one file per replica, as its checkpoint

    def templates(state: Path | None) -> LogTemplates:
        (collector,) = build_collectors(config, state)
        assert isinstance(collector, LogCollector)
        return collector.templates

    first = templates(state)
    placed = first.add("order 17 placed by customer 4")[0]
    paid = first.add("payment 9 captured")[0]
    again = templates(state)  # the process restarted
    assert again.add("payment 12 captured")[0] == paid
    assert again.add("order 18 placed by customer 5")[0] == placed
    assert len(templates(None)) == 0  # without the state (no checkpointing) a replica starts over


def test_counted_templates_carry_their_final_text_and_first_example() -> None:
    from vigil.collectors.log_templates import count_templates

    lines = [("cart", "cart emptied"), ("orders", "order placed by alice"), ("orders", "order placed by bob")]
    lines += [("orders", "order placed by carol"), ("cart", "cart emptied")]
    counted = count_templates(lines, LogTemplates())
    assert [(c.template, c.lines) for c in counted] == [("order placed by <*>", 3), ("cart emptied", 2)]
    assert counted[0].example == "order placed by alice"  # as written, before it generalised
    assert counted[0].services == {"orders": 3}


def test_a_repeated_message_takes_its_twins_template_without_a_second_search() -> None:
    templates = LogTemplates()
    first = templates.add("order 17 paid in 35ms")
    assert templates.add("order 18 paid in 12ms")[0] == first[0]  # the same once masked: the memo
    assert templates.miner.drain.id_to_cluster[int(first[0])].size == 2  # counted all the same
    # A quoted value may hold spaces: such lines are masked whole, as Drain always did.
    quoted = templates.add('search "red shoes" returned 4 items')
    assert templates.add('search "blue summer dress" returned 9 items')[0] == quoted[0]
    assert templates.template(quoted[0]) == "search <STR> returned <NUM> items"


# --- the shortcuts change nothing: guarded masks, per-token and per-line memos ----------------------------

_MASK_ALPHABET = "0123456789abcdefxXsmhABCZ_-:/.@'\" <>kqzKMGiByt()é٣"  # ٣: \d matches other digits


# Pieces the masks are made of, so that random lines hit their edges (a size and its equivalent, a unit
# after a space, a quote, a date) far more often than random characters would.
_PIECES = (
    "1",
    "0",
    "12",
    "1.5",
    " ",
    "bytes",
    "B",
    "KB",
    " (1KB)",
    " (1.5 KB)",
    " sec",
    "ms",
    "s",
    "0x1f",
    ":",
    "/",
    "-",
    '"',
    "'",
    "Jun ",
    "abc",
    "_",
    "@",
    ".",
    "=",
    "(",
    ")",
)


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=_MASK_ALPHABET, max_size=40),
        st.lists(st.sampled_from(_PIECES), max_size=14).map("".join),
    )
)
def test_guarded_masks_mask_exactly_as_running_every_mask(text: str) -> None:
    config = default_config()
    plain = LogMasker(config.masking_instructions, config.mask_prefix, config.mask_suffix)
    guarded = GuardedMasker(config.masking_instructions, config.mask_prefix, config.mask_suffix)
    assert guarded.mask(text) == plain.mask(text)


_MASKER = LogTemplates()  # masking is pure: one instance serves every example


@settings(max_examples=5000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14).map("".join))
def test_lines_the_memo_masks_token_by_token_mask_as_a_whole(text: str) -> None:
    """Where no mask can span a space (``may_span_tokens`` says so), masking each token alone is masking
    the line: the token memo relies on it."""
    assume(not may_span_tokens(text))
    assert [_MASKER.mask(token) for token in text.split()] == _MASKER.mask(text).split()


_SKELETONS = (
    "Receiving block blk_{n} src: /10.{d}.{d}.{d}:{n} dest: /10.{d}.{d}.{d}:50010",
    "core.{n} instruction cache parity error corrected",
    "session opened for user u{d} by (uid={n})",
    "took {n}ms on 0x{h} node-{d}",
    'search "red {d}" returned {n} items',
    "job_{n}_{d} finished in {n}.{d}s at 2024-05-0{d}T10:00:00Z",
    "order {n} paid",
    "order {n} placed by user{d}",
    "PE/PV Model: {d}x{d} SCSI BP Rev: {d}",  # "1x2" is no 0x-hex; "0x2" is
    "{h}:443 close, {n} bytes ({d}.{d} KB) sent, {d} bytes received, lifetime {d} sec",
    "IRQ{d} on J{d} v{d}.{d} core.{n} rank {d}0{d}",  # tokens no mask touches, digits kept (the recipe)
    "zero {n}0 and {d}0{n} then x{d}0",  # a 0 counts as any digit, but where an x may make it hex
    "заказ {n} оплачен за {d} сек, узел ٣{d}",  # not ASCII: every mask runs (\d matches ٣)
)


@st.composite
def _log_lines(draw: st.DrawFn) -> list[str]:
    def fill(skeleton: str) -> str:
        parts = skeleton.split("{")
        out = [parts[0]]
        for part in parts[1:]:
            kind, rest = part[0], part[2:]
            value = {
                "n": str(draw(st.integers(0, 10**12))),
                "d": str(draw(st.integers(0, 999))),
                "h": draw(st.text("0123456789abcdef", min_size=1, max_size=12)),
            }[kind]
            out.append(value + rest)
        return "".join(out)

    return [fill(draw(st.sampled_from(_SKELETONS))) for _ in range(draw(st.integers(1, 40)))]


@settings(max_examples=60, deadline=None)
@given(_log_lines())
def test_templates_are_those_drain_finds_on_every_line_masked_whole(lines: list[str]) -> None:
    fast = LogTemplates()
    reference = LogTemplates()
    config = default_config()
    reference.miner.masker = LogMasker(config.masking_instructions, config.mask_prefix, config.mask_suffix)
    for line in lines:
        result = reference.miner.add_log_message(line)  # drain3's own path: no memo, every mask run
        assert fast.add(line) == (str(result["cluster_id"]), str(result["template_mined"])), line


def test_a_users_mask_that_shares_a_name_with_ours_always_runs() -> None:
    # vigil's ID mask needs an underscore; this one has none and must still apply.
    templates = LogTemplates(extra_masks=[(r"cust[A-Z]{4}", "ID")])
    assert templates.mask("order for custABCD paid") == "order for <ID> paid"
