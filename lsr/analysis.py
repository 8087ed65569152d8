"""An English text analyzer modelled on Lucene's ``EnglishAnalyzer`` (as Anserini uses it).

Pipeline, in Lucene's order:

1. **Tokenize** on word boundaries in the spirit of Unicode UAX #29 (Lucene's StandardTokenizer):
   runs of letters, digits, underscores and combining marks; an apostrophe, period or colon
   *between two letters* stays inside the word (``don't``, ``e.g``), and a period, comma,
   semicolon or apostrophe *between two digits* stays inside the number (``3.14``, ``1,000``).
   Tokens longer than 255 characters are cut, as Lucene does.
2. **Possessives**: a trailing ``'s`` (or ``’s``) is removed (EnglishPossessiveFilter).
3. **Lower-case.**
4. **Stop words**: Lucene's English list (33 words) by default.
5. **Stem**: Porter (Lucene's PorterStemFilter, Anserini's default) through PyStemmer, or
   Snowball English (``stemmer="english"``), or none.

Differences from Lucene that remain: CJK ideographs are not split one per token, and emoji and
other symbols are dropped rather than classified.

Example:
    >>> from lsr.analysis import EnglishAnalyzer
    >>> EnglishAnalyzer()("The cat's 3.5 running-shoes, e.g. for Dr. Smith's dogs")
    ['cat', '3.5', 'run', 'shoe', 'e.g', 'dr', 'smith', 'dog']
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Lucene's default English stop words (EnglishAnalyzer.ENGLISH_STOP_WORDS_SET).
LUCENE_ENGLISH_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split()
)

_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_W = rf"[\w{_MARKS}]"
_TOKEN = re.compile(
    rf"{_W}+(?:(?:(?<=[^\W\d_])[.'’:](?=[^\W\d_])|(?<=\d)[.,;'’](?=\d)){_W}+)*"
)
MAX_TOKEN_LENGTH = 255
STEMMERS = ("porter", "english", "none")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into word tokens (step 1 of the module docstring), case preserved."""
    tokens = _TOKEN.findall(text)
    if any(len(t) > MAX_TOKEN_LENGTH for t in tokens):
        tokens = [t[:MAX_TOKEN_LENGTH] for t in tokens]
    return tokens


class EnglishAnalyzer:
    """Text to a list of index terms; see the module docstring.

    Args:
        stemmer: ``"porter"`` (default, as Lucene/Anserini), ``"english"`` (Snowball) or ``"none"``.
        stopwords: ``"lucene"`` (default), ``"none"``, or an iterable of words (lower-case).
        lowercase: lower-case tokens (default true).
    """

    def __init__(self, stemmer: str = "porter", stopwords: str | Iterable[str] = "lucene", lowercase: bool = True):
        if stemmer not in STEMMERS:
            raise ValueError(f"unknown stemmer {stemmer!r}; choose one of {', '.join(STEMMERS)}")
        self.stemmer_name = stemmer
        if isinstance(stopwords, str):
            if stopwords == "lucene":
                words = LUCENE_ENGLISH_STOPWORDS
            elif stopwords == "none":
                words = frozenset()
            else:
                raise ValueError(f"stopwords must be 'lucene', 'none' or a list of words, got {stopwords!r}")
            self.stopwords_name = stopwords
        else:
            words = frozenset(w.lower() for w in stopwords)
            self.stopwords_name = sorted(words)
        self.stopwords = words
        self.lowercase = bool(lowercase)
        self._stem = None
        if stemmer != "none":
            import Stemmer  # PyStemmer

            self._stem = Stemmer.Stemmer(stemmer).stemWords
        # Lucene's PorterStemmer leaves words of one or two letters alone (Snowball's Porter would turn
        # "s" into "" and "us" into "u"); other stemmers see every word.
        self._min_stem_length = 3 if stemmer == "porter" else 1

    def config(self) -> dict:
        return {"stemmer": self.stemmer_name, "stopwords": self.stopwords_name, "lowercase": self.lowercase}

    def __call__(self, text: str) -> list[str]:
        tokens = tokenize(text)
        out = []
        stop = self.stopwords
        for t in tokens:
            if len(t) > 2 and t[-1] in "sS" and t[-2] in "'’":
                t = t[:-2]
                if not t:
                    continue
            if self.lowercase:
                t = t.lower()
            if t in stop:
                continue
            out.append(t)
        if self._stem is not None and out:
            long = [i for i, t in enumerate(out) if len(t) >= self._min_stem_length]
            for i, stem in zip(long, self._stem([out[i] for i in long])):
                out[i] = stem
        return out

    def __repr__(self) -> str:
        return f"EnglishAnalyzer(stemmer={self.stemmer_name!r}, stopwords={self.stopwords_name!r})"
