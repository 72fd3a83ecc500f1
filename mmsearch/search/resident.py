"""The resident vector index of one table: compressed codes in memory, refreshed by the diff of a commit.

A Snapshot stands for exactly one table version and never changes once built. A search takes the current
snapshot once and answers from it alone (codes, liveness, metadata and the full-precision vectors read
from a handle pinned at its version), so a commit that lands meanwhile is either wholly seen or not at all.

A new version is applied as a diff instead of a reload (a reload read 1M float32 vectors in 6.4 s):
- rows added since: the rows whose `_rowid` is above the snapshot's highest (store/pinned.py), encoded and
  appended as a new segment;
- rows replaced: an upsert deletes the old row of the same path, found through the resident path hashes;
- rows deleted otherwise (a file gone, a compaction): the counts disagree, and one scan of the version's
  row ids marks the dead.
Segments merge LSM-style (a segment joins the one before it once that one is at most 4x its size), so a
table holds O(log n) segments and each row is copied O(log n) times over its life.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pyarrow as pa

from mmsearch.query.filters import Filters
from mmsearch.search.codecs import Codec, auto_kind, parse_setting, table_dims
from mmsearch.store.pinned import ROW_ID, PinnedVersion
from mmsearch.store.table import SpaceTable, _vectors

META_ROWS = 250_000  # up to this many rows, metadata stays in memory too: filters and result rows skip the disk
MERGE_RATIO = 4
_MAX_FILTER_MASKS = 8
_MAX_RECENT = 20_000
# Rows read and encoded at a time while loading. Each batch lives a few times over while it is encoded (the
# float32 rows, binary's residuals and their sign bits): 131,072 rows of 512-d took a 10M-row load ~1 GB above
# its resident codes (bench/results/vectors_10m.md: 2,436 MB peak, 1,370 after); 16,384 rows is ~32 MB a batch.
LOAD_BATCH_ROWS = 16_384


def path_hashes(paths: list[str]) -> np.ndarray:
    # Python's string hash: 64 bits, and this index lives in one process only, so its per-process seed is fine.
    return np.fromiter((hash(p) for p in paths), np.int64, count=len(paths))


@dataclass(frozen=True)
class Segment:
    codes: np.ndarray  # (n, width) codec output
    row_ids: np.ndarray  # uint64, ascending
    alive: np.ndarray  # bool
    sorted_hash: np.ndarray  # int64: the rows' path hashes, sorted
    hash_order: np.ndarray  # the position of each sorted hash
    meta: pa.Table | None = None  # metadata columns, when the snapshot keeps them resident

    @classmethod
    def build(cls, codes: np.ndarray, row_ids: np.ndarray, hashes: np.ndarray, meta: pa.Table | None) -> "Segment":
        order = np.argsort(row_ids, kind="stable")
        if np.any(order != np.arange(len(order))):  # a scan is in fragment order; never rely on it
            codes, row_ids, hashes = codes[order], row_ids[order], hashes[order]
            meta = meta.take(pa.array(order)) if meta is not None else None
        index_type = np.int32 if len(hashes) < 2**31 else np.int64
        order = np.argsort(hashes, kind="stable")
        return cls(codes, row_ids, np.ones(len(row_ids), bool), hashes[order], order.astype(index_type), meta)

    @property
    def path_hash(self) -> np.ndarray:
        out = np.empty(len(self.sorted_hash), np.int64)
        out[self.hash_order] = self.sorted_hash
        return out

    def __len__(self) -> int:
        return len(self.row_ids)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.codes, self.row_ids, self.alive, self.sorted_hash, self.hash_order)) + \
            (self.meta.nbytes if self.meta is not None else 0)

    def find(self, hashes: np.ndarray) -> np.ndarray:
        """Positions of live rows whose path hash is among hashes."""
        if len(self) == 0 or len(hashes) == 0:
            return np.zeros(0, np.int64)
        lo = np.searchsorted(self.sorted_hash, hashes, "left")
        hi = np.searchsorted(self.sorted_hash, hashes, "right")
        pos = np.concatenate([self.hash_order[a:b] for a, b in zip(lo, hi) if b > a] or [np.zeros(0, np.int64)])
        return pos[self.alive[pos]].astype(np.int64)

    def holding(self, row_ids: np.ndarray) -> np.ndarray:
        """Mask of this segment's rows whose id is in row_ids (sorted)."""
        return sorted_member(self.row_ids, row_ids)

    def live(self) -> "Segment":
        if self.alive.all():
            return self
        keep = np.flatnonzero(self.alive)
        meta = self.meta.take(pa.array(keep)) if self.meta is not None else None
        return Segment.build(self.codes[keep], self.row_ids[keep], self.path_hash[keep], meta)

    @staticmethod
    def merge(older: "Segment", newer: "Segment") -> "Segment":
        a, b = older.live(), newer.live()
        meta = pa.concat_tables([a.meta, b.meta]) if a.meta is not None and b.meta is not None else None
        return Segment.build(np.concatenate([a.codes, b.codes]), np.concatenate([a.row_ids, b.row_ids]),
                             np.concatenate([a.path_hash, b.path_hash]), meta)


