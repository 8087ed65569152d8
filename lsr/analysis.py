"""An English text analyzer modelled on Lucene's ``EnglishAnalyzer`` (as Anserini uses it).

Pipeline, in Lucene's order:

1. **Tokenize** on word boundaries as Unicode UAX #29 draws them (Lucene's StandardTokenizer):
   runs of letters, decimal digits, underscores and combining marks (superscripts, subscripts and
   fractions break words: ``Fe²⁺`` gives ``Fe``); a MidLetter or MidNumLet character *between two
   letters* stays inside the word (``don't``, ``e.g``, ``mg·dL``), a MidNum or MidNumLet character
   *between two digits* inside the number (``3.14``, ``1,000``); every CJK ideograph and hiragana is a
   token of its own; an emoji (Extended_Pictographic, e.g. ``©``, ``™``, with its modifiers and ZWJ
   sequences) is a token. Tokens longer than 255 characters are cut, as Lucene does.
2. **Possessives**: a trailing ``'s`` (or ``’s``) is removed (EnglishPossessiveFilter).
3. **Lower-case.**
4. **Stop words**: Lucene's English list (33 words) by default.
5. **Stem**: Porter as Lucene's PorterStemFilter (Anserini's default) runs it: Martin Porter's reference
   implementation, which departs from the published algorithm (``bli -> ble``, ``logi -> log``, words of
   one or two letters untouched), through NLTK's ``PorterStemmer(mode=MARTIN_EXTENSIONS)`` with a
   per-word cache; or Snowball English through PyStemmer (``stemmer="english"``); or none.

Checked against Anserini 1.7.1 (Lucene 9): on NFCorpus and SciFact every document's term counts match
but for a handful of tokens (e.g. Lucene's treatment of some symbol sequences); remaining differences
from StandardTokenizer: Katakana and Hangul runs follow the generic word rule, and the UAX #29 rules for
regional indicators and Hebrew letters are not modelled.

Example:
    >>> from lsr.analysis import EnglishAnalyzer
    >>> EnglishAnalyzer()("The cat's 3.5 running-shoes, e.g. for Dr. Smith's dogs")
    ['cat', '3.5', 'run', 'shoe', 'e.g', 'dr', 'smith', 'dog']
"""

from __future__ import annotations

from collections.abc import Iterable

import regex

#: Lucene's default English stop words (EnglishAnalyzer.ENGLISH_STOP_WORDS_SET).
LUCENE_ENGLISH_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split()
)

# Word characters as UAX #29 counts them: letters, decimal digits (not superscripts, subscripts or
# fractions, which break words), marks, connector punctuation; ideographs and hiragana stand alone.
_WORD = r"[\w--\p{Han}--\p{Hiragana}]"
_MID_LETTER = ":\u00b7\u0387\u055f\u05f4\u2027\ufe13\ufe55\uff1a"        # between letters
_MID_NUM = ",;\u037e\u0589\u060c\u060d\u066c\u07f8\u2044\ufe10\ufe14\ufe50\ufe54\uff0c\uff1b"  # digits
_MID_NUM_LET = ".'\u2018\u2019\u2024\ufe52\uff07\uff0e"                       # between either
_TOKEN = regex.compile(
    rf"{_WORD}+(?:(?:(?<=\p{{L}}\p{{M}}*)[{_MID_LETTER}{_MID_NUM_LET}](?=\p{{L}})"
    rf"|(?<=\p{{Nd}})[{_MID_NUM}{_MID_NUM_LET}](?=\p{{Nd}})){_WORD}+)*"
    r"|[\p{Han}\p{Hiragana}]"                                                        # one ideograph a token
    r"|\p{Extended_Pictographic}(?:[\p{Emoji_Modifier}\ufe0f]|\u200d\p{Extended_Pictographic})*",  # emoji
    regex.V1,
)
MAX_TOKEN_LENGTH = 255
STEMMERS = ("porter", "english", "none")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into word tokens (step 1 of the module docstring), case preserved."""
    tokens = _TOKEN.findall(text)
    if any(len(t) > MAX_TOKEN_LENGTH for t in tokens):
        tokens = [t[:MAX_TOKEN_LENGTH] for t in tokens]
    return tokens


def _lucene_porter():
    """A list-of-words stemmer equal to Lucene's PorterStemmer (NLTK's reference-implementation mode).

    PyStemmer's ``porter`` follows the published 1980 algorithm, so it stems "possibly" to "possibli"
    where Lucene gives "possibl"; on NFCorpus that split 163 terms' postings from Anserini's.
    """
    from nltk.stem.porter import PorterStemmer

    stemmer = PorterStemmer(mode=PorterStemmer.MARTIN_EXTENSIONS)
    cache: dict[str, str] = {}

    def stem_words(words: list[str]) -> list[str]:
        out = []
        for w in words:
            s = cache.get(w)
            if s is None:
                s = cache[w] = stemmer.stem(w, to_lowercase=False)
            out.append(s)
        return out

    return stem_words


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
        if stemmer == "porter":
            self._stem = _lucene_porter()
        elif stemmer != "none":
            import Stemmer  # PyStemmer

            self._stem = Stemmer.Stemmer(stemmer).stemWords
        # Lucene's PorterStemmer leaves words of one or two letters alone; other stemmers see every word.
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
