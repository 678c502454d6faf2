"""The data pipeline: corpora from a URL (served here on 127.0.0.1), the encoded-corpus cache, id dtypes."""
import hashlib
import http.server
import threading

import numpy as np
import pytest

from tinyllm.data import cache_dir, encode_corpus, load_corpus
from tinyllm.tokenizer import CharTokenizer

TEXT = "To be, or not to be: that is the question.\n" * 200


class _Handler(http.server.BaseHTTPRequestHandler):
    requests = []

    def do_GET(self):
        _Handler.requests.append(self.path)
        body = TEXT.encode()
        if self.path == "/missing.txt":
            self.send_error(404)
            return
        self.send_response(200)
        # /short.txt promises more bytes than it sends, as a dropped connection would
        self.send_header("Content-Length", str(len(body) + (100 if self.path == "/short.txt" else 0)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    for name in ("no_proxy", "NO_PROXY"):  # a machine's http_proxy must not catch requests to ourselves
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    monkeypatch.setenv("TINYLLM_ALLOW_HTTP", "1")   # this server speaks plain http
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.requests.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_url_is_downloaded_once_and_checked(server, capsys):
    sha = hashlib.sha256(TEXT.encode()).hexdigest()
    assert load_corpus(f"{server}/hamlet.txt", sha256=sha) == TEXT
    assert "downloading" in capsys.readouterr().err  # the progress line
    assert load_corpus(f"{server}/hamlet.txt", sha256=sha) == TEXT
    assert _Handler.requests == ["/hamlet.txt"]  # the second time came from the cache
    with pytest.raises(ValueError, match="does not have sha256"):
        load_corpus(f"{server}/hamlet.txt", sha256="0" * 64)


def test_a_bad_download_leaves_nothing_behind(server):
    with pytest.raises(ValueError, match="has sha256 .*, expected 0000"):
        load_corpus(f"{server}/other.txt", sha256="0" * 64)
    with pytest.raises(ValueError, match="stopped after"):
        load_corpus(f"{server}/short.txt")
    with pytest.raises(RuntimeError, match="could not download .*missing.txt"):
        load_corpus(f"{server}/missing.txt")
    assert list((cache_dir() / "downloads").glob("*")) == []


def test_plain_http_needs_a_hash_or_an_opt_in_and_downloads_have_a_size_cap(server, monkeypatch):
    monkeypatch.delenv("TINYLLM_ALLOW_HTTP")
    with pytest.raises(ValueError, match="plain http can be changed on its way here; give the file's sha256"):
        load_corpus(f"{server}/plain.txt")
    sha = hashlib.sha256(TEXT.encode()).hexdigest()
    assert load_corpus(f"{server}/plain.txt", sha256=sha) == TEXT     # a hash makes http safe enough
    monkeypatch.setenv("TINYLLM_MAX_DOWNLOAD_MB", "0.005")              # 5,000 bytes; TEXT is 8,800
    with pytest.raises(ValueError, match="is larger than 0.005 MB, the most tinyllm downloads"):
        load_corpus(f"{server}/big.txt", sha256=sha)
    assert list((cache_dir() / "downloads").glob("*big*")) == []       # nothing half-written


def test_a_local_corpus_is_checked_against_the_hash_given(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT)
    assert load_corpus(str(path), sha256=hashlib.sha256(TEXT.encode()).hexdigest()) == TEXT
    with pytest.raises(ValueError, match="corpus.txt does not have sha256 0000"):
        load_corpus(str(path), sha256="0" * 64)


def test_a_bpe_made_for_documents_joined_by_endoftext_keeps_it_one_token():
    from tinyllm.data import make_tokenizer
    corpus = "the first document.<|endoftext|>the second one.<|endoftext|>" * 20
    tok = make_tokenizer("bpe", corpus, vocab_size=280)
    assert tok.special_tokens == {"<|endoftext|>": 279} and len(tok.merges) == 280 - 256 - 1
    ids = encode_corpus(corpus, tok).tolist()
    assert ids.count(279) == 40 and tok.decode(ids) == corpus
    assert make_tokenizer("bpe", "no separators here " * 20, vocab_size=280).special_tokens == {}


def test_encoded_corpus_is_cached_as_npy():
    tok = CharTokenizer.train(TEXT)
    ids = encode_corpus(TEXT, tok, cache=True)
    files = list((cache_dir() / "tokens").glob("*.npy"))
    assert len(files) == 1 and ids.dtype == np.uint16
    np.testing.assert_array_equal(np.load(files[0]), ids)
    np.save(files[0], ids[:10])           # whatever the file holds is what comes back ...
    assert len(encode_corpus(TEXT, tok, cache=True)) == 10
    files[0].write_bytes(b"garbage")      # ... and a damaged file is encoded again
    np.testing.assert_array_equal(encode_corpus(TEXT, tok, cache=True), ids)
    other = CharTokenizer.train(TEXT + "#")  # another tokenizer, another cache entry
    encode_corpus(TEXT, other, cache=True)
    assert len(list((cache_dir() / "tokens").glob("*.npy"))) == 2


def test_id_dtype_follows_the_vocabulary():
    small = CharTokenizer("ab")
    assert encode_corpus("abba", small).dtype == np.uint16
    wide = CharTokenizer("".join(chr(i) for i in range(0x100, 0x100 + 70_000) if not 0xD800 <= i < 0xE000))
    assert wide.vocab_size > 65_536
    assert encode_corpus("\u0100\u0101", wide).dtype == np.uint32
    with pytest.raises(ValueError, match="does not fit uint16"):
        encode_corpus("\u0100", wide, dtype=np.uint16)


def test_fuzzed_corpus_files_load_or_fail_with_one_clear_error(tmp_path):
    from fuzzing import loads_or_refuses, mutated
    rng = np.random.default_rng(0)
    good = ("First Citizen:\nBefore we proceed any further, hear me speak. Café, naïve — 😀\n" * 200).encode()
    path = tmp_path / "fuzzed.txt"

    def load(i):
        path.write_bytes(mutated(good, rng))
        text = load_corpus(str(path))
        assert isinstance(text, str) and text
    outcomes = loads_or_refuses(load, 300)
    assert outcomes["refused"] > 30 and outcomes["loaded"] > 30, outcomes
