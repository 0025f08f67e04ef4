"""What varies in a log line (ids, numbers, addresses, times, sizes...) and how to mask it fast.

``MASKS`` are regexes applied in order, as drain3's masker applies them; ``GuardedMasker`` gives exactly
what running every one of them gives, but skips a mask whose ``GUARDS`` say it cannot match. The rest
helps ``LogTemplates`` mask each distinct shape once: ``digits_alike`` keys texts that mask alike, and
``may_span_tokens`` tells a line that must be masked whole from one whose tokens can be masked alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from drain3.masking import LogMasker, MaskingInstruction

_DAYS = "Mon|Tue|Wed|Thu|Fri|Sat|Sun"
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"

# Applied in order, so the specific shapes come before the generic ones that would eat their parts
# (a UUID or an IP address is also a run of numbers). Each pattern is anchored on non-word neighbours
# so that words which merely contain digits or hex letters ("sha256", "added", "orders-eu") survive.
MASKS: tuple[tuple[str, str], ...] = (
    # Quoted values (search terms, SQL fragments, repr() of keys) vary freely and may contain spaces.
    # The guards keep apostrophes inside words ("can't") from opening a quote.
    (r"(?<!\w)\"[^\"\n]*\"(?!\w)", "STR"),
    (r"(?<!\w)'[^'\n]*'(?!\w)", "STR"),
    (r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?![\w-])", "EMAIL"),
    (r"(?<![0-9A-Fa-f-])[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}(?![0-9A-Fa-f-])", "UUID"),
    # Timestamps inside messages: ISO 8601, ctime/syslog ("Fri Jun 17 07:07:00 2005", one token however
    # many spaces it has, so its words do not count as the message's words), dates, clock times.
    (
        r"(?<![\w.:-])(?:\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?"
        rf"|(?:(?:{_DAYS}) +)?(?:{_MONTHS}) +\d{{1,2}} +\d{{2}}:\d{{2}}:\d{{2}}(?: +\d{{4}})?"
        r"|\d{1,2}/\d{1,2}/\d{2,4}(?: \d{1,2}:\d{2}(?::\d{2})?)?|\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?)(?![\w:])",
        "TIME",
    ),
    # File paths of two or more segments (a single "/healthz" is more often a route name than a
    # variable). Not inside URLs: "//" and "host/path" are left to the IP and NUM masks.
    (r"(?<![\w:/.~-])(?:/[\w.$@+~%-]+){2,}/?", "PATH"),
    (r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\w.])", "IP"),
    # Ids made of a name and numbers joined by underscores: blk_-1608999687919862906,
    # attempt_1445144423722_0020_m_000000_0, broadcast_23_piece0. Snake-case words without an
    # all-digit part ("http_5xx", "db_client") are not ids.
    (r"(?<![\w.-])[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*_-?\d+(?:_[A-Za-z0-9]+)*(?![\w-])", "ID"),
    # Hex ids: 0x-prefixed, or long runs that contain both a digit and a letter (request ids, hashes),
    # so plain words ("deadbeef" aside) and plain numbers are left to the other masks.
    (r"(?<!\w)0[xX][0-9A-Fa-f]+(?!\w)", "HEX"),
    (r"(?<!\w)(?=[0-9A-Fa-f]*\d)(?=[0-9A-Fa-f]*[A-Fa-f])[0-9A-Fa-f]{8,}(?!\w)", "HEX"),
    # Sizes with a unit, and a size followed by the same in other units ("1910 bytes (1.86 KB)"): one
    # value however it is written, so a line that adds the equivalent is not another event.
    (
        r"(?<![\w.])\d+(?:\.\d+)? ?(?:bytes|[KMGTP]i?B|[kKMGTP]B|B)"
        r"(?: \(\d+(?:\.\d+)? ?(?:[KMGTP]i?B|kB|bytes)\))?(?!\w)",
        "SIZE",
    ),
    # Durations: "120ms", "1.5s", and spelled-out units after a space ("5 sec", "2 minutes").
    (
        r"(?<![\w.])\d+(?:\.\d+)?(?:(?:ns|us|µs|ms|s|m|h)|"
        r" (?:ms|msecs?|secs?|seconds?|mins?|minutes?|hours?|hrs?))(?!\w)",
        "DURATION",
    ),
    # A trailing full stop ends the sentence, but "1.2.3" is a version and stays as it is.
    (r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?!\.?\w)", "NUM"),
)

# What each of vigil's masks cannot match without: a line (or token) holding none of these characters is
# left alone without running the mask's regex. Necessary conditions only, read off the patterns above
# (every DURATION unit has an s, m or h), so masking gives exactly what running every regex gives. They
# are read in ASCII: \d also matches other scripts' digits, so a line with any non-ASCII character runs
# every mask.
GUARDS = {
    "STR": "\"'",
    "EMAIL": "@",
    "UUID": "-",
    "TIME": "-:/",
    "PATH": "/",
    "IP": ".",
    "ID": "_",
    "HEX": "xXabcdefABCDEF",
    "SIZE": "Bb",
    "DURATION": "smh",
    "NUM": "0123456789",
}
# By pattern, not by name: a user's mask may share a name with one of ours, never our guard.
_GUARD_OF = {pattern: frozenset(GUARDS[name]) for pattern, name in MASKS}

# Where a mask can span a space (quotes, "2005-06-17 07:07", "Jun 17 07:07:00", "17/06/05 07:07",
# "276 bytes", "1910bytes (1.86KB)", "5 sec"), a line is masked whole, never token by token. Quotes are
# found with `in`, the rest by two small patterns: one alternation of them all costs three times as much.
_SPANNING_NUMBER = re.compile(r"\d(?: +\d| (?:bytes|[kKMGTP]?i?B|ms|msec|sec|min|hour|hr))|(?:bytes|B) \(\d")
_SPANNING_MONTH = re.compile(rf"(?:{_MONTHS}) ")


def may_span_tokens(line: str) -> bool:
    """Whether one of vigil's masks may match across a space in ``line`` (never False where one does)."""
    return (
        '"' in line
        or "'" in line
        or _SPANNING_NUMBER.search(line) is not None
        or _SPANNING_MONTH.search(line) is not None
    )


