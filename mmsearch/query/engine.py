"""The query engine: every query part against every table that can answer it, fused into one list.

1. Route: each part goes to each table whose encoder accepts its modality, or to a table reached
   through a bridge (projector) from an encoder that does. A text part also gets one keyword route per
   modality, over every table of that modality (they hold the same files).
2. Retrieve: each (part, table) pair is searched concurrently for a shortlist (vector search with
   pre-filters; BM25 keyword search too for text parts when hybrid is on). The keyword lists of one
   part over the tables of one modality are folded into one list (`fusion.best_of`): the same file-name
   match found in the image table, a second model's table and a caption table is one piece of evidence.
3. Rerank: every shortlisted candidate is rescored exactly with full-precision vectors against every
   dense part of its table, so fusion sees complete, exact lists (and negative parts can push down).
4. Fuse (RRF or weighted normalised scores), cut by minimum score, diversify (MMR), explain.

What a result's score means. Fusion only ever sees ranks or per-list normalised scores. The score a
result shows (and that `min_score` cuts on) is one cosine in one embedding space, named by its
`score_space`: the space of its modality's home table, the first table (in the order of the encoders
given, the library's main model first) with a dense list that scored it, against the table's primary
part (the positive part of largest weight, the first given on ties). A CLIP cosine and a MiniLM cosine
are never compared or maxed: an image row indexed by two models shows the main model's cosine, and
`min_score` is a cosine in each result's own space.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

from mmsearch.encoders.base import Encoder
from mmsearch.errors import BadQuery, EmptyQuery, LibraryNotFound, SpaceMismatch, UnknownColumn
from mmsearch.query.embed import Projector, embed_part
from mmsearch.query.filters import Filters, build_filters
from mmsearch.query.fusion import RankedList, best_of, fuse
from mmsearch.query.mmr import mmr_order
from mmsearch.query.parts import MAX_PARTS, QueryOptions, QueryPart
from mmsearch.search.results import SearchResult
from mmsearch.search.vector import VectorSearch
from mmsearch.store.library import Library
from mmsearch.store.table import SpaceTable
from mmsearch.store.video_table import split_at


# Shared by all queries: starting threads per query cost more than a small search here.
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mmsearch-query")


@dataclass
class Contribution:
    part: str
    table: str
    kind: str  # "dense" or "keyword"
    rank: int
    score: float


@dataclass
class FusedHit:
    result: SearchResult
    score: float
    contributions: list[Contribution] = field(default_factory=list)

    def explain(self) -> str:
        return "; ".join(f"{c.part} via {c.table} ({c.kind} #{c.rank}, {c.score:.3f})" for c in self.contributions)

    def to_dict(self) -> dict:
        d = self.result.to_dict()
        d.update(fused_score=round(self.score, 6),
                 matched=[{"part": c.part, "table": c.table, "kind": c.kind, "rank": c.rank,
                           "score": round(c.score, 6)} for c in self.contributions])
        return d


@dataclass
class Answer:
    hits: list[FusedHit]
    notes: list[str]
    lists: int
    seconds: float


@dataclass
class _Route:
    part: QueryPart
    table: SpaceTable
    vector: np.ndarray | None  # None for keyword routes
    order: int = 0  # the part's position in the query
    tables: tuple[SpaceTable, ...] = ()  # a keyword route: every table of the modality, searched as one

    @property
    def source(self) -> str:
        return "+".join(t.name for t in self.tables) if self.tables else self.table.name


class QueryEngine:
    """Receives the library, encoders, bridges and a vector searcher; builds none of them."""

    def __init__(self, library: Library, encoders: Sequence[Encoder], vectors: VectorSearch,
                 projectors: Sequence[Projector] = ()) -> None:
        self.library = library
        self.encoders = list(encoders)
        self.vectors = vectors
        self.projectors = list(projectors)

    # -- public ---------------------------------------------------------------------------------
    def run(self, parts: Sequence[QueryPart], options: QueryOptions) -> Answer:
        started = time.perf_counter()
        options.validate()
        _check_parts(parts)
        liked = _liked(parts)
        if liked and options.shortlist < options.k + len(liked):  # room for k answers besides the file itself
            options = replace(options, shortlist=options.k + len(liked))
        tables, filters = _filtered(self._tables(options.targets), options)
        routes = self._routes(parts, tables)
        lists, rows = self._retrieve(routes, filters, options)
        ranked = self._rerank(routes, lists, rows) if options.rerank else lists
        hits = self._fuse(ranked, rows, routes, options, liked)
        notes = []
        if any(filters.values()) and len(hits) < options.k:
            notes.append(f"only {len(hits)} item{'s' if len(hits) != 1 else ''} match{'' if len(hits) != 1 else 'es'} "
                         f"the filters (asked for {options.k})")
        return Answer(hits, notes, len(ranked), time.perf_counter() - started)

    # -- routing --------------------------------------------------------------------------------
    def _tables(self, targets: Sequence[str]) -> list[SpaceTable]:
        tables = [t for modality in targets for t in self.library.tables(modality)]
        if not tables:
            raise LibraryNotFound(
                f"the library at {self.library.data_dir} has nothing indexed for {' or '.join(targets)} yet; "
                f"index a folder first"
            )
        return tables

    def _routes(self, parts: Sequence[QueryPart], tables: list[SpaceTable]) -> list[_Route]:
        cache: dict[tuple[int, str], np.ndarray] = {}
        routes: list[_Route] = []
        for order, part in enumerate(parts):
            found = False
            direct = {t.modality for t in tables if self._direct(part, t)}
            for table in tables:
                if table.modality == "video" and "video" in direct and not self._direct(part, table):
                    continue  # a video's picture and sound are both indexed: a bridged guess only blurs a direct answer
                vec = self._vector_for(part, table, cache)
                if vec is not None:
                    routes.append(_Route(part, table, vec, order))
                    found = True
            if part.kind == "text" and not part.negative:  # keyword side, used when hybrid is on
                for modality in dict.fromkeys(t.modality for t in tables):
                    same = tuple(t for t in tables if t.modality == modality)
                    routes.append(_Route(part, same[0], None, order, same))
            if not found and part.kind == "like":
                raise BadQuery(f"{part.value} is not in the library; index its folder first, or search by it as "
                               f"an image or a sound")
            if not found:
                have = "; ".join(f"{t.modality} ({t.space.describe()})" for t in tables)
                mine = [e.space.describe() for e in self.encoders if e.supports(part.kind)]
                if mine:  # the library was built with other models than the ones asked to search it
                    built = "; ".join(sorted({t.space.describe() for t in tables}))
                    raise SpaceMismatch(
                        f"this library was indexed with {built}, not {', '.join(mine)}. Search with the model it was "
                        f"built with (--model/--pretrained), or run `mmsearch index` with the new model to embed "
                        f"the library again in its own table (the existing table is kept)")
                raise BadQuery(f"no table in this library can answer {part.describe()}: the library has {have}")
        return routes

    def _direct(self, part: QueryPart, table: SpaceTable) -> bool:
        """The part reaches the table without a bridge (its own stored vector, or an encoder of the space)."""
        return part.kind == "like" or any(e.supports(part.kind) and e.space == table.space for e in self.encoders)

    def _vector_for(self, part: QueryPart, table: SpaceTable, cache: dict) -> np.ndarray | None:
        if part.kind == "like":  # more like an indexed file (a video's moment): its stored vector where it is
            row = table.like_row(str(part.value))
            return None if row is None else np.asarray(row["vector"], np.float32)
        for enc in self.encoders:
            if enc.supports(part.kind) and enc.space == table.space:
                return self._embed(enc, part, cache)
        for proj in self.projectors:
            if proj.target != table.space:
                continue
            for enc in self.encoders:
                if enc.supports(part.kind) and enc.space == proj.source:
                    vec = proj.project(self._embed(enc, part, cache)[None, :])[0]
                    return vec / max(float(np.linalg.norm(vec)), 1e-12)
        return None

    @staticmethod
    def _embed(enc: Encoder, part: QueryPart, cache: dict) -> np.ndarray:
        key = (id(part), enc.space.id)
        if key not in cache:
            cache[key] = embed_part(enc, part)
        return cache[key]

    # -- retrieval ------------------------------------------------------------------------------
    def _retrieve(self, routes: list[_Route], filters: dict[str, Filters], options: QueryOptions
                  ) -> tuple[list[tuple[_Route, RankedList]], dict[str, tuple[SpaceTable, dict]]]:
        dense = [r for r in routes if r.vector is not None and not r.part.negative]
        keyword = [r for r in routes if r.vector is None and options.hybrid
                   and any(t.has_keyword_index() for t in r.tables)]
        by_table: dict[str, list[_Route]] = {}
        for r in dense:
            by_table.setdefault(r.table.name, []).append(r)

        def vector_job(group: list[_Route]) -> list[list[tuple[dict, float]]]:
            table = group[0].table
            # With rerank on, the shortlist comes cheap (quantised scores) and is rescored exactly below.
            # The shortlist feeds fusion; the answer keeps k: a compressed copy rescores enough rows for those.
            return self.vectors.search_many(table, [r.vector for r in group], options.shortlist,
                                            filters[table.name], approximate=options.rerank, keep=options.k)

        def keyword_job(route: _Route) -> list[list[tuple[dict, float]]]:
            found: dict[str, dict] = {}
            per_table = []
            for table in (t for t in route.tables if t.has_keyword_index()):
                arrow = table.keyword_search(str(route.part.value), options.shortlist, filters[table.name].sql())
                hits = arrow.to_pylist()
                per_table.append(RankedList(tuple(r["path"] for r in hits), tuple(r.pop("_score") for r in hits)))
                for r in hits:
                    found.setdefault(r["path"], r)
            one = best_of(per_table)  # one list per part and modality, however many tables hold the files
            return [[(found[p], s) for p, s in zip(one.keys, one.scores)][: options.shortlist]]

        futures = [_POOL.submit(vector_job, g) for g in by_table.values()]
        futures += [_POOL.submit(keyword_job, r) for r in keyword]
        jobs = [r for g in by_table.values() for r in g] + keyword
        results = [found for f in futures for found in f.result()]
        rows: dict[str, tuple[SpaceTable, dict]] = {}
        lists = []
        for route, found in zip(jobs, results):
            for row, _ in found:
                seen = rows.setdefault(row["path"], (route.table, row))
                if seen[1].get("frame_s") is None and row.get("frame_s") is not None:
                    rows[row["path"]] = (route.table, row)  # a moment shows its picture side (its thumbnail frame)
            lists.append((route, RankedList(tuple(r["path"] for r, _ in found), tuple(s for _, s in found),
                                            route.part.weight, route.part.label)))
        return lists, rows

    def _rerank(self, routes: list[_Route], lists: list[tuple[_Route, RankedList]],
                rows: dict[str, tuple[SpaceTable, dict]]) -> list[tuple[_Route, RankedList]]:
        """Rescore every candidate exactly against every dense part of its table's space."""
        keyword = [(r, rl) for r, rl in lists if r.vector is None]
        return self._score_candidates([r for r in routes if r.vector is not None], rows) + keyword

    def _score_candidates(self, routes: list[_Route], rows: dict[str, tuple[SpaceTable, dict]]
                          ) -> list[tuple[_Route, RankedList]]:
        by_modality: dict[str, list[str]] = {}
        for path, (table, _) in rows.items():
            by_modality.setdefault(table.modality, []).append(path)
        out = []
        for route in routes:
            vecs = self.vectors.vectors(route.table, by_modality.get(route.table.modality, []))
            if not vecs:
                continue
            paths = list(vecs)
            scores = np.stack([vecs[p] for p in paths]) @ route.vector
            order = np.argsort(-scores, kind="stable")
            out.append((route, RankedList(tuple(paths[i] for i in order), tuple(float(scores[i]) for i in order),
                                          route.part.weight, route.part.label)))
        return out

    # -- fusion ---------------------------------------------------------------------------------
    def _fuse(self, ranked: list[tuple[_Route, RankedList]], rows: dict[str, tuple[SpaceTable, dict]],
              routes: list[_Route], options: QueryOptions, exclude: set[str] = frozenset()) -> list[FusedHit]:
        if not options.rerank:  # negative parts still need scores over the candidates
            negatives = [r for r in routes if r.vector is not None and r.part.negative]
            ranked = ranked + self._score_candidates(negatives, rows)
        if not ranked or not any(rl.keys for _, rl in ranked):
            return []
        fused = fuse([rl for _, rl in ranked if rl.keys], options.method, options.rrf_k, options.norm)
        if exclude:  # "more like this" never answers with the file itself
            files = {split_at(e)[0] for e in exclude}
            fused = [(p, s) for p, s in fused if p not in exclude and rows[p][1].get("file") not in files]
        fused = best_moments(fused, rows)
        own = self._own_scores(ranked, rows)
        if options.min_score is not None:  # a cosine, compared in each result's own space
            fused = [(p, s) for p, s in fused if p in own and own[p][0] >= options.min_score]
        if options.mmr is not None and len(fused) > 1:
            fused = self._diversify(fused[: options.shortlist], rows, options)
        hits = []
        index = [(route, rl, {p: i for i, p in enumerate(rl.keys)}) for route, rl in ranked]
        _picture_sides(fused[: options.k], rows, self._video_tables)
        for path, score in fused[: options.k]:
            table, row = rows[path]
            contribs = [
                Contribution(route.part.describe(), route.source, "dense" if route.vector is not None else "keyword",
                             pos[path] + 1, rl.scores[pos[path]])
                for route, rl, pos in index if path in pos
            ]
            cosine, space = own.get(path, (0.0, None))
            result = SearchResult.from_row(row, cosine, table.modality, space, table.product_of(row))
            hits.append(FusedHit(result, score, contribs))
        return hits

    def _video_tables(self) -> list[SpaceTable]:
        return [t for space in self.library.spaces("video") if (t := self.library.table("video", space)) is not None]

    def _own_scores(self, ranked: list[tuple[_Route, RankedList]], rows: dict[str, tuple[SpaceTable, dict]]
                    ) -> dict[str, tuple[float, str]]:
        """path -> (cosine, space id): the score in the result's home space (module docstring)."""
        rank_of_space = {enc.space: n for n, enc in enumerate(self.encoders)}
        dense = [(route, rl) for route, rl in ranked if route.vector is not None and not route.part.negative]
        # Home order: tables by their encoder's place (bridged tables after), then parts by weight.
        dense.sort(key=lambda x: (rank_of_space.get(x[0].table.space, len(self.encoders)), x[0].table.name,
                                  -x[0].part.weight, x[0].order))
        by_modality: dict[str, list[tuple[_Route, dict[str, float]]]] = {}
        for route, rl in dense:
            by_modality.setdefault(route.table.modality, []).append((route, dict(zip(rl.keys, rl.scores))))
        out: dict[str, tuple[float, str]] = {}
        for path, (table, _) in rows.items():
            for route, scores in by_modality.get(table.modality, []):
                if path in scores:
                    out[path] = (scores[path], route.table.space.id)
                    break
        return out

    def _diversify(self, fused: list[tuple[str, float]], rows: dict[str, tuple[SpaceTable, dict]],
                   options: QueryOptions) -> list[tuple[str, float]]:
        vectors: dict[str, np.ndarray] = {}
        groups: dict[str, list[str]] = {}
        for path, _ in fused:
            groups.setdefault(rows[path][0].name, []).append(path)
        for paths in groups.values():
            vectors.update(self.vectors.vectors(rows[paths[0]][0], paths))
        keys = [p for p, _ in fused]
        order = mmr_order(
            np.array([s for _, s in fused]), [vectors.get(p) for p in keys], [rows[p][0].name for p in keys],
            options.mmr if options.mmr is not None else 1.0, options.k,
        )
        return [fused[i] for i in order]


