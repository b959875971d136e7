"""Write the synthetic request log ``benchmarks/data/requests.jsonl`` (fixed seed, reproducible).

    python benchmarks/data/make_requests.py            # 400 requests -> requests.jsonl
    python benchmarks/data/make_requests.py -n 100000 -o /tmp/big.jsonl

What it models: a support assistant answering FAQ-style questions over three days.
- Questions repeat with a Zipf-like distribution (weight 1/rank**1.1): a few are asked very often,
  most rarely; some are asked in two phrasings that a cache cannot match.
- Temperature: most calls use 0 (answers meant to be stable), some 0.7 ("friendly tone") and a
  few 1.0 ("suggest ideas"); the same question is asked at several temperatures, so ``include``
  and ``ignore`` give different hit rates.
- A system prompt, a model (mostly gpt-4o-mini, some gpt-4o), and token usage: input tokens from
  the text length, output tokens drawn per question (answers of 60-450 tokens).
Lines use the chat form of the request log (see docs/replay.md).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 20240718
START = 1_718_000_000.0  # 2024-06-10 06:13:20 UTC
DAYS = 3

SYSTEM = "You are the support assistant of Acme Cloud. Answer briefly and accurately."
TOPICS = [
    "reset my password",
    "change my billing address",
    "download an invoice",
    "cancel my subscription",
    "upgrade to the Pro plan",
    "add a team member",
    "enable two-factor authentication",
    "export my data",
    "delete my account",
    "connect a custom domain",
    "rotate an API key",
    "set up SSO with Okta",
    "raise my rate limit",
    "see my usage this month",
    "get a refund",
    "change the account owner",
    "move a project to another region",
    "restore a deleted file",
    "configure webhooks",
    "use the CLI on Windows",
    "pay by bank transfer",
    "get a VAT invoice",
    "pause my subscription",
    "increase storage",
    "set a spending limit",
    "find my account ID",
    "contact a human",
    "report a security issue",
    "whitelist your IP ranges",
    "migrate from Heroku",
]
PHRASINGS = ["How do I {t}?", "how can i {t}", "What are the steps to {t}?"]
MODELS = [("gpt-4o-mini", 0.85), ("gpt-4o", 0.15)]
TEMPERATURES = [(0.0, 0.6), (0.7, 0.3), (1.0, 0.1)]


def make(n: int, seed: int = SEED) -> list[dict[str, object]]:
    rng = random.Random(seed)
    weights = [1 / (rank**1.1) for rank in range(1, len(TOPICS) + 1)]
    answer_tokens = [rng.randint(60, 450) for _ in TOPICS]
    times = sorted(START + rng.random() * DAYS * 86_400 for _ in range(n))
    lines: list[dict[str, object]] = []
    for ts in times:
        topic = rng.choices(range(len(TOPICS)), weights)[0]
        # most people use the common phrasing; others miss the cache on wording alone
        phrasing = rng.choices(range(len(PHRASINGS)), [0.8, 0.12, 0.08])[0]
        question = PHRASINGS[phrasing].format(t=TOPICS[topic])
        model = rng.choices([m for m, _ in MODELS], [w for _, w in MODELS])[0]
        temperature = rng.choices([t for t, _ in TEMPERATURES], [w for _, w in TEMPERATURES])[0]
        input_tokens = (len(SYSTEM) + len(question)) // 4 + 7
        output_tokens = max(20, int(answer_tokens[topic] * rng.uniform(0.85, 1.15)))
        lines.append(
            {
                "ts": round(ts, 3),
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": question},
                ],
                "model": model,
                "params": {"temperature": temperature},
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            }
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=400, help="requests (default 400)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "-o", "--out", type=Path, default=Path(__file__).with_name("requests.jsonl")
    )
    args = parser.parse_args()
    with args.out.open("w", encoding="utf-8") as out:
        for line in make(args.n, args.seed):
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
    print(f"wrote {args.n} requests to {args.out}")


if __name__ == "__main__":
    main()