MASKABLE = re.compile(r"[\d/@]")  # every mask of MASKS needs one of these in the token
DIGIT = re.compile(r"\d")
# The masks of MASKS see a digit only as a digit (\d, hex classes), but for the 0 of "0x": a token masks
# alike with each of its digits made 1 (but its 0s, if it has an x), so "blk_120" and "blk_987" are
# masked once between them.
_ONES = bytes.maketrans(b"0123456789", b"1111111111")
_ONES_BUT_ZERO = bytes.maketrans(b"23456789", b"11111111")


def digits_alike(text: str) -> bytes:
    """``text`` with its digits made 1 (see _ONES), the memos' key (as bytes: ten times faster to
    translate)."""
    raw = text.encode("utf-8", "surrogatepass")
    return raw.translate(_ONES_BUT_ZERO if b"x" in raw or b"X" in raw else _ONES)


class GuardedMasker(LogMasker):
    """drain3's masker, skipping one of vigil's masks whose guard (``GUARDS``) finds nothing to match in
    what the earlier masks left; any other mask (users' own) always runs."""

    def __init__(self, instructions: Sequence[MaskingInstruction], prefix: str, suffix: str) -> None:
        super().__init__(instructions, prefix, suffix)
        self.guarded = [(mi, _GUARD_OF.get(mi.pattern)) for mi in instructions]

    def mask(self, content: str) -> str:
        if not content.isascii():
            return str(super().mask(content))
        present = set(content)  # the characters of what the masks so far left
        for mi, guard in self.guarded:
            if guard is None or not guard.isdisjoint(present):
                masked = mi.mask(content, self.mask_prefix, self.mask_suffix)
                if masked is not content:  # re.sub hands back the very string when nothing matched
                    content, present = masked, set(masked)
        return content
