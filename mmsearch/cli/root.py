"""The `mmsearch` group: the options every verb shares, and the verbs, each from its own module."""

from __future__ import annotations

import os
from typing import Any

import click

from mmsearch.cli.common import env_option, option_sources


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@env_option("--data-dir", envvar="MMSEARCH_DATA_DIR",
            help="Library folder, file:///path or s3://bucket/prefix (default: your user data folder).")
@click.option("--storage-option", "storage_option", multiple=True, metavar="KEY=VALUE",
              help="Object-store option for an s3:// library or folder (repeatable), e.g. aws_region=eu-west-1; "
                   "the AWS_* variables are read too. Never written to the library.")
@env_option("--read-consistency", "read_consistency_s", envvar="MMSEARCH_READ_CONSISTENCY_S", type=click.FloatRange(0, 3600),
            help="Seconds after which a reader sees other writers' commits (default 1).")
@env_option("--model", envvar="MMSEARCH_MODEL", help="open_clip model name, or a folder with open_clip_config.json.")
@env_option("--pretrained", envvar="MMSEARCH_PRETRAINED", help="Pretrained tag, weights file, or 'random'.")
@click.option("--offline", is_flag=True, default=None, help="Never download; use local weights only.")
@env_option("--device", envvar="MMSEARCH_DEVICE", help="cpu, cuda, mps or auto.")
@env_option("--audio-model", envvar="MMSEARCH_AUDIO_MODEL",
            help="CLAP model for sounds: laion/clap-htsat-unfused (default), laion/larger_clap_general, "
                 "laion/larger_clap_music_and_speech, or a folder with its files.")
@env_option("--encoder", envvar="MMSEARCH_ENCODER", help="open-clip (default), bge-vl or jina-v4 (`mmsearch models`).")
@env_option("--precision", envvar="MMSEARCH_PRECISION", type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
            help="auto: fp16/bf16 on a GPU, fp32 on a CPU.")
@env_option("--backend", envvar="MMSEARCH_BACKEND", type=click.Choice(["torch", "onnx", "onnx-int8"]),
            help="onnx / onnx-int8: the OpenCLIP image tower in ONNX Runtime on the CPU.")
@env_option("--batch-size", envvar="MMSEARCH_BATCH_SIZE", type=click.IntRange(1, 1024), help="Images per model call.")
@click.option("--trust-remote-code", is_flag=True, default=None,
              help="Let a model repository run its own Python code (needed by jinaai/jina-embeddings-v4). Off by default.")
@env_option("--truncate-dim", envvar="MMSEARCH_TRUNCATE_DIM", type=int, help="Matryoshka models: keep this many dimensions.")
@env_option("--text-model", envvar="MMSEARCH_TEXT_MODEL",
            help="Also embed captions (photo.jpg.txt) with this text model, e.g. sentence-transformers/all-MiniLM-L6-v2.")
@env_option("--extra-models", envvar="MMSEARCH_EXTRA_MODELS",
            help="More models, each its own table, fused at search time: [ENCODER:]MODEL[@PRETRAINED],...")
@click.pass_context
def cli(ctx: click.Context, **given: Any) -> None:
    """Search photo and sound libraries by text, by image or by sound."""
    if given.get("offline"):
        os.environ["HF_HUB_OFFLINE"] = "1"
    pairs = given.pop("storage_option", ())
    if pairs:
        from mmsearch.location import BadLocation, parse_storage_options

        try:
            given["storage_options"] = parse_storage_options(pairs)
        except BadLocation as exc:
            raise click.UsageError(str(exc)) from None
    # Settings are built when a verb first asks for them (common.settings_of), not here.
    ctx.obj = {"overrides": {k: v for k, v in given.items() if v is not None}, "sources": option_sources(ctx),
               "settings": None}


def _register(group: click.Group) -> None:
    from mmsearch.cli import catalogs, evaluate, index, maintain, models, moderate, mood, search, serve, status, vectors

    for command in (index.index, search.search, serve.serve, evaluate.eval_, status.status, models.models,
                    models.bridge, catalogs.catalog, moderate.moderate, mood.mood, mood.board, index.ocr,
                    vectors.vectors, maintain.maintain):
        group.add_command(command)


_register(cli)


def main() -> None:
    cli(prog_name="mmsearch")
