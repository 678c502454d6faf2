"""Tokenizers: text to integer ids and back.

    CharTokenizer   one id per character (tiny corpora, nanoGPT's shakespeare_char)
    ByteLevelBPE    GPT-2's byte-level byte-pair encoding: train one, or load GPT-2's files
"""
from .base import Tokenizer, load_tokenizer
from .bpe import END_OF_TEXT, GPT2_PATTERN, TRUSTED_PATTERNS, ByteLevelBPE, bytes_to_unicode
from .char import CharTokenizer
from .train_bpe import merge_pair, train_merges

TOKENIZER_TYPES = {"CharTokenizer": CharTokenizer, "ByteLevelBPE": ByteLevelBPE}

__all__ = ["Tokenizer", "load_tokenizer", "CharTokenizer", "ByteLevelBPE", "END_OF_TEXT", "GPT2_PATTERN",
           "TRUSTED_PATTERNS", "bytes_to_unicode", "merge_pair", "train_merges"]
