#!/usr/bin/python3
# Regenerates the tokenizer test data in this folder (run once; the outputs are committed):
#   tiny_unigram.model   a tiny sentencepiece unigram model trained like UMT5's (pad 0, </s> 1, <unk> 2,
#                        no <s>, byte fallback), vocab 900 so its ids fit the tiny T5 golden model;
#   tokenizer_cases.json prompts with the Wan-cleaned text and the python-sentencepiece ids, padded/truncated
#                        to 512 as the official tokenizer call does (pieces[:511] + </s>, pad 0);
#   clean_cases.json     html.unescape-twice + whitespace-collapse results of Python 3 for random strings that
#                        use only the entity subset vdit implements (dit/text/html_entities.cpp).
# Needs python3 with sentencepiece (Debian: python3-sentencepiece). ftfy is deliberately not used: vdit does
# not reproduce ftfy.fix_text (see dit/text/README.md), so the oracle here is Wan's cleaning without it.
import html
import html.entities
import json
import os
import random
import re
import tempfile

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_LEN = 512

WORDS = """a an the cat dog bird fish horse city street forest river mountain ocean sky sun moon star night day
morning evening rain snow wind fire light shadow red blue green yellow white black golden silver old young small
large tall short fast slow happy sad calm wild running walking flying swimming jumping dancing sitting standing
looking smiling playing with on in under over near through across between behind camera shot close up wide angle
slow motion cinematic realistic style painting photo video scene background foreground detailed high quality soft
warm cold bright dark light beautiful woman man child girl boy people crowd car train boat plane building house
window door table chair flower tree grass leaf water wave beach sand stone road bridge tower castle garden park
and of to from at by is are was were it its this that these those very more most""".split()

CHINESE = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
           "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
           "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走。一只猫在草地上奔跑，阳光明媚。")

EXTRA = ["Ünïcödé àccents café naïve résumé", "Ελληνικά κείμενο", "русский текст видео", "0123456789 2024 1080p",
         "Tom & Jerry <3 \"quotes\" 'single' (parens) [brackets] {braces} 50% $10 #tag @user", "A-B_C.D,E;F:G!H?"]


def wan_clean(text):
    # W wan/modules/tokenizers.py: basic_clean without ftfy, then whitespace_clean.
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


def train_model(path_prefix):
    rng = random.Random(1234)
    lines = []
    for _ in range(3000):
        lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))).capitalize() + ".")
    for _ in range(200):
        k = rng.randint(0, len(CHINESE) - 20)
        lines.append(CHINESE[k:k + rng.randint(8, 40)])
    lines += EXTRA * 20 + [CHINESE] * 20
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
        corpus = f.name
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=path_prefix, model_type="unigram", vocab_size=900, pad_id=0, eos_id=1,
        unk_id=2, bos_id=-1, byte_fallback=True, character_coverage=1.0, num_threads=1, minloglevel=2,
        seed_sentencepiece_size=100000, shuffle_input_sentence=False)
    os.remove(corpus)
    os.remove(path_prefix + ".vocab")


def prompts():
    long_prompt = " ".join(
        f"scene {i}: a {WORDS[i % len(WORDS)]} {WORDS[(7 * i) % len(WORDS)]} near the river, 画面{i}" for i in range(160))
    return [
        "A cat walks on the grass, realistic style.",
        "  Multiple   spaces\tand\ttabs\n\nand newlines  ",
        "Tom &amp; Jerry &lt;3 &quot;cartoon&quot; &apos;classic&apos;&nbsp;show&#33;",
        "&amp;amp; double &amp;lt;escaped&amp;gt; and &amp;#65; numeric",
        "&#65;&#x42;&#X43; &#128512; &#0; &#x80; &#1114112; &#xD800; &#13; &#11;",
        "legacy &ampersand &copy2024 &notit; &eacute; &eacute &LT &AMP; &nbsp&nbsp;x",
        "unknown &foo; &#; &#x; &#xZZ; & alone &; &&amp;",
        CHINESE,
        "A dog 🐕 playing with a ball ⚽ at sunset 🌅, 4K 😀",
        "Ünïcödé àccents, Ελληνικά, русский текст, ＡＢＣ１２３，ｆｕｌｌ ｗｉｄｔｈ",
        "a\u3000b\u00a0c\u2003d\u0085e\u2028f\u001cg\u000bh",
        "“Curly quotes” and ‘single’ — dashes… ﬁligree",
        "",
        "   \n\t ",
        "x",
        long_prompt,
    ]


