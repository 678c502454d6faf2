"""Compression with a model: the arithmetic coder by hand, exact round trips of any bytes,
refusals (another model, a damaged file, another device), the size beside the model's bound."""
import math
import struct
import zlib

import numpy as np
import pytest

from tinyllm.arithmetic_coder import ArithmeticDecoder, ArithmeticEncoder, decode_all, encode_all
from tinyllm.compress import compress, decompress
from tinyllm.model import GPT, GPTConfig
from tinyllm.tokenizer import ByteLevelBPE, CharTokenizer

TEXT = "the cat sat on the mat. the dog sat on the log. " * 8
CHARS = CharTokenizer.train(TEXT)


def small_gpt(vocab_size: int, seed: int = 0, dropout: float = 0.0) -> GPT:
    from tinyllm.backend import manual_seed
    manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=dropout))


@pytest.fixture(scope="module")
def bpe():
    return ByteLevelBPE.train(TEXT * 4, vocab_size=300)


def test_the_coder_by_hand():
    # Symbols 0, 1, 2 with frequencies 5, 2, 3 of 10: pieces [0, .5), [.5, .7), [.7, 1).
    table = [0, 5, 7, 10]
    # "2" alone: the interval [.7, 1); the shortest binary fraction inside is .11 = .75 -> bits 11, then zeros.
    assert encode_all([2], table) == bytes([0b11000000])
    # "0 1 2": [0, .5) -> [.25, .35) -> [.32, .35); .010101 = .328125 is inside, .0101 = .3125 is not.
    assert encode_all([0, 1, 2], table) == bytes([0b01010100])
    assert decode_all(bytes([0b01010100]), table, 3) == [0, 1, 2]


def test_the_coder_round_trips_and_costs_the_entropy():
    rng = np.random.default_rng(0)
    table = [0, 1, 2, 1000, 1 << 20]        # a symbol of probability 2^-20 among likely ones
    probs = np.diff(table) / table[-1]
    for n in (0, 1, 2, 7, 3000):
        symbols = rng.choice(4, n, p=probs).tolist()
        coded = encode_all(symbols, table)
        assert decode_all(coded, table, n) == symbols
        entropy = -sum(math.log2(probs[s]) for s in symbols)
        assert 8 * len(coded) <= entropy + 2 + 8       # two bits to end, at most a byte of padding


def test_the_coder_survives_long_runs_of_the_middle():
    # Symbol 1's piece straddles the middle: coding it again and again is the underflow case.
    table = [0, 1000, 2000 + 1000, 4000]
    symbols = [1] * 500 + [0, 2] * 50
    assert decode_all(encode_all(symbols, table), table, len(symbols)) == symbols


def test_the_coder_refuses_a_piece_it_cannot_code():
    with pytest.raises(ValueError, match="cannot code the piece"):
        encode_all([0], [0, 0, 5])                     # a symbol of frequency 0
    with pytest.raises(ValueError, match="cannot code the piece"):
        encode_all([0], [0, 1, 1 << 31])               # a total beyond MAX_TOTAL


def test_encoder_and_decoder_share_the_interval():
    encoder, table = ArithmeticEncoder(), [0, 3, 4, 9]
    for s in (0, 2, 1, 2):
        encoder.encode(table[s], table[s + 1] - table[s], table[-1])
    decoder = ArithmeticDecoder(encoder.finish())
    for s in (0, 2, 1, 2):
        assert table[s] <= decoder.target(table[-1]) < table[s + 1]
        decoder.decode(table[s], table[s + 1] - table[s], table[-1])
        assert (decoder.low, decoder.high) != (0, 0)


INPUTS = {
    "empty": b"",
    "one byte": b"t",
    "random bytes": np.random.default_rng(1).integers(0, 256, 400, dtype=np.uint8).tobytes(),
    "invalid UTF-8": b"the \xff\xfe cat \xc3 sat\xe2\x82",
    "outside the vocabulary": "the café sat on the mat — 🐈\r\n".encode(),
    "an end-of-text string": b"the cat<|endoftext|>sat",
    "several contexts": TEXT.encode(),               # 400 characters, block_size 16
}


@pytest.mark.parametrize("name", sorted(INPUTS))
@pytest.mark.parametrize("streams", [1, 3, 8])
def test_any_bytes_come_back_exactly(name, streams, bpe):
    data = INPUTS[name]
    for tok in (CHARS, bpe):
        model = small_gpt(tok.vocab_size)
        assert decompress(model, tok, compress(model, tok, data, streams)) == data


def test_escapes_carry_what_the_tokenizer_cannot_encode():
    stats = {}
    data = "the caté".encode()                        # é is not among CHARS: its two bytes are escaped
    compress(small_gpt(CHARS.vocab_size), CHARS, data, 1, stats=stats)
    assert stats["escaped_bytes"] == 2 and stats["tokens"] == len("the cat")


def test_dropout_is_off_while_coding_and_the_mode_comes_back():
    model = small_gpt(CHARS.vocab_size, dropout=0.5).train()
    blob = compress(model, CHARS, TEXT.encode(), 4)
    assert model.training
    assert decompress(model, CHARS, blob) == TEXT.encode()


