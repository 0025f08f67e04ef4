"""Log message templates mined with Drain (drain3): ``order 42 paid`` and ``order 43 paid`` are one template.

Counting lines per template turns free-text logs into a handful of series a detector can watch: a template
that suddenly grows, or one never seen before, is often the first visible sign of trouble.

On top of drain3 (which stays in charge of the tree, the clusters and persistence) vigil adds:

- masks (``log_masks``) for the variable shapes that are common in service logs (ids, paths, addresses,
  numbers, sizes and durations with their units: "276 bytes" and "1910 bytes (1.86 KB)" are one value),
  and a way for users to add their own for shapes only their systems write;
- a variable-aware similarity: two tokens that differ only in their variable parts (masks and digits:
  ``core.4505`` and ``core.23873``, ``<HEX>`` and ``<NUM>``) count as equal, so ``iar <HEX>`` and
  ``iar <NUM>`` are one template, while a different plain word (``ASSIGNED`` against ``RUNNING``) still
  counts against the match: in logs, the words are the event and the digits are its parameters;
- runs of the same mask (``blk_1 blk_2 blk_3``: a list of any length) collapse into one, so a message
  whose list grows does not become a new template for every length;
- a message joins a template only if it changes at most one of the template's words (positions that
  already vary do not count). Drain's share-of-tokens threshold alone lets a long message differ in
  several words at once (``... rhost=<IP> user=guest`` against ``... rhost=host.net user=root``), and
  such messages are usually different events; a variable shows itself one place at a time.

On the Loghub-2k benchmark (``bench/loghub.py``) this groups lines better than Drain's published figures
on all eight systems (average grouping accuracy 0.968 against 0.916; 0.965 when each system's parameters
are chosen on the other seven).
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from drain3 import TemplateMiner
from drain3.drain import Drain
from drain3.file_persistence import FilePersistence
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

from vigil.collectors.log_masks import (
    DIGIT,
    MASKABLE,
    MASKS,
    GuardedMasker,
    digits_alike,
    may_span_tokens,
)

# drain3 logs every new cluster and snapshot at INFO; one line per new template is noise in vigil's logs.
logging.getLogger("drain3").setLevel(logging.WARNING)

TWINS_KEPT = 100_000  # memo entries (tokens, masked messages) before they are forgotten
_UNSEEN = object()  # a line never seen
_AS_IS = object()  # in the memos: no mask matches, the text is its own masked form

PREFIX, SUFFIX = "<", ">"
WILDCARD = f"{PREFIX}*{SUFFIX}"
# The shape of a token: masks, wildcards and runs of digits are variables, the rest is its constant part.
_VARIABLE = re.compile(rf"{PREFIX}(?:[A-Z][A-Z0-9_]*|\*){SUFFIX}|\d+")


@lru_cache(maxsize=65_536)  # Drain compares the same few template tokens with every message
def shape(token: str) -> str:
    """``core.4505`` -> ``core.#``, ``<HEX>`` -> ``#``: tokens of one shape differ only in variables."""
    return _VARIABLE.sub("#", token)


