"""Trains the sentencepiece tokenizer on the caption vocabulary, and tokenizes text like Wan's T5 tokenizer.

BPE with 128 pieces: every caption word is one piece, other words fall back to letters. Special ids follow
UMT5: <pad>=0, </s>=1, <unk>=2, no <s>. The model lowercases (nmt_nfkc_cf) so "A Red
Circle" and "a red circle" give the same ids. Tokenizing: clean (html-unescape twice, collapse whitespace;
Wan also runs ftfy, a no-op on our ASCII captions), pieces, then </s>; truncate to text_len-1 pieces; pad
with 0. Usage: python3 train_tokenizer.py --out DIR [--vocab-size N]. Not here: the C++ tokenizer.
"""
import argparse
import html
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dataset  # noqa: E402

PAD_ID, EOS_ID, UNK_ID = 0, 1, 2


def corpus():
    """Every single-object caption plus two-object ones, so every word and 'and' are seen."""
    lines = dataset.all_captions(include_held_out=True)
    rng = np.random.default_rng(0)
    for _ in range(500):
        spec = dataset.sample_spec(rng, (64, 64), 5, split="all", two_objects=True)
        lines.append(dataset.caption(spec))
    return lines


def train(out_path, vocab_size=128):
    """Writes out_path (a .model file); returns the loaded SentencePieceProcessor."""
    import sentencepiece as spm

    prefix = out_path[:-len(".model")] if out_path.endswith(".model") else out_path
    with tempfile.TemporaryDirectory() as tmp:
        txt = os.path.join(tmp, "captions.txt")
        with open(txt, "w") as f:
            f.write("\n".join(corpus()) + "\n")
        saved = os.dup(2)  # the trainer logs its whole spec to fd 2; keep it out of the run's log
        with open(os.path.join(tmp, "spm.log"), "w") as logf:
            os.dup2(logf.fileno(), 2)
            try:
                spm.SentencePieceTrainer.train(
                    input=txt, model_prefix=prefix, vocab_size=vocab_size, model_type="bpe",
                    character_coverage=1.0, hard_vocab_limit=False, normalization_rule_name="nmt_nfkc_cf",
                    pad_id=PAD_ID, eos_id=EOS_ID, unk_id=UNK_ID, bos_id=-1, num_threads=1)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
    os.remove(prefix + ".vocab")
    return load(prefix + ".model")


def load(path):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=path)


def clean(text):
    text = html.unescape(html.unescape(text)).strip()
    return " ".join(text.split())


def tokenize(sp, texts, text_len):
    """List of strings -> (ids, mask) int64 numpy [B, text_len]."""
    ids = np.zeros((len(texts), text_len), np.int64)
    mask = np.zeros((len(texts), text_len), np.int64)
    for i, t in enumerate(texts):
        pieces = sp.encode(clean(t))[:text_len - 1] + [EOS_ID]
        ids[i, :len(pieces)] = pieces
        mask[i, :len(pieces)] = 1
    return ids, mask


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output .model path")
    ap.add_argument("--vocab-size", type=int, default=128)
    args = ap.parse_args()
    sp = train(args.out, args.vocab_size)
    ids, mask = tokenize(sp, ["a red circle moving left on a black background"], 32)
    print(f"{args.out}: vocab {sp.get_piece_size()}, example ids {ids[0, :mask[0].sum()].tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
