"""Tokenizers: hand-computed merges, exactness against the textbook trainer, round trips, files, errors."""
import json

import numpy as np
import pytest

from tinyllm.tokenizer import GPT2_PATTERN, ByteLevelBPE, CharTokenizer, load_tokenizer, merge_pair, train_merges
from tinyllm.tokenizer.train_bpe import count_words, train_merges_slowly


def pydoc_text() -> str:
    from pydoc_data.topics import topics
    return "\n".join(topics[k] for k in sorted(topics))


def test_merge_pair_scans_left_to_right():
    assert merge_pair([1, 1, 1, 2], (1, 1), 9) == [9, 1, 2]
    assert merge_pair([1, 1, 1, 1], (1, 1), 9) == [9, 9]
    assert merge_pair([1, 2, 3], (3, 4), 9) == [1, 2, 3]


def test_hand_computed_merges():
    # "aaabdaaabac": (a,a) occurs 4 times -> 256; the word is then [256,a,b,d,256,a,b,a,c].
    # (a,b) and (256,a) both occur twice: the tie goes to the smaller pair (97,98) -> 257.
    # Then (256,257) occurs twice -> 258, and the word reads [258, d, 258, a, c].
    tok = ByteLevelBPE.train("aaabdaaabac", vocab_size=259)
    assert tok.merges == [(97, 97, 256), (97, 98, 257), (256, 257, 258)]
    assert tok.encode("aaabdaaabac") == [258, ord("d"), 258, ord("a"), ord("c")]


def test_encode_merges_by_rank_not_by_position():
    # merges: (b, c) -> 256 first, then (a, b) -> 257. In "abc" the pair (a, b) comes first in the
    # text, but (b, c) has the lower rank, so it merges first: [a, 256], and (a, 256) is no merge.
    a, b, c = ord("a"), ord("b"), ord("c")
    tok = ByteLevelBPE([(b, c, 256), (a, b, 257), (257, 257, 258)])
    assert tok.encode("abc") == [a, 256]
    assert tok.encode("abab") == [258]                    # (a, b) twice -> 257 257 -> 258
    assert tok.encode("cab ab") == [c, 257, ord(" "), 257]  # " ab" is a pre-token of its own
    assert tok.encode("é") == list("é".encode("utf-8"))   # two bytes, no merge: two ids


def test_ties_go_to_the_smallest_pair():
    # (d,c), (c,b) and (b,a) each occur once: the smallest pair, (b,a) = (98, 97), is merged first
    assert train_merges({b"dcba": 1}, 1) == [(ord("b"), ord("a"))]


def test_fast_trainer_equals_textbook_trainer():
    text = pydoc_text()[:60_000]
    from tinyllm.tokenizer import GPT2_PATTERN
    import regex
    words = count_words(regex.findall(GPT2_PATTERN, text))
    fast = train_merges(words, 300)
    assert len(fast) == 300
    assert fast == train_merges_slowly(words, 300)


def random_texts(n: int, seed: int = 0):
    """Strings mixing ASCII, whitespace runs, CRLF, accents, combining marks, CJK, emoji and any code point."""
    rng = np.random.default_rng(seed)
    pools = ["abcXYZ019 ,.'!?-_", " \t\n", "\r\n", "éüßñçØ", "\u0301\u0308\u20dd", "漢字かなカナ한국어",
             "😀🎉👍🏽🇫🇷‍", "'s 're 've 'll"]
    for _ in range(n):
        parts = []
        for _ in range(rng.integers(0, 12)):
            kind = rng.integers(0, len(pools) + 1)
            if kind == len(pools):  # any code point except surrogates
                cp = int(rng.integers(0, 0x110000))
                parts.append(chr(cp) if not 0xD800 <= cp < 0xE000 else "x")
            else:
                pool = pools[kind]
                parts.append("".join(pool[i] for i in rng.integers(0, len(pool), rng.integers(1, 6))))
        yield "".join(parts)


@pytest.fixture(scope="module")
def trained():
    return ByteLevelBPE.train(pydoc_text()[:100_000], vocab_size=512, special_tokens=["<|endoftext|>"])


def test_round_trip_on_thousands_of_unicode_strings(trained):
    for text in random_texts(3000):
        ids = trained.encode(text)
        assert trained.decode(ids) == text
        assert trained.decode_bytes(ids) == text.encode("utf-8")


