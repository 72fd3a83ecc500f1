"""open_clip's CLIP tokenizer (SimpleTokenizer) without torch or open_clip: HF `tokenizers` does the BPE.

The vocabulary and merges are open_clip's own (`bpe_simple_vocab_16e6.txt.gz`, laid out exactly as
SimpleTokenizer lays them out) and are saved as a `tokenizer.json`. The steps around the BPE are open_clip's,
reproduced here: the text is cleaned (ftfy, HTML entities, whitespace, lower case), split by open_clip's
regular expression (with `regex`, as open_clip does), each piece is byte-level mapped and BPE-merged with the
`</w>` end-of-word suffix, the special tokens `<start_of_text>` / `<end_of_text>` keep their own ids, and rows
are `[sot] ids [eot]`, truncated to the context with the last id replaced by eot, zero-padded.

tests/test_onnx_text.py checks the ids against open_clip.tokenize over a range of texts.
"""

from __future__ import annotations

import gzip
import html
import json
import string
from pathlib import Path
from typing import Sequence

import numpy as np

SPECIALS = ("<start_of_text>", "<end_of_text>")
PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""  # open_clip's, after the specials
CLEANS = ("lower", "whitespace", "canonicalize")


def split_pattern(extra_specials: Sequence[str] = ()) -> str:
    """open_clip's split: the special tokens first, then words, single digits, punctuation runs; any case."""
    return "(?i)" + "|".join([*SPECIALS, *extra_specials]) + "|" + PATTERN


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map, as open_clip builds it (order matters: ids)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def vocab_and_merges(bpe_gz: Path, extra_specials: Sequence[str] = ()) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """open_clip SimpleTokenizer's vocabulary (token -> id) and merges, from its .txt.gz file."""
    lines = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + [*SPECIALS, *extra_specials]
    return {t: i for i, t in enumerate(tokens)}, merges  # type: ignore[return-value]


def build_tokenizer_json(bpe_gz: Path, out: Path, extra_specials: Sequence[str] = ()) -> Path:
    """Write open_clip's BPE as a HF tokenizer.json: open_clip's split, byte-level pieces, BPE with </w>."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab, merges = vocab_and_merges(bpe_gz, extra_specials)
    tok = Tokenizer(models.BPE(vocab, merges, end_of_word_suffix="</w>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split_pattern(extra_specials)), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    tmp = out.with_name(out.name + ".tmp")
    tok.save(str(tmp))
    tmp.replace(out)
    return out


# -- cleaning: open_clip.tokenizer's basic_clean / whitespace_clean / canonicalize_text ---------------------
def _basic_clean(text: str) -> str:
    import ftfy

    return html.unescape(html.unescape(ftfy.fix_text(text))).strip()


def _whitespace_clean(text: str) -> str:
    return " ".join(text.split()).strip()


_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def clean(text: str, how: str) -> str:
    if how == "lower":
        return _whitespace_clean(_basic_clean(text)).lower()
    if how == "whitespace":
        return _whitespace_clean(_basic_clean(text))
    if how == "canonicalize":
        text = _basic_clean(text).replace("_", " ").translate(_NO_PUNCTUATION).lower()
        return " ".join(text.split()).strip()
    raise ValueError(f"unknown clean {how!r}; use one of {', '.join(CLEANS)}")


class ClipBpeTokenizer:
    """Token ids exactly as open_clip's SimpleTokenizer gives them, as an int64 array [batch, context]."""

    def __init__(self, tokenizer_json: Path, context_length: int = 77, clean: str = "lower",
                 extra_specials: Sequence[str] = ()) -> None:
        import regex
        from tokenizers import Tokenizer

        if clean not in CLEANS:
            raise ValueError(f"unknown clean {clean!r}; use one of {', '.join(CLEANS)}")
        self.tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self.context_length, self.clean = int(context_length), clean
        specials = [*SPECIALS, *extra_specials]
        self.special_ids = {s: self.tokenizer.token_to_id(s) for s in specials}
        if None in self.special_ids.values():
            raise ValueError(f"{tokenizer_json} is not an open_clip CLIP tokenizer: it lacks {', '.join(specials)}")
        self.sot, self.eot = self.special_ids[SPECIALS[0]], self.special_ids[SPECIALS[1]]
        self.pattern = regex.compile(split_pattern(extra_specials))

    def encode(self, text: str) -> list[int]:
        """The ids of one text, without sot/eot."""
        ids: list[int] = []
        words: list[str] = []
        for piece in self.pattern.findall(clean(text, self.clean)):
            if piece in self.special_ids:  # open_clip keeps exactly these strings whole (its BPE cache)
                ids += self._bpe(words)
                words = []
                ids.append(self.special_ids[piece])
            else:
                words.append(piece)
        return ids + self._bpe(words)

    def _bpe(self, words: list[str]) -> list[int]:
        if not words:
            return []
        return self.tokenizer.encode(words, is_pretokenized=True, add_special_tokens=False).ids

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for i, text in enumerate(texts):
            ids = [self.sot, *self.encode(text), self.eot]
            if len(ids) > self.context_length:
                ids = ids[: self.context_length]
                ids[-1] = self.eot
            out[i, : len(ids)] = ids
        return out

    @classmethod
    def from_config(cls, folder: Path, config: dict) -> "ClipBpeTokenizer":
        return cls(folder / config["file"], config["context_length"], config.get("clean", "lower"),
                   config.get("extra_specials", ()))


def tokenizer_config(file_name: str, context_length: int, clean_how: str,
                     extra_specials: Sequence[str] = ()) -> dict:
    """What a manifest records to rebuild the tokenizer (json-serialisable)."""
    return json.loads(json.dumps({"kind": "clip-bpe", "file": file_name, "context_length": int(context_length),
                                  "clean": clean_how, "extra_specials": list(extra_specials)}))
