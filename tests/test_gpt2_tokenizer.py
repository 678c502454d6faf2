"""GPT-2's released tokenizer files, loaded into ByteLevelBPE, give GPT-2's ids.

Needs ../shared/data/gpt2/ (skipped when absent); the tiktoken comparison also
needs tiktoken (CI installs it), built offline from the same two files.
"""
import pytest

from conftest import SHARED_DATA
from tinyllm.tokenizer import GPT2_PATTERN, ByteLevelBPE

GPT2_DIR = SHARED_DATA / "gpt2"
pytestmark = pytest.mark.skipif(not (GPT2_DIR / "encoder.json").exists(), reason="GPT-2 files not in ../shared")

MIXED_TEXT = """\
def fibonacci(n: int) -> int:
    \"\"\"Return the n-th Fibonacci number.\"\"\"
    a, b = 0, 1
    for _ in range(n):   # loop   with   runs of spaces
        a, b = b, a + b
    return a

I'm sure you'll see they've done it; we'd say it's what he's
doing. Don't! Won't? CAN'T... 1234567890 3.14159 -42 1e-9 0x1F
Ünïcödé: naïve café, Straße, Ελληνικά, русский, 日本語のテキスト, 한국어, عربى
Emoji: 😀🎉 👍🏽 🇫🇷 👨‍👩‍👧 ✨\t\ttabs\r\nCRLF line\n\n\n   trailing   \n
""" * 6


@pytest.fixture(scope="module")
def gpt2():
    return ByteLevelBPE.from_gpt2_files(GPT2_DIR / "encoder.json", GPT2_DIR / "vocab.bpe")


def test_hello_world(gpt2):
    assert gpt2.encode("Hello world") == [15496, 995]
    assert gpt2.vocab_size == 50257


def test_endoftext_when_allowed(gpt2):
    assert gpt2.encode("<|endoftext|>", allowed_special="all") == [50256]
    with pytest.raises(ValueError, match="special token"):
        gpt2.encode("<|endoftext|>")


def test_round_trip_mixed_text(gpt2):
    assert len(MIXED_TEXT.encode()) >= 2048
    assert gpt2.decode(gpt2.encode(MIXED_TEXT)) == MIXED_TEXT


def test_matches_tiktoken_token_for_token(gpt2):
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    ranks = data_gym_to_mergeable_bpe_ranks(str(GPT2_DIR / "vocab.bpe"), str(GPT2_DIR / "encoder.json"))
    reference = tiktoken.Encoding("gpt2-offline", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                                  special_tokens={"<|endoftext|>": 50256}, explicit_n_vocab=50257)
    text = MIXED_TEXT + "<|endoftext|>" + MIXED_TEXT[:500]
    assert gpt2.encode(text, allowed_special="all") == reference.encode(text, allowed_special="all")