def test_decode_replaces_invalid_utf8_but_decode_bytes_is_exact(trained):
    ids = trained.encode("é")  # two bytes, 0xC3 0xA9, possibly one token
    first_byte_only = [trained.byte_ids[0xC3]]
    assert trained.decode(first_byte_only) == "\ufffd"
    assert trained.decode_bytes(first_byte_only) == b"\xc3"
    assert trained.decode(ids) == "é"


def test_the_stream_decoder_gives_a_character_split_over_tokens_whole():
    tok = ByteLevelBPE.train("plain ascii text " * 20, 260)
    ids = tok.encode("né €!")    # é is 2 bytes and € is 3, each byte a token of its own here
    assert len(ids) == 8 and [tok.decode([i]) for i in ids].count("\ufffd") == 5   # alone, no byte is text
    stream = tok.stream_decoder()
    pieces = [stream(i) for i in ids]
    assert pieces == ["n", "", "é", " ", "", "", "€", "!"]   # each character when its last byte came
    chars = CharTokenizer("ab")
    assert [chars.stream_decoder()(i) for i in chars.encode("abba")] == ["a", "b", "b", "a"]


def test_token_labels_show_the_bytes_of_part_of_a_character():
    from tinyllm.sample import token_label
    tok = ByteLevelBPE.train("plain ascii text " * 20, 260)
    first_byte_of_e_acute = tok.byte_ids[0xC3]
    assert token_label(tok, first_byte_of_e_acute) == "b'\\xc3'"       # not '\ufffd'
    assert token_label(tok, tok.encode(" text")[0]) == repr(tok.decode(tok.encode(" text")[:1]))
    assert token_label(CharTokenizer("ab"), 1) == "'b'"


def test_special_tokens(trained):
    eot = trained.special_tokens["<|endoftext|>"]
    assert eot == 511 and trained.vocab_size == 512
    text = "end.<|endoftext|>Start"
    with pytest.raises(ValueError, match="special token '<\\|endoftext\\|>'"):
        trained.encode(text)
    ids = trained.encode(text, allowed_special="all")
    assert eot in ids and trained.decode(ids) == text
    assert trained.encode(text, allowed_special={"<|endoftext|>"}) == ids
    plain = trained.encode(text, allowed_special="none")
    assert eot not in plain and trained.decode(plain) == text
    with pytest.raises(ValueError, match=r"not special tokens of this tokenizer: \['<\|im_end\|>'\]"):
        trained.encode(text, allowed_special={"<|endoftext|>", "<|im_end|>"})


def test_unknown_id_is_a_clear_error(trained):
    with pytest.raises(ValueError, match="token id 9999 is not in the vocabulary"):
        trained.decode([1, 9999])


def test_encode_takes_text_not_bytes(trained):
    for tok in (trained, CharTokenizer("ab")):
        with pytest.raises(TypeError, match=r"encode expects text \(a str\), got bytes \(decode bytes first"):
            tok.encode(b"ab")


def test_save_and_load_round_trip(trained, tmp_path):
    path = tmp_path / "tok.json"
    trained.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "ByteLevelBPE" and len(data["merges"]) == 512 - 256 - 1
    loaded = load_tokenizer(path)
    text = "Hello, wörld! 12345 <|endoftext|>"
    assert loaded.encode(text, allowed_special="all") == trained.encode(text, allowed_special="all")
    assert ByteLevelBPE.load(path).merges == trained.merges


def test_bad_tokenizer_files_are_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a tokenizer file"):
        load_tokenizer(bad)
    bad.write_text(json.dumps({"type": "ByteLevelBPE", "merges": []}))
    with pytest.raises(ValueError, match="corrupt ByteLevelBPE file"):
        load_tokenizer(bad)
    with pytest.raises(FileNotFoundError, match="no tokenizer file"):
        load_tokenizer(tmp_path / "missing.json")
    CharTokenizer("ab").save(bad)
    with pytest.raises(ValueError, match="holds a CharTokenizer, not a ByteLevelBPE"):
        ByteLevelBPE.load(bad)
    bad.write_text(json.dumps({"type": "ByteLevelBPE", "merges": [], "byte_ids": [0, 1], "special_tokens": {},
                               "pattern": GPT2_PATTERN}))
    with pytest.raises(ValueError, match="corrupt ByteLevelBPE file.*byte_ids must be 256 distinct ids"):
        load_tokenizer(bad)
    for chars in ("", "aba"):
        with pytest.raises(ValueError, match="CharTokenizer needs a non-empty string of distinct characters"):
            CharTokenizer(chars)


