"""One prompt truncation per preference pair: both responses see the same prompt tokens, the prompt
keeps its end and gives way to the longer response (or to `data.max_prompt_length`), and a pair
with no prompt left is dropped (training) or an error (scoring), never trained as a fragment."""

from pathlib import Path

import pytest

from alignlab.config import DataConfig
from alignlab.data.labels import IGNORE_INDEX
from alignlab.data.preference import encode_feedback_split, encode_preference_split
from alignlab.data.templating import encode_prompt_response, ensure_chat_template
from alignlab.errors import DataError
from records import pair, write_jsonl

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HH_RLHF = SHARED / "hh-rlhf" / "harmless-base" / "test.jsonl.gz"
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LONG_PROMPT = " ".join(["Please write a short poem about the sea and the sky."] * 4)


@pytest.fixture
def tok(tiny_tokenizer):
    tiny_tokenizer.chat_template = CHATML
    ensure_chat_template(tiny_tokenizer)
    return tiny_tokenizer


def prompt_part(ex) -> list[int]:
    """The tokens before the first learned one: what the response is conditioned on."""
    first = next(i for i, label in enumerate(ex.labels) if label != IGNORE_INDEX)
    return ex.input_ids[:first]


def response_part(ex) -> list[int]:
    return ex.input_ids[len(prompt_part(ex)):]


def full(tok, prompt: str, response: str):
    return encode_prompt_response(tok, [{"role": "user", "content": prompt}],
                                  [{"role": "assistant", "content": response}])


def test_real_hh_rlhf_pairs_condition_both_responses_on_one_prompt(tok):
    if not HH_RLHF.is_file():
        pytest.skip(f"the public hh-rlhf file is not at {HH_RLHF} (the shared data folder beside the clone)")
    logs = []
    split = encode_preference_split(tok, DataConfig(path=str(HH_RLHF), limit=64, max_length=256),
                                    keep_ties=False, log=logs.append)
    assert len(split.train) > 40
    for p in split.train:
        assert prompt_part(p.chosen) == prompt_part(p.rejected)  # 20 % differed when cut per side
        assert len(prompt_part(p.chosen)) > 0
        assert max(len(p.chosen), len(p.rejected)) <= 256
    assert any("cut the prompt of" in line for line in logs), logs


def test_a_long_prompt_is_cut_once_from_its_start_to_fit_the_longer_response(tmp_path, tok):
    chosen, rejected = "Paris.", "The capital of France is Paris, and the weather in Paris is sunny."
    f = write_jsonl(tmp_path / "p.jsonl", [pair(LONG_PROMPT, chosen, rejected),
                                           pair("Say hello.", "Hello!", "No.")])
    whole_c, whole_r = full(tok, LONG_PROMPT, chosen), full(tok, LONG_PROMPT, rejected)
    max_length = len(response_part(whole_r)) + 10
    logs = []
    split = encode_preference_split(tok, DataConfig(path=str(f), max_length=max_length), log=logs.append)
    cut, short = split.train
    # Both sides see the same prompt: the last tokens of the whole prompt, as many as the longer
    # response leaves room for; both responses are whole.
    assert prompt_part(cut.chosen) == prompt_part(cut.rejected) == prompt_part(whole_c)[-10:]
    assert response_part(cut.chosen) == response_part(whole_c)
    assert response_part(cut.rejected) == response_part(whole_r)
    assert len(cut.rejected) == max_length and cut.prompt_len == 10
    assert short.chosen == full(tok, "Say hello.", "Hello!")
    assert short.prompt_len == len(prompt_part(short.chosen))
    assert split.dropped == 0
    assert any("cut the prompt of 1 pair" in line for line in logs), logs


def test_max_prompt_length_caps_the_prompt_and_cuts_long_responses_at_their_end(tmp_path, tok):
    chosen, rejected = "Paris.", "The capital of France is Paris, and the weather in Paris is sunny."
    f = write_jsonl(tmp_path / "p.jsonl", [pair(LONG_PROMPT, chosen, rejected)])
    whole_r = full(tok, LONG_PROMPT, rejected)
    logs = []
    split = encode_preference_split(tok, DataConfig(path=str(f), max_length=12, max_prompt_length=5),
                                    log=logs.append)
    (p,) = split.train
    assert prompt_part(p.chosen) == prompt_part(p.rejected) == prompt_part(whole_r)[-5:]
    assert response_part(p.rejected) == response_part(whole_r)[:7] and len(p.rejected) == 12
    assert any("cut the responses of 1 pair" in line for line in logs), logs


