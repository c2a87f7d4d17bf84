"""hrlzoo.lm.tokenizer: exact round trip, specials as single tokens, persistence."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hrlzoo.lm.tokenizer import CORE_SPECIALS, DEFAULT_ALPHABET, CharTokenizer, budget_token

TOK = CharTokenizer()
pieces = st.sampled_from(list(DEFAULT_ALPHABET) + list(TOK.specials))


@settings(max_examples=200, deadline=None)
@given(st.lists(pieces, max_size=60))
def test_round_trip(parts):
    text = "".join(parts)
    ids = TOK.encode(text)
    assert TOK.decode(ids) == text
    assert len(ids) == len(parts)  # every special is ONE token, every character one


def test_specials_and_budgets():
    assert TOK.pad_id == 0
    assert TOK.encode("<think><b64>1", bos=True, eos=True) == [
        TOK.bos_id, TOK.think_id, TOK.budget_id(64), TOK.token_id("1"), TOK.eos_id]
    assert budget_token(80) == "<b80>" and TOK.budget_id(80) == TOK.token_id("<b80>")
    assert len(set(TOK.itos)) == TOK.vocab_size == len(CORE_SPECIALS) + 4 + len(DEFAULT_ALPHABET)
    assert TOK.decode(TOK.encode("<bos>1+2<eos>"), skip_special=True) == "1+2"
    assert TOK.decode([TOK.token_id("7"), TOK.pad_id, TOK.token_id("8")], stop_at_pad=True) == "7"


def test_unknown_characters_raise():
    with pytest.raises(ValueError):
        TOK.encode("1+x")
    with pytest.raises(ValueError):
        TOK.encode("<b17>")  # not a budget of this tokenizer: "<" is not a character


def test_save_load(tmp_path):
    tok = CharTokenizer(budgets=(8, 24), extra_specials=("<sep>",))
    tok.save(tmp_path / "tok.json")
    back = CharTokenizer.load(tmp_path / "tok.json")
    assert back == tok and back.encode("<sep><b24>9") == tok.encode("<sep><b24>9")
