"""A character-level tokenizer with whole-token specials, for the tiny reasoning LMs.

    tok = CharTokenizer()                        # default alphabet, budgets (16, 32, 64, 80)
    ids = tok.encode("<bos>Q:12+3<think>")       # specials are single tokens, the rest chars
    tok.decode(ids) == "<bos>Q:12+3<think>"      # exact round trip
    tok.budget_id(64)                            # id of "<b64>", HBPO's prefilled budget token

Every character of the alphabet is one token; every special (`<pad> <bos> <eos>`, the
reasoning markers `<think> </think>`, the Cog-Rethinker template markers `<demo> <plan>
<wrong> <fix>` and one `<bN>` per HBPO budget N) is one token. Id 0 is `<pad>`. An unknown
character raises `ValueError` (silently dropping it would hide a bug in a task renderer).
The vocabulary is fully described by `to_dict()`, so `save`/`load` round-trip it as JSON.

`WordTokenizer(words)` is the same interface over whole words (ArCHer's text games).
"""

from __future__ import annotations

import json
import os
import re
import string
from typing import Iterable, Sequence

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
THINK, END_THINK = "<think>", "</think>"
DEMO, PLAN, WRONG, FIX = "<demo>", "<plan>", "<wrong>", "<fix>"
CORE_SPECIALS = (PAD, BOS, EOS, THINK, END_THINK, DEMO, PLAN, WRONG, FIX)
DEFAULT_ALPHABET = string.digits + "+-*=;:,.()# " + "QAckwsh"  # what hrlzoo.lm.tasks writes
DEFAULT_BUDGETS = (16, 32, 64, 80)


def budget_token(budget: int) -> str:
    """The special token of an HBPO budget: 64 -> "<b64>"."""
    return f"<b{int(budget)}>"


class _Vocabulary:
    """What every tokenizer here shares: `itos` / `stoi`, the specials, decoding, JSON round
    trips (`to_dict` / `from_dict` are the subclass's), equality of vocabularies."""

    _join = ""  # what decode puts between tokens

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def __len__(self) -> int:
        return len(self.itos)

    def token_id(self, token: str) -> int:
        return self.stoi[token]

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset(self.stoi[s] for s in self.specials)

    def decode(self, ids: Iterable[int], *, skip_special: bool = False,
               stop_at_pad: bool = False) -> str:
        """Text of `ids` (a list or a 1-D tensor). `skip_special` drops every special token;
        `stop_at_pad` ends at the first `<pad>`."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        out = []
        specials = self.special_ids if skip_special else frozenset()
        for i in ids:
            if stop_at_pad and i == self.pad_id:
                break
            if i in specials:
                continue
            out.append(self.itos[i])
        return self._join.join(out)

    def decode_batch(self, rows, **kw) -> list[str]:
        return [self.decode(r, **kw) for r in rows]

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike):
        with open(path) as f:
            return cls.from_dict(json.load(f))

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and self.itos == other.itos


class CharTokenizer(_Vocabulary):
    """Characters of `alphabet` plus special tokens; see the module docstring."""

    def __init__(self, alphabet: str = DEFAULT_ALPHABET, budgets: Sequence[int] = DEFAULT_BUDGETS,
                 extra_specials: Sequence[str] = ()):
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("alphabet has repeated characters")
        self.alphabet = alphabet
        self.budgets = tuple(int(b) for b in budgets)
        self.specials = tuple(CORE_SPECIALS) + tuple(budget_token(b) for b in self.budgets) \
            + tuple(extra_specials)
        self.itos: list[str] = list(self.specials) + list(alphabet)
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("a special token collides with another token")
        # longest specials first, then any single character
        alts = "|".join(re.escape(s) for s in sorted(self.specials, key=len, reverse=True))
        self._split = re.compile(f"{alts}|.", re.S)
        self.pad_id, self.bos_id, self.eos_id = self.stoi[PAD], self.stoi[BOS], self.stoi[EOS]
        self.think_id, self.end_think_id = self.stoi[THINK], self.stoi[END_THINK]

    # ------------------------------------------------------------------ vocabulary
    def budget_id(self, budget: int) -> int:
        return self.stoi[budget_token(budget)]

    # ------------------------------------------------------------------ encode / decode
    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Token ids of `text`; `bos`/`eos` add those tokens around it."""
        ids = [self.bos_id] if bos else []
        for piece in self._split.findall(text):
            i = self.stoi.get(piece)
            if i is None:
                raise ValueError(f"character {piece!r} is not in the tokenizer's alphabet")
            ids.append(i)
        if eos:
            ids.append(self.eos_id)
        return ids

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        n_core = len(CORE_SPECIALS) + len(self.budgets)
        return {"alphabet": self.alphabet, "budgets": list(self.budgets),
                "extra_specials": list(self.specials[n_core:])}

    @classmethod
    def from_dict(cls, d: dict) -> "CharTokenizer":
        return cls(d["alphabet"], d["budgets"], d.get("extra_specials", ()))


class WordTokenizer(_Vocabulary):
    """Whole words (split on whitespace) plus `<pad> <bos> <eos>`, for text games whose
    utterances are a few words each (ArCHer's Twenty Questions: "is it made of wood ?" is six
    tokens). The same interface as `CharTokenizer` (pad_id, bos_id, eos_id, encode, decode,
    vocab_size, save/load), so `hrlzoo.lm.sampler` and `hrlzoo.lm.sft` take either. Decoding
    joins words with one space. An unknown word raises `ValueError`."""

    def __init__(self, words: Sequence[str]):
        words = list(words)
        if len(set(words)) != len(words):
            raise ValueError("words has repeats")
        if any(not w or any(c.isspace() for c in w) for w in words):
            raise ValueError("a word is empty or contains whitespace")
        self.words = tuple(words)
        self.specials = (PAD, BOS, EOS)
        self.itos: list[str] = list(self.specials) + words
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("a word collides with a special token")
        self.pad_id, self.bos_id, self.eos_id = self.stoi[PAD], self.stoi[BOS], self.stoi[EOS]

    _join = " "

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        ids = [self.bos_id] if bos else []
        for w in text.split():
            i = self.stoi.get(w)
            if i is None:
                raise ValueError(f"word {w!r} is not in the tokenizer's vocabulary")
            ids.append(i)
        if eos:
            ids.append(self.eos_id)
        return ids

    def to_dict(self) -> dict:
        return {"kind": "word", "words": list(self.words)}

    @classmethod
    def from_dict(cls, d: dict) -> "WordTokenizer":
        return cls(d["words"])