def test_training_arguments_are_checked():
    with pytest.raises(ValueError, match="below the 256 byte tokens"):
        ByteLevelBPE.train("abc", vocab_size=100)
    with pytest.raises(ValueError, match="empty text"):
        ByteLevelBPE.train("", vocab_size=300)


def test_verbose_training_reports_progress(capsys):
    ByteLevelBPE.train("the cat sat on the mat " * 50, vocab_size=270, verbose=True)
    err = capsys.readouterr().err
    assert "merges/s" in err and "new token" in err


def test_char_tokenizer():
    tok = CharTokenizer.train("hello world")
    assert tok.vocab_size == 8 and tok.chars == " dehlorw"
    assert tok.decode(tok.encode("hello")) == "hello"
    with pytest.raises(ValueError, match=r"character 'Z' \(U\+005A\) is not in this tokenizer's vocabulary"):
        tok.encode("Zoo")
    with pytest.raises(ValueError, match=r"^characters 'Z' \(U\+005A\), '!' \(U\+0021\) are not in this "):
        tok.encode("hello Z! Z")                            # every unknown character, the most frequent first
    with pytest.raises(ValueError, match=r"'2' \(U\+0032\) and 7 more are not"):
        tok.encode("ABCDEFG0123456789")                     # ten named, the rest counted
    with pytest.raises(ValueError, match="token id 8 is not in the vocabulary"):
        tok.decode([8])
    with pytest.raises(ValueError, match="empty text"):
        CharTokenizer.train("")


def untrusted(tmp_path, **change):
    """A small valid BPE file with ``change`` made to it, as a stranger might send it."""
    tok = ByteLevelBPE.train("the thin tin in the hat " * 50, 270, special_tokens=["<|endoftext|>"])
    data = {**tok.to_dict(), **change}
    path = tmp_path / "untrusted.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("change, problem", [
    (dict(merges=[[0, 300, 256]]), "merge 0 joins id 300, which no byte or earlier merge defines"),
    (dict(merges=[[0, 1, 256], [256, 2, 256]]), "merge 1 makes id 256, which is already defined"),
    (dict(merges=[[0, 0, 256]] + [[255 + i, 255 + i, 256 + i] for i in range(1, 12)]),
     "merge 10 makes a token of 2048 bytes, more than 1024"),                 # each merge doubles the token
    (dict(merges=[[0, 1, 256]], special_tokens={"<|endoftext|>": 5}), "special token '<|endoftext|>' has id 5"),
    (dict(merges=[[0, 1, 260]], special_tokens={}), r"its ids have gaps \(no token has id 256, 257, 258, 259\)"),
    (dict(merges=[[0, 1, True]]), r"merge 0 is \[0, 1, true\]|merge 0 is \[0, 1, True\]"),
    (dict(byte_ids=list(range(255)) + [0]), "byte_ids must be 256 distinct ids"),
    (dict(pattern=r"(a+)+$"), "pre-tokenizer pattern is not GPT-2's"),
])
def test_an_untrusted_tokenizer_file_is_checked_before_use(change, problem, tmp_path):
    with pytest.raises(ValueError, match=f"untrusted.json: corrupt ByteLevelBPE file .*{problem}"):
        load_tokenizer(untrusted(tmp_path, **change))


def test_a_trusted_custom_pattern_loads(tmp_path, monkeypatch):
    import tinyllm.tokenizer.bpe as bpe
    monkeypatch.setattr(bpe, "TRUSTED_PATTERNS", {GPT2_PATTERN, r"\w+|\W"})
    assert load_tokenizer(untrusted(tmp_path, pattern=r"\w+|\W")).pattern == r"\w+|\W"


def test_fuzzed_tokenizer_files_load_or_fail_with_one_clear_error(tmp_path):
    from fuzzing import loads_or_refuses, mutated
    good = untrusted(tmp_path).read_bytes()
    rng = np.random.default_rng(0)
    path = tmp_path / "fuzzed.json"

    def load(i):
        path.write_bytes(mutated(good, rng, alphabet=b'0123456789[],{}":'))   # JSON's own characters: still JSON, often
        tok = load_tokenizer(path)
        assert tok.decode(tok.encode("the thin hat")) == "the thin hat"   # what loads, works
    assert loads_or_refuses(load, 300)["refused"] > 100
