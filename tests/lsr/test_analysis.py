import pytest

from lsr.analysis import LUCENE_ENGLISH_STOPWORDS, EnglishAnalyzer, tokenize


@pytest.mark.parametrize("text,tokens", [
    ("Hello, world!", ["Hello", "world"]),
    ("don't stop", ["don't", "stop"]),
    ("U.S.A. and e.g. this", ["U.S.A", "and", "e.g", "this"]),
    ("pi is 3.14, not 1,000; v2.0", ["pi", "is", "3.14", "not", "1,000", "v2.0"]),
    ("state-of-the-art", ["state", "of", "the", "art"]),
    ("snake_case words", ["snake_case", "words"]),
    ("naïve café ọ́jà", ["naïve", "café", "ọ́jà"]),
    ("trailing. period", ["trailing", "period"]),
    ("", []),
])
def test_tokenize(text, tokens):
    assert tokenize(text) == tokens


def test_analyzer_pipeline():
    a = EnglishAnalyzer()
    assert a("The cat's running-shoes AND the Dogs' bowls") == ["cat", "run", "shoe", "dog", "bowl"]
    assert a("relational databases") == ["relat", "databas"]  # Porter


def test_stemmer_and_stopword_choices():
    assert len(LUCENE_ENGLISH_STOPWORDS) == 33
    assert EnglishAnalyzer(stemmer="none", stopwords="none")("The Cats") == ["the", "cats"]
    assert EnglishAnalyzer(stemmer="english")("generously") == ["generous"]
    assert EnglishAnalyzer(stemmer="porter")("generously") == ["gener"]
    assert EnglishAnalyzer(stopwords=["cat"])("the cat") == ["the"]
    with pytest.raises(ValueError, match="unknown stemmer"):
        EnglishAnalyzer(stemmer="krovetz")


def test_long_tokens_are_cut():
    assert tokenize("x" * 300) == ["x" * 255]
