"""`mmsearch models` (the model zoo, `pull`) and `mmsearch bridge` (the sound <-> photo bridge)."""

from __future__ import annotations

import json

import click

from mmsearch.cli.common import friendly, service, settings_of


@click.group(invoke_without_command=True)
@click.option("--all", "include_all", is_flag=True, help="Every open_clip pretrained pair, not just the curated list.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model.")
@click.pass_context
@friendly
def models(ctx: click.Context, include_all: bool, as_json: bool) -> None:
    """The model zoo: modalities, dimension, size, licence, GPU need, local weights, published quality."""
    if ctx.invoked_subcommand is not None:
        return
    from mmsearch.model_zoo import format_table, table

    settings = settings_of(ctx)
    rows = table(settings.models_dir, include_all)
    for line in ([json.dumps(r) for r in rows] if as_json else format_table(rows)):
        click.echo(line)


@models.command("pull")
@click.argument("name")
@click.pass_context
@friendly
def models_pull(ctx: click.Context, name: str) -> None:
    """Download NAME (MODEL, MODEL@TAG or ENCODER:MODEL) into the model cache; needs internet access."""
    from mmsearch.model_zoo import pull

    settings = settings_of(ctx)
    for path in pull(name, settings.models_dir, None, settings.is_offline):
        click.echo(str(path))


@click.group()
def bridge() -> None:
    """The audio <-> image bridge (sound -> photos, photo -> sounds)."""


@bridge.command("fit")
@click.pass_context
@friendly
def bridge_fit(ctx: click.Context) -> None:
    """Fit (or refit) the bridge for the configured image and audio models, and save it."""
    provider = service(ctx).bridge()
    fitted = provider.refit()
    click.echo(f"fitted {fitted.audio_space.describe()} <-> {fitted.image_space.describe()} on "
               f"{len(fitted.captions)} captions from {provider.vocabulary}", err=True)
    click.echo(str(provider.path))


@bridge.command("show")
@click.pass_context
@friendly
def bridge_show(ctx: click.Context) -> None:
    """Which bridge the configured models use, and whether it has been fitted."""
    provider = service(ctx).bridge()
    saved = provider.saved()
    if saved is None:
        click.echo(f"not fitted yet (the first sound <-> photo search fits it, or `mmsearch bridge fit`): "
                   f"{provider.path}")
        return
    click.echo(f"{saved.audio_space.describe()} <-> {saved.image_space.describe()}, {len(saved.captions)} captions: "
               f"{provider.path}")
