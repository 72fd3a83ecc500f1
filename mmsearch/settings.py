"""Typed settings read from the environment (prefix ``MMSEARCH_``), overridable by CLI flags."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, Mapping, get_args, get_origin

from platformdirs import user_data_path
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mmsearch.defaults import DEFAULT_K, default_data_dir
from mmsearch.errors import MMSearchError
from mmsearch.location import Location, cache_dir_for, is_uri, parse_location

ENV_PREFIX = "MMSEARCH_"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_LIBRARY = PROJECT_ROOT / "assets" / "samples"
BRIDGE_VOCABULARY = PROJECT_ROOT / "assets" / "bridge" / "captions.txt"


def _default_models_dir() -> Path:
    # A checkout keeps weights next to the code in models/; an installed package uses the data dir.
    local = PROJECT_ROOT / "models"
    return local if local.is_dir() else user_data_path("mmsearch") / "models"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    # A library on object storage (--data-dir s3://bucket/prefix); data_dir is then a local cache folder for what
    # each replica keeps for itself (thumbnails, the server record). Set by giving data_dir a URI.
    library_uri: str | None = None
    storage_options: dict[str, str] = Field(default_factory=dict)  # --storage-option KEY=VALUE; never stored
    ray_chunk_files: int = Field(default=4096, ge=1)  # --ray: files per Ray Data run and commit (what a kill may lose)
    read_consistency_s: float = Field(default=1.0, ge=0, le=3600)  # how soon a reader sees another writer's commits
    models_dir: Path = Field(default_factory=_default_models_dir)
    encoder: str = "open-clip"
    model: str = "ViT-B-32"
    pretrained: str = "laion2b_s34b_b79k"
    device: str = "auto"
    offline: bool = False
    batch_size: int = Field(default=32, ge=1, le=1024)
    workers: int = Field(default_factory=lambda: max(2, min(8, os.cpu_count() or 2)), ge=1, le=64)
    commit_every: int = Field(default=512, ge=1)
    ann_threshold: int = Field(default=150_000, ge=1)
    # The resident copy of each table's vectors (search/codecs.py). None: the library's stored choice (library.json,
    # set by `mmsearch index --vectors` or `mmsearch vectors`), else auto (float32, int8 or binary by table size).
    # "@DIMS" (int8@256) also cuts the resident copy to a Matryoshka length, for models trained for it.
    vectors: str | None = None
    vectors_rerank: int | None = Field(default=None, ge=1, le=1000)  # shortlist per result rescored in float32
    max_image_pixels: int = Field(default=178_956_970, ge=1)  # 2x Pillow's default bomb limit
    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=1, le=65535)
    default_k: int = Field(default=DEFAULT_K, ge=1, le=1000)
    auth: str | None = None  # "user:password" protects the UI and the API
    # The web server's reach (see mmsearch/server/policy.py). Folders, separated by os.pathsep, that the web app
    # may index; empty: the library's own roots and the sample library.
    index_roots: str = ""
    export_root: Path | None = None  # where the web app may copy boards; default <data_dir>/exports
    allowed_hosts: str = ""  # more Host header names to accept, comma-separated (a DNS name in front of the server)
    insecure_no_auth: bool = False  # allow a non-loopback bind without --auth (anyone on the network can use it)
    # Many users at once: searches the web app runs side by side (they share the model, whose text calls are
    # batched), and how many may wait before new ones are turned away with "too busy" instead of queueing forever.
    web_concurrency: int = Field(default=16, ge=1, le=256)
    web_queue: int = Field(default=512, ge=1, le=100_000)
    # Load the models and the resident vectors as soon as the server listens, not on the first search.
    warm_up: bool = True
    max_upload_mb: int = Field(default=50, ge=1, le=4096)
    # Model zoo: number format, faster CPU path, hub-only parts, more models per library.
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # auto: fp16/bf16 on a GPU, fp32 on a CPU
    backend: Literal["torch", "onnx", "onnx-int8"] = "torch"  # onnx*: the OpenCLIP image tower in ONNX Runtime (CPU)
    tokenizer: str | None = None  # a local tokenizer folder for models whose tokenizer lives on the hub
    trust_remote_code: bool = False  # let a model repository run its own Python code (see README); never default
    truncate_dim: int | None = Field(default=None, ge=32)  # Matryoshka models: keep this many dimensions
    text_model: str | None = None  # a text model for captions/descriptions, e.g. sentence-transformers/all-MiniLM-L6-v2
    extra_models: str = ""  # more models, each its own table, fused at query time: "[ENCODER:]MODEL[@PRETRAINED],..."
    text_export: bool = True  # export the OpenCLIP text tower to ONNX at index time (cold CLI text queries skip torch)
    # Text queries in a long-running process: "torch" (default); "auto" the exported ONNX text tower on a CPU and
    # torch on a GPU; "onnx" the export wherever found. ONNX answers one query faster (15.7 vs 49 ms to encode,
    # same vectors to 1e-6) but served fewer answers/s to 20 concurrent clients (9.8-11.1 vs 13.8/s,
    # bench/results/serving_text_backend.md), so it is not the default.
    text_backend: Literal["auto", "torch", "onnx"] = "torch"
    ocr: bool = False  # read text inside images at index time (RapidOCR, the `ocr` extra): ~1 s per image on a CPU

    @model_validator(mode="before")
    @classmethod
    def _library_uri(cls, values: Any) -> Any:
        """data_dir may be a URI: file:// becomes its path, s3:// (gs://, az://) the library_uri."""
        if not isinstance(values, dict):
            return values
        given = values.get("data_dir")
        if isinstance(given, str) and is_uri(given):
            location = parse_location(given)
            values = {**values, "data_dir": location.local or cache_dir_for(location)}
            if location.remote:
                values["library_uri"] = location.uri
        return values

    def library_location(self) -> Location:
        """Where the library lives, with the object-store options (flags over AWS_* variables)."""
        if self.library_uri:
            return parse_location(self.library_uri, self.storage_options)
        return parse_location(self.data_dir)

    def index_root_list(self) -> list[str]:
        return [p for p in self.index_roots.split(os.pathsep) if p.strip()]

    def export_dir(self) -> Path:
        return Path(self.export_root or Path(self.data_dir) / "exports").expanduser()

    def auth_pair(self) -> tuple[str, str] | None:
        if not self.auth:
            return None
        user, sep, password = self.auth.partition(":")
        if not sep or not user or not password:
            raise ValueError("auth must look like user:password")
        return user, password
    # Audio: CLAP embeds sounds and text; the bridge connects its space to the image encoder's.
    audio: bool = True  # False: index and search images only, never load the audio model
    audio_encoder: str = "clap"
    audio_model: str = "laion/clap-htsat-unfused"  # or laion/larger_clap_general, .../larger_clap_music_and_speech
    audio_overlap: float = Field(default=0.25, ge=0.0, lt=1.0)  # between consecutive windows of a recording
    audio_batch_size: int = Field(default=8, ge=1, le=256)  # windows per model call
    max_query_audio_s: float = Field(default=60.0, gt=0)  # a query sound is cut after this
    bridge_vocabulary: Path = BRIDGE_VOCABULARY
    # Video: moments (shots, split when longer than video_moment_s) seen by the image model and heard by the audio
    # model. The defaults keep a phone video to ~1-3 s of CPU model time per minute (bench/bench_video.py).
    video: bool = True  # False: video files are not indexed
    video_frames_per_shot: int = Field(default=3, ge=1, le=32)  # frames embedded per moment, at most
    video_min_shot_s: float = Field(default=1.0, gt=0, le=600)  # cuts closer than this to the last are ignored
    video_moment_s: float = Field(default=10.0, gt=0, le=600)  # a longer shot is split into moments this long
    video_max_frames_per_hour: int = Field(default=1800, ge=1, le=1_000_000)  # model frames per hour of video
    video_cut_threshold: float = Field(default=0.12, gt=0, lt=1)  # frame change (0-1) that counts as a cut
    video_budget_s: float = Field(default=600.0, gt=0)  # wall seconds one file may take to decode

    def video_rules(self) -> Any:
        from mmsearch.media.shots import MomentRules

        return MomentRules(self.video_frames_per_shot, min(self.video_min_shot_s, self.video_moment_s),
                           self.video_moment_s, self.video_max_frames_per_hour, self.video_cut_threshold)

    def video_limits(self) -> Any:
        from mmsearch.media.video import DecodeLimits

        return DecodeLimits(budget_s=self.video_budget_s, max_pixels=self.max_image_pixels)

    @property
    def is_offline(self) -> bool:
        return self.offline or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")

    @field_validator("vectors")
    @classmethod
    def _vector_setting(cls, value: str | None) -> str | None:
        # The pattern of search/codecs.parse_setting, without importing it: the CLI's fast path stays numpy-free.
        if value is not None and not re.fullmatch(r"(auto|float32|float16|int8|binary)(@[1-9][0-9]*)?", value):
            raise ValueError(f"vectors={value!r}: use one of auto, float32, float16, int8, binary, optionally "
                             f"with @DIMS (e.g. int8@256) for a model trained for Matryoshka truncation")
        return value


