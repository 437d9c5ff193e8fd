"""bm25s's English stopword list (``bm25s.stopwords.STOPWORDS_EN``, the Lucene list), kept here so that analysing a
query does not import the bm25s package (its ``__init__`` costs ~0.3 s of CPU, most of a CLI call).
``tests/unit/test_bm25_fastpath.py`` checks that it equals bm25s's own list."""

STOPWORDS_EN: tuple[str, ...] = (
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
)
