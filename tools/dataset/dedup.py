"""Exact and near-duplicate removal of records.

Exact: a hash of the whitespace-normalized source (or answer text for non-code records).
Near: MinHash over 5-token shingles with LSH (datasketch); Jaccard >= threshold counts as
a duplicate (SelfCodeAlign / StarCoder2-Instruct use 0.5 on code; we default to 0.7 to
keep small idiomatic methods that differ only in names). The first (best) record wins.
"""

from __future__ import annotations

import hashlib
import re
import zlib

_TOKEN = re.compile(r"\w+|[^\w\s]")
_SPACE = re.compile(r"\s+")


def normalized_hash(text: str) -> str:
    return hashlib.blake2b(_SPACE.sub(" ", text.strip()).encode(), digest_size=16).hexdigest()


class Deduplicator:
    def __init__(self, threshold: float = 0.7, num_perm: int = 64, shingle: int = 5) -> None:
        from datasketch import MinHashLSH

        self.threshold, self.num_perm, self.shingle = threshold, num_perm, shingle
        self.seen: set[str] = set()
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm) if threshold < 1.0 else None
        self.exact = 0
        self.near = 0
        self._n = 0

    def _minhash(self, text: str):  # noqa: ANN202 (datasketch MinHash)
        from datasketch import MinHash

        tokens = _TOKEN.findall(text)
        k = self.shingle
        shingles = {" ".join(tokens[i:i + k]).encode() for i in range(max(1, len(tokens) - k + 1))}
        mh = MinHash(num_perm=self.num_perm, hashfunc=zlib.crc32)  # stable across runs, ~5x faster than sha1
        mh.update_batch(list(shingles))
        return mh

    def is_duplicate(self, text: str) -> bool:
        """True if `text` repeats one already kept; otherwise remember it and return False."""
        digest = normalized_hash(text)
        if digest in self.seen:
            self.exact += 1
            return True
        if self.lsh is not None and len(text) >= 64:
            mh = self._minhash(text)
            if self.lsh.query(mh):
                self.near += 1
                return True
            self._n += 1
            self.lsh.insert(str(self._n), mh)
        self.seen.add(digest)
        return False
