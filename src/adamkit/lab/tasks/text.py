"""``text``: a character-level transformer language model.

The default corpus is ``pydoc_data.topics``, Python's help texts (465k characters, it ships
with Python); ``--data FILE`` trains on the user's UTF-8 text instead. The corpus is cut
90/5/5 into train, val and test. The model: character embeddings and learned positions
(d = 128), 2 pre-norm transformer layers with 4 heads and causal attention, context 64.
The metric is bits per character, ``cross-entropy / ln 2``, on fixed windows of each split;
the baseline is the corpus's unigram entropy (about 4.69 bits for the default corpus).
"""

import functools
import math

import torch

from adamkit.lab.tasks.base import Problem, Task, read_utf8

CONTEXT = 64


def default_corpus():
    from pydoc_data.topics import topics

    return "".join(topics[k] for k in sorted(topics))


def read_text(path):
    text = read_utf8(path)
    if len(text) < 40 * CONTEXT:
        raise ValueError(f"--data {path!r}: {len(text)} characters; need at least {40 * CONTEXT} "
                         f"(train, val and test windows of {CONTEXT})")
    return text


@functools.lru_cache(maxsize=2)
def corpus(path):
    return read_text(path) if path else default_corpus()


def unigram_bits(text):
    counts = torch.bincount(torch.tensor([ord(c) for c in text])).double()
    p = counts[counts > 0] / len(text)
    return float(-(p * p.log2()).sum())


class CharTransformer(torch.nn.Module):
    def __init__(self, vocab, dtype, d=128, layers=2, heads=4):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, d, dtype=dtype)
        self.position = torch.nn.Embedding(CONTEXT, d, dtype=dtype)
        layer = torch.nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True,
                                                 dtype=dtype)
        self.blocks = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = torch.nn.LayerNorm(d, dtype=dtype)
        self.head = torch.nn.Linear(d, vocab, dtype=dtype)
        self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(CONTEXT, dtype=dtype))

    def forward(self, tokens):
        t = tokens.shape[1]
        h = self.embed(tokens) + self.position.weight[:t]
        return self.head(self.norm(self.blocks(h, mask=self.mask[:t, :t], is_causal=True)))


class Text(Task):
    name = "text"
    summary = "character-level language model, 2-layer transformer (d=128, context 64)"
    data_source = "pydoc_data.topics (Python's help texts, 465k characters, ships with Python), or --data FILE"
    models = ("transformer",)
    metric_text = "test bits per character"
    primary = "bits_per_char"
    baseline = "the corpus's unigram entropy (4.69 bits/char for pydoc_data.topics)"
    budget = 600
    quick_budget = 60
    evals = 8
    init = "xavier_uniform"
    nonlinearity = "linear"
    lr = {"sgd": 0.5, "momentum": 0.05, "adam": 2e-3}
    weight_decay = {"l2": 1e-4, "l1": 1e-6, "decoupled": 0.1, "independent": 2e-4}
    takes_data = True
    batch = 32
    windows = 4  # evaluation batches per split: 4 × 32 windows of 64 characters

    def check_data(self, path):
        corpus(path)

    def setup(self, config, dtype, device):
        text = corpus(config.data)
        vocab = sorted(set(text))
        lookup = {c: i for i, c in enumerate(vocab)}
        tokens = torch.tensor([lookup[c] for c in text])
        n = len(tokens)
        cut = {"train": tokens[:int(0.9 * n)], "val": tokens[int(0.9 * n):int(0.95 * n)],
               "test": tokens[int(0.95 * n):]}
        generator = torch.Generator().manual_seed(config.seed)
        model = CharTransformer(len(vocab), dtype)

        def windows(part, starts):
            x = torch.stack([part[s:s + CONTEXT] for s in starts.tolist()])
            y = torch.stack([part[s + 1:s + CONTEXT + 1] for s in starts.tolist()])
            return x.to(device), y.to(device)

        fixed = {}
        for name, part in cut.items():  # the same evaluation windows in every run
            count = min(self.windows * self.batch, len(part) - CONTEXT - 1)
            fixed[name] = windows(part, torch.linspace(0, len(part) - CONTEXT - 2, count).long())

        def cross_entropy(x, y):
            logits = model(x)
            return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))

        def loss(step):
            part = cut["train"]
            starts = torch.randint(0, len(part) - CONTEXT - 1, (self.batch,), generator=generator)
            return cross_entropy(*windows(part, starts))

        @torch.no_grad()
        def evaluate():
            model.eval()
            out = {}
            for name, (x, y) in fixed.items():
                total = sum(cross_entropy(x[i:i + 128], y[i:i + 128]).item() * len(x[i:i + 128])
                            for i in range(0, len(x), 128))
                out[name] = {"bits_per_char": total / len(x) / math.log(2)}
            model.train()
            return out

        return Problem(model, loss, evaluate)
