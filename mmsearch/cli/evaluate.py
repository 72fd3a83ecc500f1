"""`mmsearch eval`: retrieval quality on judged queries or a caption benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mmsearch.cli.common import friendly, service


@click.command("eval")
@click.argument("queries", type=click.Path(path_type=Path), required=False)
@click.option("--captions", type=click.Path(path_type=Path), help="A Flickr30k/MSCOCO caption file instead of QUERIES.")
@click.option("--images", type=click.Path(path_type=Path), help="The image folder the caption file refers to.")
@click.option("--limit", type=click.IntRange(1), help="Use only the first N captions.")
@click.option("--root", type=click.Path(path_type=Path), help="Resolve relative paths against this folder.")
@click.option("--compare", default="default", show_default=True,
              help="Comma-separated configurations: default, rrf, weighted, weighted-zscore, no-hybrid, no-rerank, mmr.")
@click.option("--depth", type=click.IntRange(10, 1000), default=100, show_default=True, help="Results ranked per query.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per configuration.")
@click.pass_context
@friendly
def eval_(ctx: click.Context, queries: Path | None, captions: Path | None, images: Path | None, limit: int | None,
          root: Path | None, compare: str, depth: int, as_json: bool) -> None:
    """Recall@1/5/10, nDCG@10, MRR and mAP on judged queries (JSONL or CSV), overall and per query type."""
    from mmsearch.eval.judged import load_caption_benchmark, load_judged
    from mmsearch.eval.report import table
    from mmsearch.eval.runner import evaluate

    if bool(queries) == bool(captions):
        raise click.UsageError("give a judged QUERIES file, or --captions FILE --images FOLDER")
    if captions and not images:
        raise click.UsageError("--captions needs --images FOLDER")
    judged = load_judged(queries, root) if queries else load_caption_benchmark(captions, images, limit)
    svc = service(ctx)
    results = [evaluate(svc, judged, name.strip(), depth) for name in compare.split(",") if name.strip()]
    if as_json:
        for r in results:
            click.echo(json.dumps(r.to_dict()))
        return
    click.echo(table(results, judged.source))