def sorted_member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    if len(sorted_set) == 0:
        return np.zeros(len(values), bool)
    at = np.searchsorted(sorted_set, values)
    return sorted_set[np.minimum(at, len(sorted_set) - 1)] == values


@dataclass(frozen=True)
class Snapshot:
    """One version of one table, resident; immutable (its two caches only memoise what it already implies)."""

    table: SpaceTable
    pinned: PinnedVersion
    digest: str | None  # its version's manifest digest, to tell a later version of the same table from a new table
    setting: str  # what was asked for: "auto" or a codec kind
    codec: Codec
    segments: tuple[Segment, ...]
    meta_columns: tuple[str, ...]
    _filter_masks: dict = field(default_factory=dict, compare=False, repr=False)
    _recent: dict = field(default_factory=dict, compare=False, repr=False)  # row id -> float32 vector

    @property
    def version(self) -> int:
        return self.pinned.version

    @property
    def resident_meta(self) -> bool:
        return all(s.meta is not None for s in self.segments)

    @property
    def rows(self) -> int:
        return int(sum(s.alive.sum() for s in self.segments))

    @property
    def max_row_id(self) -> int | None:
        ends = [int(s.row_ids[-1]) for s in self.segments if len(s)]
        return max(ends) if ends else None

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.segments)

    def stats(self) -> dict:
        rows = sum(len(s) for s in self.segments)
        return {"vectors": self.codec.kind, "setting": self.setting, "dims": self.codec.kept_dim, "rows": self.rows, "version": self.version,
                "segments": len(self.segments), "resident_bytes": self.nbytes,
                "bytes_per_item": round(self.nbytes / rows, 1) if rows else 0.0,
                "vector_bytes_per_item": self.codec.bytes_per_vector,
                "metadata_resident": self.resident_meta}

    # -- search ---------------------------------------------------------------------------------
    def search_many(self, queries: np.ndarray, k: int, filters: Filters | None = None,
                    rerank: int | None = None, keep: int | None = None) -> list[list[tuple[dict, float]]]:
        """The k nearest rows of each query, with exact cosines. keep: how many of them the caller will
        finally show (the query engine asks for a fusion shortlist of 100 to show 10): the rescored shortlist
        is sized for those, `keep` x the codec's factor, so their recall is the codec's measured one; the
        rows ranked below them are the best of that shortlist. None: all k."""
        q = np.asarray(queries, np.float32).reshape(len(queries), -1)
        keeps = self._keep(filters)
        total = int(sum(m.sum() for m in keeps))
        k = min(k, total)
        if k <= 0:
            return [[] for _ in range(len(q))]
        wanted = k if keep is None else max(1, min(k, keep))
        factor = max(1, rerank or self.codec.rerank_for(total))
        short = k if self.codec.exact else min(total, max(k, wanted * factor))
        ids, scores = self._shortlist(q, keeps, short)
        if not self.codec.exact:
            ids, scores = self._rescore(q, ids)
        found = []
        for row_ids, row_scores in zip(ids, scores):
            top = np.argsort(-row_scores, kind="stable")[:k]
            found.append((row_ids[top], row_scores[top]))
        return self._answer(found, filters)

    def _shortlist(self, q: np.ndarray, keeps: list[np.ndarray], short: int
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        per_query: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(len(q))]
        for seg, keep in zip(self.segments, keeps):
            n_keep = int(keep.sum())
            if n_keep == 0:
                continue
            scores = self.codec.scores(seg.codes, q)
            scores[~keep] = -np.inf
            m = min(short, n_keep)
            for j in range(len(q)):
                col = scores[:, j]
                top = np.argpartition(-col, m - 1)[:m] if m < len(col) else np.flatnonzero(keep)
                top = top[keep[top]]
                per_query[j].append((seg.row_ids[top], col[top]))
        ids, scores_out = [], []
        for parts in per_query:
            all_ids = np.concatenate([p[0] for p in parts])
            all_s = np.concatenate([p[1] for p in parts])
            if len(all_ids) > short:
                pick = np.argpartition(-all_s, short - 1)[:short]
                all_ids, all_s = all_ids[pick], all_s[pick]
            ids.append(all_ids)
            scores_out.append(all_s.astype(np.float32))
        return ids, scores_out

    def _rescore(self, q: np.ndarray, ids: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Exact cosines of each shortlist from the full-precision vectors on disk."""
        vecs = self.full_vectors(np.unique(np.concatenate(ids)))
        out_ids, out_scores = [], []
        for j, cand in enumerate(ids):
            have = np.array([i for i in cand.tolist() if i in vecs], np.uint64)
            mat = np.stack([vecs[int(i)] for i in have]) if len(have) else np.zeros((0, q.shape[1]), np.float32)
            out_ids.append(have)
            out_scores.append(mat @ q[j])
        return out_ids, out_scores

    def full_vectors(self, row_ids: np.ndarray) -> dict[int, np.ndarray]:
        """Full-precision vectors by row id: float32 from memory, the others from the pinned version on disk
        (kept a while: the engine asks again for the same rows when it reranks the fused shortlist)."""
        recent = self._recent
        found: dict[int, np.ndarray] = {}
        missing = []
        for i in (int(x) for x in row_ids):
            v = recent.get(i)  # .get: another search may clear the cache meanwhile
            if v is None:
                missing.append(i)
            else:
                found[i] = v
        if missing:
            ids = np.array(missing, np.uint64)
            if self.codec.exact:
                got = self._from_codes(ids)
            else:
                arrow = self.pinned.take(ids, ["vector"])
                got = dict(zip(arrow.column(ROW_ID).to_pylist(), _vectors(arrow.column("vector")))) \
                    if arrow.num_rows else {}
            found.update(got)
            if len(recent) + len(got) > _MAX_RECENT:
                recent.clear()
            recent.update(got)
        return found

    def _from_codes(self, row_ids: np.ndarray) -> dict[int, np.ndarray]:
        out = {}
        for seg in self.segments:
            at = np.searchsorted(seg.row_ids, row_ids)
            ok = (at < len(seg)) & (seg.row_ids[np.minimum(at, len(seg) - 1)] == row_ids) if len(seg) else at < 0
            for i, pos in zip(row_ids[ok].tolist(), at[ok].tolist()):
                if seg.alive[pos]:
                    out[int(i)] = self.codec.decode(seg.codes[pos:pos + 1])[0]
        return out

    def _answer(self, found: list[tuple[np.ndarray, np.ndarray]], filters: Filters | None
                ) -> list[list[tuple[dict, float]]]:
        rows = self.rows_by_id(np.unique(np.concatenate([ids for ids, _ in found])))
        out = []
        for ids, scores in found:
            hits = [(rows[int(i)], float(s)) for i, s in zip(ids.tolist(), scores.tolist()) if int(i) in rows]
            if filters and hits:  # a second check on the rows returned: a filter never leaks, whichever path ran
                ok = filters.mask(pa.Table.from_pylist([r for r, _ in hits], schema=self._meta_schema))
                hits = [h for h, keep in zip(hits, ok) if keep]
            out.append([(dict(r), s) for r, s in hits])
        return out

    @property
    def _meta_schema(self) -> pa.Schema:
        schema = self.table.schema
        return pa.schema([schema.field(c) for c in self.meta_columns])

    def rows_by_id(self, row_ids: np.ndarray) -> dict[int, dict]:
        if self.resident_meta:
            out = {}
            for seg in self.segments:
                ok = seg.holding(row_ids) & seg.alive
                pos = np.flatnonzero(ok)
                if len(pos):
                    for rid, row in zip(seg.row_ids[pos].tolist(), seg.meta.take(pa.array(pos)).to_pylist()):
                        out[int(rid)] = row
            return out
        arrow = self.pinned.take(row_ids, list(self.meta_columns))
        out = {}
        for row in arrow.to_pylist():
            out[int(row.pop(ROW_ID))] = row
        return out

    def paths_by_id(self, row_ids: np.ndarray) -> dict[int, str]:
        """The stored path of each live row: only the path column is taken (a rerank asks this of every
        candidate of every query; whole metadata rows cost 13 % of a loaded server's CPU)."""
        if len(row_ids) == 0:
            return {}
        if self.resident_meta:
            out: dict[int, str] = {}
            for seg in self.segments:
                pos = np.flatnonzero(seg.holding(row_ids) & seg.alive)
                if len(pos):
                    out.update(zip(seg.row_ids[pos].tolist(), seg.meta.column("path").take(pa.array(pos)).to_pylist()))
            return out
        arrow = self.pinned.take(row_ids, ["path"])
        return dict(zip(arrow.column(ROW_ID).to_pylist(), arrow.column("path").to_pylist()))

    def _keep(self, filters: Filters | None) -> list[np.ndarray]:
        if not filters:
            return [s.alive for s in self.segments]
        sql = filters.sql() or ""
        hit = self._filter_masks.get(sql)
        if hit is None:
            if self.resident_meta:
                hit = [s.alive & filters.mask(s.meta) for s in self.segments]
            else:
                ids = self.pinned.row_ids(sql)
                hit = [s.alive & s.holding(ids) for s in self.segments]
            if len(self._filter_masks) >= _MAX_FILTER_MASKS:
                self._filter_masks.clear()
            self._filter_masks[sql] = hit
        return hit

    # -- lookups by path ------------------------------------------------------------------------
    def row_ids_for_paths(self, paths: list[str]) -> np.ndarray:
        hashes = path_hashes(paths)
        found = [seg.row_ids[seg.find(hashes)] for seg in self.segments]
        return np.unique(np.concatenate(found)) if found else np.zeros(0, np.uint64)

    def vectors_for_paths(self, paths: list[str]) -> dict[str, np.ndarray]:
        """Full-precision vectors of some rows by path (the engine's exact rerank of a fused shortlist)."""
        ids = self.row_ids_for_paths(paths)
        if len(ids) == 0:
            return {}
        wanted = set(paths)
        # Path hashes only shortlist: the stored path confirms each row (two paths may share a hash).
        if self.codec.exact or self.resident_meta:
            vecs, path_of = self.full_vectors(ids), self.paths_by_id(ids)
            return {path_of[i]: vecs[i] for i in vecs if path_of.get(i) in wanted}
        arrow = self.pinned.take(ids, ["path", "vector"])
        if arrow.num_rows == 0:
            return {}
        return {p: v for p, v in zip(arrow.column("path").to_pylist(), _vectors(arrow.column("vector")))
                if p in wanted}


class ResidentIndex:
    """The current snapshot of one table, swapped whole on refresh."""

    def __init__(self, setting: Callable[[SpaceTable], str] = lambda table: "auto",
                 meta_rows: int = META_ROWS) -> None:
        self.setting = setting
        self.meta_rows = meta_rows
        self._lock = threading.Lock()
        self._snap: Snapshot | None = None
        self.loads = 0  # full loads (a test tells a diff from a reload by it)
        self.diffs = 0

    @property
    def current(self) -> Snapshot | None:
        return self._snap

    def snapshot(self, table: SpaceTable) -> Snapshot:
        snap = self._snap
        if snap is not None and self._fresh(snap, table):
            return snap
        with self._lock:  # one refresh at a time; searches already running keep the snapshot they hold
            snap = self._snap
            if snap is not None and self._fresh(snap, table):
                return snap
            new = self._advance(snap, table) if snap is not None and self._continues(snap, table) else None
            if new is None:
                new = self._load(table)
                self.loads += 1
            else:
                self.diffs += 1
            self._snap = new
            return new

    def _fresh(self, snap: Snapshot, table: SpaceTable) -> bool:
        version, digest = table.identity
        return version == snap.version and digest == snap.digest and \
            self.setting(table) == snap.setting and self._codec_of(table, snap.setting) == _codec_key(snap.codec)

    @staticmethod
    def _codec_of(table: SpaceTable, setting: str, rows: int | None = None) -> tuple[str, int | None]:
        """The codec kind and Matryoshka length a setting means for this table (auto picks by size)."""
        kind, dims = parse_setting(setting)
        if kind == "auto":
            kind = auto_kind(table.count() if rows is None else rows, table.space.dim)
        return kind, table_dims(table.space, dims)

    def _continues(self, snap: Snapshot, table: SpaceTable) -> bool:
        """The table is a later version of the snapshot's own table, and the codec is still the one wanted."""
        version, _ = table.identity
        setting = self.setting(table)
        return (snap.digest is not None and version > snap.version
                and setting == snap.setting and self._codec_of(table, setting) == _codec_key(snap.codec)
                and table.manifest_digest(snap.version) == snap.digest)

    # -- building -------------------------------------------------------------------------------
    def _load(self, table: SpaceTable) -> Snapshot:
        version, digest = table.identity
        pinned = PinnedVersion(table, version)
        setting = self.setting(table)
        n = pinned.count()
        kind, keep = self._codec_of(table, setting, n)
        with_meta = n <= self.meta_rows
        segment, codec = self._read(pinned, table, None, None, n, (kind, keep), with_meta)
        segments = (segment,) if segment is not None and len(segment) else ()
        return Snapshot(table, pinned, digest, setting, codec, segments, tuple(table.meta_columns))

    def _read(self, pinned: PinnedVersion, table: SpaceTable, after: int | None, codec: Codec | None,
              expect: int, kind: tuple[str, int | None], with_meta: bool) -> tuple[Segment | None, Codec]:
        """The rows above row id `after` as one segment, encoded with codec (fitted on the first batch if None).
        Codes go into one array sized up front: a 10M-row table is never held twice."""
        columns = list(table.meta_columns if with_meta else ["path"]) + ["vector"]
        codes = row_ids = hashes = None
        metas: list[pa.RecordBatch] = []
        pos = 0
        for batch in pinned.rows_after(after, columns, LOAD_BATCH_ROWS):
            vecs = _vectors(batch.column(batch.schema.get_field_index("vector")))
            if codec is None:
                codec = Codec.fit(kind[0], vecs, kind[1])
            enc = codec.encode(vecs)
            if codes is None or pos + len(enc) > len(codes):
                size = max(expect, pos + len(enc), 2 * len(codes) if codes is not None else 0)
                codes = _grow(codes, (size, enc.shape[1]), enc.dtype, pos)
                row_ids = _grow(row_ids, (size,), np.uint64, pos)
                hashes = _grow(hashes, (size,), np.int64, pos)
            codes[pos:pos + len(enc)] = enc
            row_ids[pos:pos + len(enc)] = batch.column(batch.schema.get_field_index(ROW_ID)).to_numpy()
            hashes[pos:pos + len(enc)] = path_hashes(batch.column(batch.schema.get_field_index("path")).to_pylist())
            if with_meta:
                metas.append(batch.select(list(table.meta_columns)))
            pos += len(enc)
        if codec is None:
            codec = Codec.fit(kind[0], np.zeros((0, table.space.dim), np.float32), kind[1])
        if codes is None or pos == 0:
            return None, codec
        meta = pa.Table.from_batches(metas) if with_meta else None
        return Segment.build(codes[:pos], row_ids[:pos], hashes[:pos], meta), codec

    def _advance(self, snap: Snapshot, table: SpaceTable) -> Snapshot | None:
        """The next version as a diff of snap; None when only a reload can tell (then the caller reloads)."""
        version, digest = table.identity
        pinned = PinnedVersion(table, version)
        with_meta = snap.resident_meta and (snap.rows < self.meta_rows)
        new, _ = self._read(pinned, table, snap.max_row_id, snap.codec, 0, _codec_key(snap.codec), with_meta)
        segments = [s if with_meta or s.meta is None else replace(s, meta=None) for s in snap.segments]
        if new is not None:  # an upsert deleted the older row of each path it wrote again
            for i, seg in enumerate(segments):
                dead = seg.find(new.path_hash)
                if len(dead):
                    alive = seg.alive.copy()
                    alive[dead] = False
                    segments[i] = replace(seg, alive=alive)
        live = sum(int(s.alive.sum()) for s in segments) + (len(new) if new is not None else 0)
        count = pinned.count()
        if live != count:  # rows deleted (or rewritten by a compaction): ask the version which ids it holds
            ids = pinned.row_ids()
            segments = [replace(s, alive=s.alive & s.holding(ids)) for s in segments]
            live = sum(int(s.alive.sum()) for s in segments) + (len(new) if new is not None else 0)
            if live != count:
                return None
        if new is not None:
            segments.append(new)
        return Snapshot(table, pinned, digest, snap.setting, snap.codec, _merged(segments), snap.meta_columns)


def _codec_key(codec: Codec) -> tuple[str, int | None]:
    return codec.kind, codec.keep


def _grow(arr: np.ndarray | None, shape: tuple, dtype: np.dtype, used: int) -> np.ndarray:
    out = np.empty(shape, dtype)
    if arr is not None and used:
        out[:used] = arr[:used]
    return out


def _merged(segments: list[Segment]) -> tuple[Segment, ...]:
    segs = [s for s in segments if len(s) and s.alive.any()]
    while len(segs) >= 2 and len(segs[-2]) <= MERGE_RATIO * len(segs[-1]):
        newer = segs.pop()
        segs[-1] = Segment.merge(segs[-1], newer)
    return tuple(segs)