class BadSetting(MMSearchError):
    """A setting from the environment or a flag is out of range or of the wrong kind."""


def load_settings(overrides: Mapping[str, Any], flags: Mapping[str, str]) -> Settings:
    """Settings from flags (overrides, by field name) over MMSEARCH_* variables; a bad value becomes
    one line per setting naming the flag or variable, the value and what is allowed."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise BadSetting("; ".join(_describe(err, overrides, flags) for err in exc.errors())) from None


def _describe(err: Any, overrides: Mapping[str, Any], flags: Mapping[str, str]) -> str:
    name = str(err["loc"][0]) if err.get("loc") else ""
    source = flags.get(name, f"--{name.replace('_', '-')}") if name in overrides else ENV_PREFIX + name.upper()
    value = err.get("input")
    return f"{source}={value}: {allowed(name) or err.get('msg', 'invalid')}"


def allowed(name: str) -> str:
    """What a setting accepts, from its declaration: 'a whole number from 1 to 64', 'one of ...'."""
    field = Settings.model_fields.get(name)
    if field is None:
        return ""
    kind = field.annotation
    options = [a for a in get_args(kind) if a is not type(None)] if get_origin(kind) is not Literal else []
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(map(str, get_args(kind)))
    if kind is bool:
        return "true or false (also 1/0, yes/no)"
    base = kind if kind in (int, float) else next((a for a in options if a in (int, float)), None)
    if base is None:
        return ""
    noun = "a whole number" if base is int else "a number"
    b = {type(m).__name__: getattr(m, type(m).__name__.lower()) for m in field.metadata
         if type(m).__name__ in ("Ge", "Gt", "Le", "Lt")}
    if "Ge" in b and "Le" in b:
        return f"{noun} from {b['Ge']} to {b['Le']}"
    words = {"Ge": "at least", "Gt": "more than", "Le": "at most", "Lt": "less than"}
    said = [f"{words[k]} {b[k]}" for k in ("Ge", "Gt", "Le", "Lt") if k in b]
    return f"{noun}, {' and '.join(said)}" if said else noun
