"""Readable generated run names ("brave-owl-417"), as MLflow gives runs logged without a name."""

from __future__ import annotations

import secrets

ADJECTIVES = (
    "able", "bold", "brave", "bright", "calm", "clever", "crisp", "eager", "fair", "fast", "gentle", "glad",
    "grand", "happy", "keen", "kind", "lively", "lucky", "merry", "neat", "nimble", "proud", "quick", "quiet",
    "rare", "sharp", "shy", "smart", "steady", "sunny", "swift", "tidy", "vast", "warm", "wise", "witty",
)  # fmt: skip
NOUNS = (
    "ant", "bass", "bat", "bear", "bee", "crab", "crow", "deer", "dove", "duck", "eel", "elk", "finch", "fox",
    "frog", "goat", "hare", "hawk", "ibis", "jay", "koala", "lark", "lynx", "mole", "moth", "newt", "owl",
    "panda", "seal", "shrew", "slug", "snail", "swan", "toad", "trout", "wolf", "wren", "yak", "zebra",
)  # fmt: skip


def generate_run_name() -> str:
    """A random ``adjective-noun-number`` name."""
    return f"{secrets.choice(ADJECTIVES)}-{secrets.choice(NOUNS)}-{secrets.randbelow(1000)}"
