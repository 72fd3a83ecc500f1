"""Near-duplicate images: perceptual hashes for re-encodes, resizes, colour shifts and crops, and
embedding similarity for heavier edits.

A 64-bit pHash (`imagehash`, the DCT hash of Zauner 2010) survives re-encoding, resizing and mild
colour changes (0-6 bits of 64 on the sample photos here) but not crops: cutting 10% off each side moved
it 16-30 bits, as far as two unrelated photos (20+). So each image also keeps the pHash of six crops of
itself (the central 90% and 80%, four 80% corners): a copy cropped by up to ~20% then lands within a few
bits of one of them (0-14 bits measured, 0 on the grid). Two images are `distance` apart: the smallest
Hamming distance between one's full hash and any of the other's seven, either way round.

Hashes are kept in a LanceDB table keyed by file content, so re-running only hashes new files.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np
import pyarrow as pa
from PIL import Image

from mmsearch.errors import BadMedia, MMSearchError
from mmsearch.ingest.pipelines import read_file
from mmsearch.media.images import decode_image
from mmsearch.store.library import Library
from mmsearch.store.sql import in_clauses

if TYPE_CHECKING:
    from mmsearch.service import MMSearch
    from mmsearch.workflows.moderation import Flag

HASH_TABLE = "phashes"
# (left, top, right, bottom) as fractions: the whole image, then the crops a copy is likely cut to.
CROPS = ((0, 0, 1, 1), (.05, .05, .95, .95), (.1, .1, .9, .9), (0, 0, .8, .8), (.2, 0, 1, .8), (0, .2, .8, 1),
         (.2, .2, 1, 1))
DEFAULT_CUT = 10  # bits of 64; unrelated photos were 20+ apart here
HASH_EDGE = 256  # decode at most this large: pHash looks at 32x32


def _require_imagehash():
    try:
        import imagehash
    except ImportError:  # a dependency, but say what to install if it is missing
        raise MMSearchError("near-duplicate search needs imagehash: pip install imagehash") from None
    return imagehash


def phash(image: Image.Image) -> int:
    bits = _require_imagehash().phash(image, hash_size=8).hash.flatten()
    return int(np.packbits(bits.astype(np.uint8)).view(">u8")[0])


def image_hashes(image: Image.Image) -> np.ndarray:
    """The pHash of the image and of each crop in CROPS: (7,) uint64."""
    image = image.convert("RGB")
    w, h = image.size
    out = []
    for left, top, right, bottom in CROPS:
        box = (int(left * w), int(top * h), max(int(right * w), int(left * w) + 1), max(int(bottom * h), int(top * h) + 1))
        out.append(phash(image.crop(box)))
    return np.array(out, dtype=np.uint64)


def popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(x)
    as_bytes = np.ascontiguousarray(x).view(np.uint8).reshape(*x.shape, 8)
    return np.unpackbits(as_bytes, axis=-1).sum(axis=-1)


def distances(query: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Bits between a query's hashes (7,) and each row of hashes (n, 7), either way round: (n,)."""
    if len(hashes) == 0:
        return np.zeros(0, dtype=np.int64)
    one_way = popcount(hashes ^ query[0]).min(axis=1)  # query whole vs the item's crops
    other_way = popcount(hashes[:, :1] ^ query[None, :]).min(axis=1)  # query's crops vs the item whole
    return np.minimum(one_way, other_way).astype(np.int64)


@dataclass
class HashIndex:
    paths: list[str]
    hashes: np.ndarray  # (n, 7) uint64
    hashed: int = 0  # files hashed in this run (the rest came from the store)
    seconds: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Copy:
    path: str
    distance: int | None  # bits, when the hash found it
    similarity: float | None = None  # cosine, when the embedding found it
    method: str = "hash"

    def record(self) -> dict:
        return {"path": self.path, "modality": "image", "distance": self.distance, "similarity": self.similarity,
                "method": self.method}

    def flag(self, of: str, cut: int = DEFAULT_CUT) -> "Flag":
        """As a review-queue entry: the score is the similarity, or 1 - bits/64 for a hash match."""
        from mmsearch.workflows.moderation import Flag

        score = self.similarity if self.distance is None else 1.0 - self.distance / 64
        matched = f"hash: {self.distance} bits" if self.distance is not None else f"embedding: {self.similarity:.3f}"
        return Flag(self.path, "image", f"copy of {of}", float(score), 1.0 - cut / 64, matched, self.method)