def test_a_pair_with_no_prompt_left_is_dropped_and_none_left_is_an_error(tmp_path, tok):
    long = "The capital of France is Paris, and the weather in Paris is sunny."
    f = write_jsonl(tmp_path / "p.jsonl", [pair(LONG_PROMPT, "Paris.", long), pair("Hi.", "Hello!", "No.")])
    room = len(response_part(full(tok, LONG_PROMPT, long)))
    logs = []
    split = encode_preference_split(tok, DataConfig(path=str(f), max_length=room), log=logs.append)
    assert len(split.train) == 1 and split.dropped == 1
    assert any("no room for the prompt" in line for line in logs), logs
    with pytest.raises(DataError, match="no usable preference pairs"):
        encode_preference_split(tok, DataConfig(path=str(f), max_length=2), log=lambda _: None)


def test_unpaired_feedback_keeps_a_prompt_or_drops_the_record(tmp_path, tok):
    long = "The capital of France is Paris, and the weather in Paris is sunny."
    rows = [{"prompt": [{"role": "user", "content": LONG_PROMPT}],
             "completion": [{"role": "assistant", "content": c}], "label": good}
            for c, good in ((long, True), ("Paris.", False), ("No.", True))]
    f = write_jsonl(tmp_path / "kto.jsonl", rows)
    room = len(response_part(full(tok, LONG_PROMPT, long)))
    split = encode_feedback_split(tok, DataConfig(path=str(f), max_length=room), log=lambda _: None)
    assert split.dropped == 1 and len(split.train) == 2
    for item in split.train:
        assert len(prompt_part(item.completion)) > 0 and len(prompt_part(item.kl)) > 0
        assert prompt_part(item.completion) == prompt_part(item.kl)  # one prompt, one cut


def test_scoring_cuts_a_pairs_prompt_once_and_refuses_a_record_with_no_prompt_left(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    from alignlab.config import ScoreConfig
    from alignlab.data.preference import encode_pair
    from alignlab.data.readers import read_preferences
    from alignlab.modeling.reward_model import build_reward_model, pair_rewards, save_reward_model
    from alignlab.scoring import score_file

    tok = AutoTokenizer.from_pretrained(tiny_model_dir("qwen2"))  # ChatML
    rm_dir = tmp_path / "rm"
    model = build_reward_model(str(tiny_model_dir("qwen2")), pad_token_id=tok.pad_token_id, dtype="float32")
    save_reward_model(model, tok, rm_dir)
    long = "The capital of France is Paris, and the weather in Paris is sunny."
    f = write_jsonl(tmp_path / "p.jsonl", [pair(LONG_PROMPT, "Paris.", long)])
    max_length = len(response_part(full(tok, LONG_PROMPT, long))) + 6
    data = DataConfig(path=str(f), max_length=max_length)
    out = tmp_path / "scores.jsonl"
    config = ScoreConfig(reward_model={"path": str(rm_dir)}, data=data.model_dump())
    score_file(config, out, log=lambda _: None)
    import json

    row = json.loads(out.read_text())
    encoded = encode_pair(tok, read_preferences(f).records[0], data, None)
    assert prompt_part(encoded.chosen) == prompt_part(encoded.rejected) and encoded.prompt_len == 6
    chosen, rejected = pair_rewards(model.eval(), [encoded], pad_token_id=tok.pad_token_id, batch_size=2)
    assert row["chosen_reward"] == pytest.approx(float(chosen[0, 0]), abs=1e-5)
    assert row["rejected_reward"] == pytest.approx(float(rejected[0, 0]), abs=1e-5)
    tight = DataConfig(path=str(f), max_length=max_length - 6)
    with pytest.raises(DataError, match=r"p\.jsonl: record 1: the longer response .* no room for the prompt"):
        score_file(ScoreConfig(reward_model={"path": str(rm_dir)}, data=tight.model_dump()), out,
                   log=lambda _: None)