def encode_case(sp, prompt):
    cleaned = wan_clean(prompt)
    pieces = sp.encode(cleaned)
    truncated = len(pieces) > MAX_LEN - 1
    ids = pieces[:MAX_LEN - 1] + [sp.eos_id()]
    length = len(ids)
    ids = ids + [sp.pad_id()] * (MAX_LEN - length)
    return {"prompt": prompt, "cleaned": cleaned, "pieces": pieces, "ids": ids, "length": length,
            "truncated": truncated}


def entity_subset():
    # Mirrors dit/text/html_entities.cpp: HTML 4.01 names + apos (with ';'), plus the legacy names (those
    # HTML5 accepts without ';') in both forms.
    legacy = [k for k in html.entities.html5 if not k.endswith(";")]
    return sorted(set([n + ";" for n in html.entities.name2codepoint] + ["apos;"] + legacy + [k + ";" for k in legacy]))


def clean_cases():
    rng = random.Random(99)
    names = entity_subset()
    atoms = ["a", "b", "Z", " ", "  ", "\t", "\n", "\u00a0", "\u3000", "é", "猫", "🐕", "&", ";", "#", "x", "1", "<",
             "&#", "&#x", "&;", "&&", "&amp", "&amp;", "&#65", "&#x4e2d;", "&#99999999999;", "&#x110000;", "&#128;",
             "&#0;", "&#1;", "&#xfffe;", "&#13;", "&#10;", "&#160;", "&abcdefghijklmnopqrstuvwxyzabcdefgh;",
             "&amp;lt;", "&amp;amp;amp;", "&notin", "&notit;"]
    out = []
    for _ in range(300):
        parts = []
        for _ in range(rng.randint(1, 12)):
            r = rng.random()
            if r < 0.45:
                parts.append("&" + rng.choice(names))
            elif r < 0.55:
                parts.append("&#" + str(rng.randint(0, 0x2FFFF)) + rng.choice([";", ""]))
            elif r < 0.62:
                parts.append("&#" + rng.choice("xX") + format(rng.randint(0, 0x2FFFF), rng.choice("xX")) + rng.choice([";", ""]))
            else:
                parts.append(rng.choice(atoms))
        s = "".join(parts)
        out.append({"input": s, "unescaped_once": html.unescape(s), "cleaned": wan_clean(s)})
    return out


def main():
    prefix = os.path.join(HERE, "tiny_unigram")
    train_model(prefix)
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    assert (sp.pad_id(), sp.eos_id(), sp.unk_id(), sp.bos_id()) == (0, 1, 2, -1)
    cases = [encode_case(sp, p) for p in prompts()]
    assert any(c["truncated"] for c in cases)
    doc = {"model": "tiny_unigram.model", "max_length": MAX_LEN, "vocab_size": sp.get_piece_size(),
           "pad_id": sp.pad_id(), "eos_id": sp.eos_id(), "unk_id": sp.unk_id(),
           "sentencepiece_version": spm.__version__, "cases": cases}
    with open(os.path.join(HERE, "tokenizer_cases.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=0)
    with open(os.path.join(HERE, "clean_cases.json"), "w", encoding="utf-8") as f:
        json.dump({"cases": clean_cases()}, f, ensure_ascii=False, indent=0)


if __name__ == "__main__":
    main()
