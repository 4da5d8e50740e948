"""When a reply ends: stop tokens (eos, the chat template's end-of-turn) and stop strings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# End-of-turn markers of the common chat templates; whichever the tokenizer knows also stops generation.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>")


def stop_token_ids(tokenizer, extra: Iterable[int] = ()) -> list[int]:
    """Sorted ids that end a reply: eos, the end-of-turn tokens the tokenizer knows, and `extra`."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)
    ids.update(int(i) for i in extra)
    return sorted(ids)


def model_eos_ids(model) -> list[int]:
    """The eos ids of the model's generation config (Llama 3.1 lists several), or none."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        return []
    return [int(eos)] if isinstance(eos, int) else [int(i) for i in eos]


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first occurrence of any stop string, and whether one occurred."""
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


class StopStrings:
    """Finds a stop string in a growing reply by decoding only its last few tokens.

    A string found now was not there a step earlier (the row would have stopped), so the window
    only has to cover the longest stop string: its length in characters plus a margin, counted in
    tokens, since every token but a partial UTF-8 byte decodes to at least one character.
    """

    def __init__(self, tokenizer, stops: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.window = max((len(s) for s in self.stops), default=0) + 4

    def __bool__(self) -> bool:
        return bool(self.stops)

    def matched(self, reply_ids: Sequence[int]) -> bool:
        """True when the decoded end of `reply_ids` (generated tokens only) contains a stop string."""
        tail = self.tokenizer.decode(
            reply_ids[-self.window :], skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        return any(s in tail for s in self.stops)
