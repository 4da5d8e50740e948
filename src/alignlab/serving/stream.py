"""A streamed reply's text, released as soon as it is final, so the deltas add up to the whole reply.

The whole reply is `replies.reply_text`: the tokens decoded (special tokens removed), cut at the
first stop string, stripped. After each token the reply so far is decoded the same way and the
part no later token can change is sent; held back are:

- trailing U+FFFD: the first bytes of a character split over tokens;
- the longest end that begins a stop string: if the string completes, the reply is cut there;
- trailing whitespace: the whole reply is stripped, so it is sent only once text follows it;
- leading whitespace, never sent.

When the reply ends, what was held back and still belongs to it is sent. This relies on decoding
being prefix-stable: the text of the first k tokens (less a split character) begins the text of
the first k + 1. Byte-level BPE and SentencePiece decoders are; the clean-up of tokenisation
spaces is not, which is why `replies.decode_reply` turns it off.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alignlab.generation.replies import decode_reply
from alignlab.generation.stops import cut_at_stop

log = logging.getLogger("alignlab.serving")
SPLIT_CHARACTER = "\ufffd"


def settled(text: str, stops: Sequence[str]) -> str:
    """The part of the reply so far (not yet cut by a stop string) that no later token can change."""
    text = text.rstrip(SPLIT_CHARACTER)
    # Before stripping: a stop string may begin with the whitespace that stripping would drop.
    hold = max(
        (k for s in stops for k in range(1, min(len(s), len(text) + 1)) if text.endswith(s[:k])), default=0
    )
    text = text[: len(text) - hold].lstrip()
    end = len(text)
    while end and (text[end - 1].isspace() or text[end - 1] == SPLIT_CHARACTER):
        end -= 1
    return text[:end]


class TextStream:
    """The text deltas of one streamed sample."""

    def __init__(self, tokenizer, stops: Sequence[str]) -> None:
        self.tokenizer, self.stops = tokenizer, [s for s in stops if s]
        self.ids: list[int] = []
        self.sent = ""
        self.cut = False

    def push(self, token: int) -> str:
        """Take the next generated token; the text that can be sent now ("" when none)."""
        self.ids.append(token)
        if self.cut:
            return ""
        text, self.cut = cut_at_stop(decode_reply(self.tokenizer, self.ids), self.stops)
        if self.cut:  # the reply ends at the stop string: `finish` sends the rest
            return ""
        return self._advance(settled(text, self.stops))

    def finish(self, final_text: str) -> str:
        """The rest of the reply, given its whole text (the completion's)."""
        return self._advance(final_text)

    def _advance(self, text: str) -> str:
        if not text.startswith(self.sent):
            # Only a decoder that rewrites earlier text gets here; what was sent cannot be taken back.
            log.warning(
                "streamed text %r is not a prefix of the reply %r; the stream ends early", self.sent, text
            )
            return ""
        delta, self.sent = text[len(self.sent) :], text
        return delta