def test_the_size_is_within_one_percent_of_the_models_bound():
    text = (TEXT * 6).encode()                         # 2,400 characters
    model = small_gpt(CHARS.vocab_size, seed=3)
    stats = {}
    blob = compress(model, CHARS, text, 4, stats=stats)
    assert stats["escaped_bytes"] == 0
    assert abs(stats["coded_bits"] / stats["bound_bits"] - 1) < 0.01
    assert len(blob) * 8 < 1.01 * stats["bound_bits"] + 8 * 80     # and the container adds under 80 bytes


def test_another_model_or_tokenizer_is_refused(bpe):
    blob = compress(small_gpt(CHARS.vocab_size), CHARS, b"the cat", 2)
    with pytest.raises(ValueError, match="compressed with a model with other weights"):
        decompress(small_gpt(CHARS.vocab_size, seed=1), CHARS, blob)
    other = CharTokenizer(CHARS.chars[::-1])
    with pytest.raises(ValueError, match="compressed with another tokenizer"):
        decompress(small_gpt(CHARS.vocab_size), other, blob)


def test_predictions_that_differ_fail_loudly_never_with_wrong_bytes(monkeypatch):
    """As if the decompressing machine computed other logits: the fingerprints agree, the
    frequencies do not; the decoded bytes miss the original's sha256 and decompress raises."""
    import tinyllm.compress as compress_module
    model = small_gpt(CHARS.vocab_size)
    blob = compress(model, CHARS, TEXT.encode(), 3)
    real = compress_module.probabilities
    monkeypatch.setattr(compress_module, "probabilities", lambda logits: real(logits * 1.01))
    with pytest.raises(ValueError, match="do not match the original's sha256"):
        decompress(model, CHARS, blob)


def test_a_damaged_file_is_detected():
    model = small_gpt(CHARS.vocab_size)
    blob = compress(model, CHARS, TEXT.encode(), 3)
    for position in range(4, len(blob), 7):            # a flipped byte anywhere after the magic
        damaged = bytearray(blob)
        damaged[position] ^= 0x10
        with pytest.raises(ValueError, match="damaged"):
            decompress(model, CHARS, bytes(damaged))
    with pytest.raises(ValueError, match="damaged"):
        decompress(model, CHARS, blob[:-1])
    with pytest.raises(ValueError, match="not a tinyllm compressed file"):
        decompress(model, CHARS, b"PK\x03\x04 a zip file")
    with pytest.raises(ValueError, match="of version 2"):
        decompress(model, CHARS, b"TLZ\x02" + blob[4:])


def test_another_device_is_refused_by_name():
    model = small_gpt(CHARS.vocab_size)
    blob = bytearray(compress(model, CHARS, b"the cat", 1))
    blob[24] = 1                                        # the device byte: "cuda"
    blob[4:8] = struct.pack(">I", zlib.crc32(bytes(blob[8:])))
    with pytest.raises(ValueError, match="compressed on 'cuda' and is being decompressed on 'cpu'"):
        decompress(model, CHARS, bytes(blob))


def test_compress_on_a_pretended_gpu(monkeypatch):
    from cuda_on_host import pretend_cupy
    pretend_cupy(monkeypatch)
    model = small_gpt(CHARS.vocab_size).to("cuda")
    data = INPUTS["outside the vocabulary"] + TEXT.encode()
    assert decompress(model, CHARS, compress(model, CHARS, data, 3)) == data


def test_bad_arguments_are_refused_by_name():
    model = small_gpt(CHARS.vocab_size)
    with pytest.raises(TypeError, match="compress takes bytes, got str"):
        compress(model, CHARS, "text")
    with pytest.raises(ValueError, match="streams must be at least 1"):
        compress(model, CHARS, b"text", 0)


def test_the_commands_round_trip_a_file(tmp_path, capsys):
    from tinyllm.checkpoint import save_checkpoint
    from tinyllm.cli import main
    save_checkpoint(tmp_path / "ckpt", small_gpt(CHARS.vocab_size), None, CHARS, step=0)
    source = tmp_path / "notes.txt"
    source.write_bytes(INPUTS["outside the vocabulary"] + TEXT.encode())
    assert main(["compress", "--ckpt", str(tmp_path / "ckpt"), str(source)]) == 0
    out = capsys.readouterr().out
    assert "notes.txt.tlz" in out and "gzip -9" in out and "xz -9e" in out
    assert main(["decompress", "--ckpt", str(tmp_path / "ckpt"), str(tmp_path / "notes.txt.tlz")]) == 2
    assert "exists; pass -f" in capsys.readouterr().err                     # the original is not overwritten
    again = tmp_path / "again.txt"
    assert main(["decompress", "--ckpt", str(tmp_path / "ckpt"), str(tmp_path / "notes.txt.tlz"),
                 "-o", str(again)]) == 0
    assert again.read_bytes() == source.read_bytes()
    assert main(["decompress", "--ckpt", str(tmp_path / "ckpt"), str(source), "-o", str(tmp_path / "x")]) == 2
    assert "not a tinyllm compressed file" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
