"""Datasets and batches: the registry (URL, sha256, mirror, cache), corpus readers, batching."""

from unroll.data.batching import SentenceBatch, batchify, iter_bptt, pad_batch, sections, sentence_batches
from unroll.data.corpus import Corpus, corpus_stats, load_corpus, read_csv_column, split_files
from unroll.data.download import cache_dir, data_dir, fetch, locate
from unroll.data.files import read_text, read_text_or_stdin
from unroll.data.imdb import IMDB_SPLITS, imdb_examples
from unroll.data.registry import DATASETS, Dataset, Source, get_dataset

__all__ = [
    "DATASETS", "IMDB_SPLITS", "Corpus", "Dataset", "SentenceBatch", "Source",
    "batchify", "cache_dir", "corpus_stats", "data_dir", "fetch", "get_dataset", "imdb_examples",
    "iter_bptt", "load_corpus", "locate", "pad_batch", "read_csv_column", "read_text", "read_text_or_stdin", "sections",
    "sentence_batches", "split_files",
]