class VariableAwareDrain(Drain):
    """Drain whose token comparison knows what a variable looks like (see the module docstring).

    max_word_changes: a template matches a message only if at most this many of its constant tokens
    differ from the message's (by shape); drain3's other parameters pass through unchanged.
    """

    def __init__(self, *args: Any, max_word_changes: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_word_changes = max_word_changes

    def has_numbers(self, s: str) -> bool:
        # drain3 routes tokens with digits through the tree's wildcard branch; masked tokens belong
        # there too, or "<NUM> ..." and "<HEX> ..." would never meet to be compared.
        return _VARIABLE.search(s) is not None

    def get_content_as_tokens(self, content: str) -> list[str]:
        # A list of any length (block ids, node names, IRQ numbers) is one token: consecutive tokens
        # of one variable shape collapse, so a message whose list grows keeps its template.
        tokens: list[str] = []
        for token in super().get_content_as_tokens(content):
            if not (tokens and _VARIABLE.search(token) and shape(token) == shape(tokens[-1])):
                tokens.append(token)
        return tokens

    def get_seq_distance(
        self, seq1: Sequence[str], seq2: Sequence[str], include_params: bool
    ) -> tuple[float, int]:
        """Share of the message ``seq2``'s tokens matching the template ``seq1``, and its wildcard count.

        Tokens match when they are equal or of one shape (they differ only in variables). A bare
        wildcard matches a bare variable; any other token only with ``include_params`` (drain3 leaves
        that off when learning, so a template of mostly wildcards does not swallow every message).
        A template whose constant tokens differ from the message in more than ``max_word_changes``
        places gets 0, however long the message: it is another event, not the same one with a variable.
        """
        if not seq1:
            return 1.0, 0
        similar = params = changed_words = 0
        for template_token, token in zip(seq1, seq2, strict=True):
            if template_token == self.param_str:
                params += 1
                similar += include_params or shape(token) == "#"
            elif template_token == token or shape(template_token) == shape(token):
                similar += 1
            else:
                changed_words += 1
        if changed_words > self.max_word_changes:
            return 0.0, params
        return similar / len(seq1), params

    def create_template(self, seq1: Sequence[str], seq2: Sequence[str]) -> list[str]:
        """The template ``seq2`` generalised to cover the message ``seq1``.

        Tokens of one shape keep their constant part (``core.4505`` and ``core.23873``: ``core.<*>``),
        so the template reads like the message and still tells ``core.<*>`` from ``space....<*>``.
        """
        return [
            old
            if old == new
            else _VARIABLE.sub(self.param_str, old)
            if shape(old) == shape(new)
            else self.param_str
            for new, old in zip(seq1, seq2, strict=True)
        ]


def default_config(
    sim_th: float = 0.75,
    depth: int = 4,
    max_clusters: int | None = None,
    extra_masks: Iterable[tuple[str, str]] = (),
    extra_delimiters: Iterable[str] = (),
    masks: Sequence[tuple[str, str]] = MASKS,
) -> TemplateMinerConfig:
    """The miner configuration, built in code so no drain3.ini has to be shipped or found.

    sim_th: Drain merges a message into a template when at least this share of tokens match (variables
    of one shape count as matching, see ``VariableAwareDrain``). At 0.75 a four-word message may differ
    in one word ("user alice logged in", "user bob logged in"), while short messages that differ in one
    word ("order placed", "order paid"; "cupsd startup succeeded", "cupsd shutdown succeeded") stay
    apart: in short messages that word is usually the event itself. On Loghub-2k (bench/loghub.py) the
    average grouping accuracy is 0.968 for any threshold from 0.72 to 0.75 and 0.959 at 0.55.
    depth: 4 is Drain's usual value: the tree routes on token count, then the first token.
    extra_masks: (regex, name) pairs for a system's own variable shapes, applied before vigil's masks.
    extra_delimiters: characters that separate tokens besides whitespace (e.g. "=" for key=value pairs).
    masks: vigil's own (regex, name) masks, in order; ``MASKS`` unless a benchmark tries others.
    ``max_word_changes`` is not a drain3 setting: it goes to ``VariableAwareDrain`` (see ``LogTemplates``).
    """
    config = TemplateMinerConfig()
    config.drain_sim_th = sim_th
    config.drain_depth = depth
    config.drain_max_clusters = max_clusters
    config.drain_extra_delimiters = list(extra_delimiters)
    config.masking_instructions = [
        MaskingInstruction(pattern, name) for pattern, name in (*extra_masks, *masks)
    ]
    config.mask_prefix, config.mask_suffix = PREFIX, SUFFIX
    # Snapshots are written on every template change anyway; the periodic one only adds I/O.
    config.snapshot_interval_minutes = 60
    config.snapshot_compress_state = True
    return config


class LogTemplates:
    """A thin wrapper around drain3's ``TemplateMiner``.

    Template ids are drain3 cluster ids as strings: they never change for a cluster, while the template
    text may generalise over time (``order placed`` -> ``order <*>``) as more messages arrive. With
    ``state_path`` the miner's clusters are saved to that file on every change and loaded on start, so
    ids (and the series labelled with them) survive restarts.

    The keyword arguments are ``default_config``'s, plus ``max_word_changes``: how many of a template's
    constant words a message may change and still join it (see ``VariableAwareDrain``).
    """

    def __init__(
        self,
        state_path: Path | str | None = None,
        *,
        sim_th: float = 0.75,
        depth: int = 4,
        max_clusters: int | None = None,
        extra_masks: Iterable[tuple[str, str]] = (),
        extra_delimiters: Iterable[str] = (),
        max_word_changes: int = 1,
        masks: Sequence[tuple[str, str]] = MASKS,
    ) -> None:
        extra_masks = tuple(extra_masks)
        config = default_config(sim_th, depth, max_clusters, extra_masks, extra_delimiters, masks)
        self.miner = TemplateMiner(None, config)
        self.miner.masker = GuardedMasker(config.masking_instructions, PREFIX, SUFFIX)
        # drain3 builds its own Drain; swap in ours (same settings) before any saved state is loaded,
        # so a restored tree is matched the same way as the one that was saved.
        self.miner.drain = VariableAwareDrain(
            depth=config.drain_depth,
            sim_th=config.drain_sim_th,
            max_children=config.drain_max_children,
            max_clusters=config.drain_max_clusters,
            extra_delimiters=config.drain_extra_delimiters,
            param_str=WILDCARD,
            max_word_changes=max_word_changes,
        )
        # Token (or its digits made 1: digits_alike) -> its masked form, and masked message -> the
        # template its first twin joined.
        self._masked: dict[str, str] = {}
        self._generic: dict[bytes, Any] = {}  # None: a digit stays unmasked, mask the token itself
        # A line, digits made 1 -> its key (masked tokens, or the line masked whole), or None as above.
        self._lines: dict[bytes, Any] = {}
        self._said: dict[int, tuple[str, str]] = {}  # cluster id -> what add answers for it
        self._twins: dict[tuple[str, ...] | str, int] = {}
        self._spans_tokens = bool(config.drain_extra_delimiters or extra_masks)
        self.state_path = Path(state_path) if state_path is not None else None
        if self.state_path is not None:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            self.miner.persistence_handler = FilePersistence(str(self.state_path))
            self.miner.load_state()

    def add(self, message: str) -> tuple[str, str]:
        """Learn from ``message``; return its template id and the template's current text.

        Most lines repeat a message already seen but for its masked parts: those go straight to the
        template their first twin joined (``_key``: the message as Drain is given it), without a search.
        """
        key = self._key(message)
        known = self._twins.get(key)
        cluster = self.miner.drain.id_to_cluster.get(known) if known is not None else None
        if cluster is not None:  # None: never seen, or its template was evicted (max_clusters)
            cluster.size += 1
            said = self._said.get(cluster.cluster_id)
            return said if said is not None else self._say(cluster.cluster_id, cluster.get_template())
        cluster_id, template = self._learn(key if isinstance(key, str) else " ".join(key))
        _remember(self._twins, key, cluster_id)
        return self._say(cluster_id, template)

    def _say(self, cluster_id: int, template: str) -> tuple[str, str]:
        """(id, text) as ``add`` answers, kept until Drain changes the template: only Drain's own
        ``add_log_message`` does, and each of its answers passes here."""
        said = (str(cluster_id), str(template))
        _remember(self._said, cluster_id, said)
        return said

    def _learn(self, masked: str) -> tuple[int, str]:
        """A message already masked (its tokens', joined: what masking the line gives) into Drain, and
        the miner's state saved when it changed, as ``TemplateMiner.add_log_message`` does after masking."""
        miner = self.miner
        cluster, change_type = miner.drain.add_log_message(masked)
        if miner.persistence_handler is not None:
            reason = miner.get_snapshot_reason(change_type, cluster.cluster_id)
            if reason:
                miner.save_state(reason)
                miner.last_save_time = time.time()
        return cluster.cluster_id, str(cluster.get_template())

    def _key(self, message: str) -> tuple[str, ...] | str:
        """The message masked, as Drain is to be given it: two messages with one key are one message to
        Drain. Its tokens each masked on their own (each token's mask is remembered), or the line masked
        whole where a mask can span a space (quoted strings, a date with its time, "276 bytes") or the
        user's own masks and delimiters apply."""
        masker = self.miner.masker
        if self._spans_tokens:
            return str(masker.mask(message))  # users' masks may read a digit's value: no memo
        # Lines that differ only in their digits' values (1-9) mask alike: a line is remembered by its
        # digits made 1, with its key, or a recipe for it where digits survive the masks ("core.4505").
        generic = digits_alike(message)
        seen = self._lines.get(generic, _UNSEEN)
        if type(seen) is _Recipe:
            return tuple(
                own if part is None else part for part, own in zip(seen, message.split(), strict=True)
            )
        if seen is _AS_IS:
            return message
        if seen is not _UNSEEN and seen is not None:
            return seen  # a key remembered for this line's digits
        if may_span_tokens(message):  # as it would say of generic: its patterns see a digit as \d
            return self._mask_alike(message, generic, self._lines)
        masked = self._masked
        key = []
        for token in message.split():
            known = masked.get(token)
            if known is None:
                maskable = MASKABLE.search(token) is not None
                known = self._mask_alike(token, digits_alike(token), self._generic) if maskable else token
                _remember(masked, token, known)
            key.append(known)
        if seen is _UNSEEN:
            _remember(self._lines, generic, _recipe(message, key))
        return tuple(key)

    def _mask_alike(self, text: str, generic: bytes, memo: dict[bytes, Any]) -> str:
        """``text`` masked, through ``memo``: by ``generic`` (its digits made 1) when no digit survives
        the masks or no mask matches at all (``_AS_IS``), else on its own (None remembers that)."""
        known = memo.get(generic, _UNSEEN)
        if known is _UNSEEN:
            alike = generic.decode("utf-8", "surrogatepass")
            masked = str(self.miner.masker.mask(alike))
            known = _AS_IS if masked == alike else None if DIGIT.search(masked) else masked
            _remember(memo, generic, known)
        if known is _AS_IS:
            return text
        return known if known is not None else str(self.miner.masker.mask(text))

    def mask(self, message: str) -> str:
        """``message`` with its variable parts masked, as Drain sees it (useful to debug the patterns)."""
        return str(self.miner.masker.mask(message))

    def template(self, template_id: str) -> str | None:
        """The current text of a template, or None for an unknown (or evicted) id."""
        try:
            cluster = self.miner.drain.id_to_cluster.get(int(template_id))
        except ValueError:
            return None
        return None if cluster is None else str(cluster.get_template())

    def templates(self) -> dict[str, str]:
        """Every known template id with its text."""
        return {str(c.cluster_id): str(c.get_template()) for c in self.miner.drain.clusters}

    def __len__(self) -> int:
        return len(self.miner.drain.clusters)


class _Recipe(tuple[str | None, ...]):
    """A line's key with None where the line's own token goes: a token the masks leave as it is."""


def _recipe(message: str, key: list[str]) -> tuple[str, ...] | _Recipe | None:
    """How to key the lines with ``message``'s digits made 1, or None where a mask kept some digits
    of a token it changed (that token must be masked anew). A token untouched by every mask is the
    same for all of them but for its digits, which the recipe takes from each line."""
    if not any(map(DIGIT.search, key)):
        return tuple(key)
    recipe: list[str | None] = []
    for own, part in zip(message.split(), key, strict=True):
        if DIGIT.search(part) is None:
            recipe.append(part)
        elif part == own:
            recipe.append(None)
        else:
            return None
    return _Recipe(recipe)


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    if len(memo) >= TWINS_KEPT:
        memo.clear()  # a bounded memo: the next lines fill it again
    memo[key] = value


@dataclass
class TemplateCount:
    """How many lines one template covered in a stretch of logs, from which services, with an example."""

    template_id: str
    template: str
    lines: int
    services: Counter[str]
    example: str


def count_templates(lines: Iterable[tuple[str, str]], templates: LogTemplates) -> list[TemplateCount]:
    """``(service, message)`` lines through ``templates``: per template, most lines first (the text is
    the template's final one: it may have generalised while the lines were read)."""
    found: dict[str, TemplateCount] = {}
    for service, message in lines:
        template_id, _ = templates.add(message)
        entry = found.get(template_id)
        if entry is None:
            entry = found[template_id] = TemplateCount(template_id, "", 0, Counter(), message)
        entry.lines += 1
        entry.services[service] += 1
    for entry in found.values():
        entry.template = templates.template(entry.template_id) or ""
    return sorted(found.values(), key=lambda e: (-e.lines, e.template_id))