def _liked(parts: Sequence[QueryPart]) -> set[str]:
    return {str(p.value) for p in parts if p.kind == "like" and not p.negative}


def _picture_sides(fused: list[tuple[str, float]], rows: dict[str, tuple[SpaceTable, dict]],
                   tables: Callable[[], list[SpaceTable]]) -> None:
    """A moment found only by its sound still shows its picture side's row (its thumbnail frame), where indexed."""
    missing = [p for p, _ in fused if rows[p][1].get("file") is not None and rows[p][1].get("frame_s") is None]
    if not missing:
        return
    for table in tables():
        for key, row in table.rows_for_paths(missing).items():
            if row.get("frame_s") is not None:
                rows[key] = (table, row)


def best_moments(fused: list[tuple[str, float]], rows: dict[str, tuple[SpaceTable, dict]]) -> list[tuple[str, float]]:
    """A video ranks by its best moment: each file once, at the place (and as the moment) it first appears."""
    seen: set[str] = set()
    out = []
    for key, score in fused:
        file = rows[key][1].get("file") if key in rows else None
        if file is not None:
            if file in seen:
                continue
            seen.add(file)
        out.append((key, score))
    return out


def _filters(table: SpaceTable, options: QueryOptions) -> Filters:
    return build_filters(table.schema, options.where, options.folder, options.types, options.after,
                         options.before)


def _filtered(tables: list[SpaceTable], options: QueryOptions) -> tuple[list[SpaceTable], dict[str, Filters]]:
    """The tables a query's filters can apply to, each with its compiled filters. A column only some kinds
    of table have (a catalog's `price`, a video's `fps`) keeps the search to those: nothing elsewhere can match
    it. A column no searched table has is refused, naming the columns there are."""
    kept, filters, unknown = [], {}, None
    for table in tables:
        try:
            filters[table.name] = _filters(table, options)
        except UnknownColumn as exc:
            unknown = unknown or exc
            continue
        kept.append(table)
    if not kept and unknown is not None:
        raise unknown
    return kept, filters


def _check_parts(parts: Sequence[QueryPart]) -> None:
    if not parts:
        raise EmptyQuery("the query has no parts: give some text, an image or a sound")
    if len(parts) > MAX_PARTS:
        raise BadQuery(f"a query takes at most {MAX_PARTS} parts, got {len(parts)}")
    if sum(p.weight for p in parts) < 0 or not any(p.weight > 0 for p in parts):
        raise BadQuery("the query's weights add up to less than zero or have no positive part; negative "
                       "parts only push results down, so give at least as much positive weight")