class PerceptualHashes:
    """pHashes of a library's images, stored by content hash. Receives the library; builds nothing else."""

    def __init__(self, library: Library, workers: int = 2, max_pixels: int = 178_956_970) -> None:
        self.library = library
        self.workers = workers
        self.max_pixels = max_pixels

    def _table(self):
        schema = pa.schema([pa.field("hash", pa.string(), nullable=False),
                            pa.field("phashes", pa.list_(pa.int64(), len(CROPS)))])
        return self.library.db.create_table(HASH_TABLE, schema=schema, exist_ok=True)

    def _stored(self, table, content: Iterable[str]) -> dict[str, np.ndarray]:
        found = {}
        for where in in_clauses("hash", content):
            for row in table.search().where(where).select(["hash", "phashes"]).limit(None).to_list():
                found[row["hash"]] = np.array(row["phashes"], dtype=np.int64).view(np.uint64)
        return found

    def index(self, rows: Sequence[tuple[str, str]], on_progress: Callable[[int, int], None] | None = None
              ) -> HashIndex:
        """rows: (path, content hash) of the images to cover, e.g. from the image table."""
        started = time.perf_counter()
        table = self._table()
        stored = self._stored(table, {h for _, h in rows})
        todo = {h: p for p, h in rows if h not in stored}
        out = HashIndex([], np.zeros((0, len(CROPS)), np.uint64))
        fresh: dict[str, np.ndarray] = {}
        with ThreadPoolExecutor(self.workers, thread_name_prefix="mmsearch-phash") as pool:
            for n, (content, result) in enumerate(zip(todo, pool.map(self._hash_file, todo.values())), 1):
                if isinstance(result, BadMedia):
                    out.skipped.append((result.path, result.reason))
                else:
                    fresh[content] = result
                if on_progress:
                    on_progress(n, len(todo))
        if fresh:
            table.add(pa.table({"hash": list(fresh), "phashes": [v.view(np.int64).tolist() for v in fresh.values()]},
                               schema=table.schema))
        stored.update(fresh)
        kept = [(p, h) for p, h in rows if h in stored]
        out.paths = [p for p, _ in kept]
        out.hashes = np.stack([stored[h] for _, h in kept]) if kept else out.hashes
        out.hashed = len(fresh)
        out.seconds = time.perf_counter() - started
        return out

    def _hash_file(self, path: str) -> np.ndarray | BadMedia:
        try:
            decoded = decode_image(read_file(path), path, self.max_pixels, draft_size=HASH_EDGE)
        except BadMedia as bad:
            return bad
        image = decoded.image
        image.thumbnail((HASH_EDGE * 2, HASH_EDGE * 2))
        return image_hashes(image)


class Linkage:
    """Single linkage over n items (union-find): link pairs, then read the groups of two or more, each in
    index order, the group named by its smallest member."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def root(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def link(self, i: int, j: int) -> None:
        a, b = self.root(i), self.root(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def groups(self) -> list[list[int]]:
        found: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            found.setdefault(self.root(i), []).append(i)
        return [members for members in found.values() if len(members) > 1]


def clusters(index: HashIndex, cut: int = DEFAULT_CUT) -> list[list[tuple[str, int]]]:
    """Groups of near-identical images (single linkage at `cut` bits), largest first; each member with its
    distance to the group's first image."""
    n = len(index.paths)
    linked = Linkage(n)
    full = index.hashes[:, 0]
    chunk = max(1, 4_000_000 // (len(CROPS) * max(n, 1)))  # ~32 MB of XORs at a time
    for start in range(0, n, chunk):
        block = index.hashes[start:start + chunk]
        # (chunk, n): block's crops vs everyone whole, and block whole vs everyone's crops
        d = popcount(block[:, :, None] ^ full[None, None, :]).min(axis=1)
        d = np.minimum(d, popcount(block[:, :1, None] ^ index.hashes.T[None, :, :]).min(axis=1))
        for i, j in zip(*np.nonzero(d <= cut)):
            linked.link(start + int(i), int(j))
    out = []
    for members in linked.groups():
        first = index.hashes[members[0]]
        d = distances(first, index.hashes[members])
        out.append([(index.paths[m], int(x)) for m, x in zip(members, d)])
    return sorted(out, key=lambda g: (-len(g), g[0][0]))


def copies_of(index: HashIndex, image: Image.Image, cut: int = DEFAULT_CUT) -> list[Copy]:
    """Library images within `cut` bits of the image (an upload of a known-bad picture), nearest first."""
    image = image.convert("RGB")
    image.thumbnail((HASH_EDGE * 2, HASH_EDGE * 2))
    d = distances(image_hashes(image), index.hashes)
    order = np.argsort(d, kind="stable")
    return [Copy(index.paths[i], int(d[i])) for i in order if d[i] <= cut]


def library_images(service: "MMSearch") -> list[tuple[str, str]]:
    """(path, content hash) of every image in the library's main image table."""
    table = service.searcher.table().table
    cols = table.search().select(["path", "hash"]).limit(None).to_arrow().to_pydict()
    return list(zip(cols["path"], cols["hash"]))


def hash_index(service: "MMSearch") -> HashIndex:
    s = service.settings
    return PerceptualHashes(service.library(), s.workers, s.max_image_pixels).index(library_images(service))


def find_copies(service: "MMSearch", index: HashIndex, image: str | Path, cut: int = DEFAULT_CUT,
                similarity: float | None = None, k: int = 1000) -> list[Copy]:
    """Copies of a known-bad image: by hash, and with `similarity`, by embedding too (crops, heavy edits)."""
    found = {c.path: c for c in copies_of(index, load_image(image, service.settings.max_image_pixels), cut)}
    if similarity is not None:
        for hit in service.search_image(str(image), k=k):
            if hit.score < similarity:
                break
            if hit.path in found:
                found[hit.path].similarity = hit.score
                found[hit.path].method = "hash+embedding"
            else:
                found[hit.path] = Copy(hit.path, None, hit.score, "embedding")
    return sorted(found.values(), key=lambda c: (c.distance if c.distance is not None else 65,
                                                 -(c.similarity or 0.0)))


def load_image(path: str | Path, max_pixels: int = 178_956_970) -> Image.Image:
    """The query picture decoded as the library's were hashed (JPEG draft at HASH_EDGE): the same hash for the
    same file, without decoding all 12 MP of a photo to compare 32 x 32 pixels."""
    return decode_image(read_file(str(path)), str(path), max_pixels, draft_size=HASH_EDGE).image
