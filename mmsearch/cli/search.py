"""`mmsearch search`: text, images and sounds in one query, fused into one ranked list."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mmsearch.cli.common import TARGETS, emit_hits, friendly, hand_off, service, settings_of
from mmsearch.cli.parts import PartsCommand, old_form_notes, weight_option, weighted_parts

_PART_OPTIONS = {"texts": "text", "images": "image", "audios": "audio", "composed": "composed"}


@click.command(cls=PartsCommand)
@click.argument("query", required=False)
@click.option("--text", "texts", multiple=True, help="A text part, taken as written. Repeatable.")
@click.option("--image", "images", multiple=True, help="An image part (a file). Repeatable.")
@click.option("--audio", "audios", multiple=True, help="A sound part (a file). Repeatable.")
@click.option("--composed", "composed", multiple=True,
              help="An image with an instruction, IMAGE::TEXT (e.g. dress.jpg::but in red); needs bge-vl.")
@weight_option
@click.option("--like", "like", help="More like this indexed file, or this moment of a video: FILE@SECONDS.")
@click.option("--target", type=click.Choice(["images", "audio", "videos", "products", "all"]), default="all",
              show_default=True, help="What to search: photos, sounds, videos, catalog products, or all of them.")
@click.option("-k", "--top", "k", type=click.IntRange(1, 1000), default=None, help="Number of results.")
@click.option("--where", multiple=True, help="Filter COLUMN OP VALUE, e.g. width>=1000, format=PNG, tags~beach.")
@click.option("--folder", help="Only files under this folder.")
@click.option("--type", "types", multiple=True, help="Only these file types (jpg, png, wav ...). Repeatable.")
@click.option("--after", help="Modified on or after this date (YYYY-MM-DD).")
@click.option("--before", help="Modified before this date (YYYY-MM-DD).")
@click.option("--fusion", type=click.Choice(["rrf", "weighted"]), default="rrf", show_default=True)
@click.option("--rrf-k", type=float, default=60.0, show_default=True)
@click.option("--norm", type=click.Choice(["minmax", "zscore"]), default="minmax", show_default=True,
              help="Score normalisation for --fusion weighted.")
@click.option("--hybrid/--no-hybrid", default=True, show_default=True, help="Fuse keyword (BM25) matches.")
@click.option("--rerank/--no-rerank", default=True, show_default=True, help="Rescore the shortlist exactly.")
@click.option("--shortlist", type=click.IntRange(1, 5000), default=100, show_default=True)
@click.option("--mmr", type=click.FloatRange(0, 1), default=None, help="Diversify: 1 = relevance only, lower = more varied.")
@click.option("--min-score", type=float, default=None, help="Cut results whose best similarity is lower.")
@click.option("--explain", is_flag=True, help="Show which query parts and tables matched each result.")
@click.option("--plain", is_flag=True, help="A readable table instead of JSON lines.")
@click.option("--paths-only", is_flag=True, help="One path per line.")
@click.option("--export", "export_to", type=click.Path(path_type=Path),
              help="Also write the results to this .csv or .jsonl file (rank, score, matched parts, metadata).")
@click.option("--copy-to", type=click.Path(path_type=Path), help="Also copy the result files into this folder.")
@click.pass_context
@friendly
def search(ctx: click.Context, query: str | None, texts: tuple[str, ...], images: tuple[str, ...],
           audios: tuple[str, ...], like: str | None, target: str, k: int | None, explain: bool, plain: bool,
           paths_only: bool, composed: tuple[str, ...] = (), weights: tuple[float, ...] = (),
           export_to: Path | None = None, copy_to: Path | None = None, **opts) -> None:
    """Search by text, images and sounds at once; parts are fused into one ranked list.

    QUERY and every part are taken as written ("12:30 meeting" is text). To weigh a part, follow it
    with --weight W; a negative weight pushes its matches down.

    \b
    mmsearch search "dog on a beach"
    mmsearch search --text beach --image photo.jpg --text people --weight -1
    mmsearch search "storm" --target images --where width>=1000 --after 2024-01-01
    """
    from mmsearch.cli.fast import default_k, fast_server
    from mmsearch.query.parts import (QueryOptions, QueryPart, composed_from_cli, is_product_key, like_targets,
                                      part_from_cli)

    fast_url = None if (export_to or copy_to) or (k is None and default_k() is None) else \
        fast_server(ctx.find_root().obj)
    settings = None if fast_url else settings_of(ctx)  # a server with our models answers: no settings to build
    if k is None:
        k = settings.default_k if settings is not None else default_k()
    raw = [("text", query, 1.0)] if query else []
    given = weighted_parts(ctx, _PART_OPTIONS, weights, dict(texts=texts, images=images, audios=audios,
                                                              composed=composed))
    for note in old_form_notes(given):
        click.echo(note, err=True)
    raw += given
    if like and (raw or weights):
        raise click.UsageError("--like stands alone; to mix it with other parts, pass the file as --image")
    if not raw and not like:
        raise click.UsageError("give a text QUERY or at least one --text, --image, --audio or --like")
    parts = [QueryPart("like", like if is_product_key(like) else os.path.abspath(like))] if like else []
    parts += [composed_from_cli(value, weight) if kind == "composed" else part_from_cli(kind, value, weight)
              for kind, value, weight in raw]  # type: ignore[arg-type]
    targets = TARGETS[target]
    if like and target == "all":  # more like a photo: photos; a sound: sounds; a video's moment: videos
        targets = like_targets(like if is_product_key(like) else os.path.abspath(like))
    options = QueryOptions(k=k, targets=targets, method=opts["fusion"], rrf_k=opts["rrf_k"], norm=opts["norm"],
                           hybrid=opts["hybrid"], rerank=opts["rerank"], shortlist=opts["shortlist"],
                           mmr=opts["mmr"], min_score=opts["min_score"], where=list(opts["where"]),
                           folder=os.path.abspath(os.path.expanduser(opts["folder"])) if opts["folder"] else None,
                           types=list(opts["types"]), after=opts["after"], before=opts["before"])
    if not (export_to or copy_to):  # a running server answers at once (its model is already loaded)
        records = _ask_server(fast_url, settings, parts, options)
        if records is not None:
            emit_hits(records, plain, paths_only, explain)
            return
        settings = settings or settings_of(ctx)
    answer = None
    if not (export_to or copy_to):  # words only, on exported text towers: no torch, no model load
        from mmsearch.query.light import light_engine

        engine = light_engine(settings.library_location(), settings.models_dir, targets, settings.ann_threshold, parts)
        answer = engine.run(parts, options) if engine is not None else None
    if answer is None:
        answer = service(ctx).query(parts, options)
    for note in answer.notes:
        click.echo(note, err=True)
    emit_hits([h.to_dict() for h in answer.hits], plain, paths_only, explain)
    hand_off(answer.hits, export_to, copy_to)


def _ask_server(url: str | None, settings, parts: list, options) -> list[dict] | None:
    """The answer of `mmsearch serve` on this library, or None to search in-process (no server, or gone).
    url: a server already found by cli/fast.py; else the settings find one."""
    from dataclasses import asdict

    from mmsearch.server.client import ask, local_record, part_json, server_for

    auth = os.environ.get("MMSEARCH_AUTH") or None if url else settings.auth
    url = url or server_for(settings)
    if url is None:
        return None
    body = {"parts": [part_json(p.kind, p.value, p.weight) for p in parts], **asdict(options)}
    answer = ask(url, body, auth)
    if answer is None:
        return None  # recorded but not answering: search here
    if not answer.get("ok"):
        raise click.ClickException(answer.get("message") or "the server refused the query")
    for note in (answer.get("message") or "").split(" · ")[1:]:
        click.echo(note, err=True)
    return [local_record(r) for r in answer["results"]]
