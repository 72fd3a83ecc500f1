"""Mood search across images, sounds and videos: a curated vocabulary of moods, each expanded into several prompts
whose embeddings are averaged (prompt ensembling, as in CLIP's zero-shot classifiers: Radford et al. 2021,
section 3.1.4), combinable with example files ("more like these three, but calmer").

A mood is a text part whose value is `mood:NAME`. MoodEncoder wraps each encoder of the library: it turns
such a part into the mean of the mood's prompts (the image prompts for an image encoder, the sound prompts
for an audio encoder) and passes everything else through, so the query engine fuses moods, examples and
plain text like any other parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from mmsearch.encoders.base import Encoder
from mmsearch.errors import BadQuery
from mmsearch.query.engine import Answer, QueryEngine
from mmsearch.query.parts import QueryOptions, QueryPart

if TYPE_CHECKING:
    from mmsearch.service import MMSearch

PREFIX = "mood:"


@dataclass(frozen=True)
class Mood:
    name: str
    image: tuple[str, ...]  # prompts for pictures
    sound: tuple[str, ...]  # prompts for sounds


def _mood(name: str, adjectives: Sequence[str], scenes: Sequence[str], sounds: Sequence[str]) -> Mood:
    image = [f"a {a} photo" for a in adjectives] + [f"a photo with a {adjectives[0]} mood"] + list(scenes)
    sound = [f"{a} music" for a in adjectives] + [f"a {adjectives[0]} sound"] + list(sounds)
    return Mood(name, tuple(image), tuple(sound))


# Curated: a few synonyms each, one scene and one sound that carry the mood without naming it.
MOODS: dict[str, Mood] = {m.name: m for m in (
    _mood("melancholic", ["melancholic", "sad", "wistful"], ["a lonely figure in the rain"],
          ["slow sad piano in a minor key"]),
    _mood("energetic", ["energetic", "dynamic", "lively"], ["people running and jumping in bright light"],
          ["fast upbeat drums"]),
    _mood("calm", ["calm", "serene", "tranquil"], ["a still lake at dawn"], ["soft ambient pads"]),
    _mood("calm morning", ["peaceful morning", "quiet early morning", "gentle sunrise"],
          ["soft light through a window in the morning"], ["birdsong at dawn"]),
    _mood("tense", ["tense", "suspenseful", "anxious"], ["a dark alley at night with long shadows"],
          ["a low droning suspense soundtrack"]),
    _mood("joyful", ["joyful", "happy", "cheerful"], ["friends laughing together in the sun"],
          ["a bright happy melody"]),
    _mood("romantic", ["romantic", "tender", "intimate"], ["a couple at sunset"], ["a slow romantic string melody"]),
    _mood("mysterious", ["mysterious", "enigmatic", "foggy"], ["a misty forest path"], ["an eerie ambient drone"]),
    _mood("dreamy", ["dreamy", "ethereal", "soft-focus"], ["pastel clouds in soft light"],
          ["reverb-drenched dreamy synths"]),
    _mood("nostalgic", ["nostalgic", "vintage", "faded"], ["an old faded family photograph"],
          ["a crackling old vinyl record"]),
    _mood("dramatic", ["dramatic", "intense", "epic"], ["storm clouds over mountains"],
          ["a dramatic orchestral crescendo"]),
    _mood("playful", ["playful", "whimsical", "fun"], ["a puppy playing with a ball"], ["a bouncy playful tune"]),
    _mood("eerie", ["eerie", "creepy", "unsettling"], ["an abandoned building at night"],
          ["creaking doors and distant whispers"]),
    _mood("cozy", ["cozy", "warm", "snug"], ["a warm living room with a fireplace"], ["a crackling fireplace"]),
    _mood("lonely", ["lonely", "isolated", "empty"], ["an empty road stretching to the horizon"],
          ["a single distant wind chime"]),
    _mood("triumphant", ["triumphant", "victorious", "uplifting"], ["a climber on a summit"],
          ["triumphant brass fanfare"]),
)}


def mood_part(name: str, weight: float = 1.0, vocabulary: Mapping[str, Mood] = MOODS) -> QueryPart:
    key = name.strip().lower()
    if key not in vocabulary:
        raise BadQuery(f"unknown mood {name!r}; moods: {', '.join(sorted(vocabulary))}")
    return QueryPart("text", PREFIX + key, weight, label=f"mood:{key}")


def ensemble(encoder: Encoder, prompts: Sequence[str]) -> np.ndarray:
    """The normalised mean of the prompts' normalised embeddings."""
    vecs = np.asarray(encoder.encode_text(list(prompts)), np.float32)
    vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    mean = vecs.mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


class MoodEncoder:
    """Wraps an encoder: `mood:NAME` texts become prompt ensembles, everything else passes through."""

    def __init__(self, inner: Encoder, vocabulary: Mapping[str, Mood] = MOODS) -> None:
        self.inner = inner
        self.vocabulary = vocabulary
        self._cache: dict[str, np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def space(self):  # noqa: ANN201 - the inner encoder's space
        return self.inner.space

    def supports(self, modality: str) -> bool:
        return self.inner.supports(modality)  # type: ignore[arg-type]

    def prompts(self, mood: str) -> tuple[str, ...]:
        m = self.vocabulary[mood]
        return m.sound if self.inner.supports("audio") and not self.inner.supports("image") else m.image

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for t in texts:
            if t.startswith(PREFIX) and t[len(PREFIX):] in self.vocabulary:
                mood = t[len(PREFIX):]
                if mood not in self._cache:
                    self._cache[mood] = ensemble(self.inner, self.prompts(mood))
                out.append(self._cache[mood])
            else:
                out.append(np.asarray(self.inner.encode_text([t])[0], np.float32))
        return np.stack(out)


class MoodSearch:
    """Receives the library, encoders, vector search and bridges; builds none of them."""

    def __init__(self, library: Any, encoders: Sequence[Encoder], vectors: Any, projectors: Sequence[Any] = (),
                 vocabulary: Mapping[str, Mood] = MOODS, video_rules: Any = None, video_limits: Any = None) -> None:
        self.library = library
        self.encoders = [MoodEncoder(e, vocabulary) for e in encoders]
        self.vectors = vectors
        self.projectors = list(projectors)
        self.vocabulary = vocabulary
        self.video_rules = video_rules  # how an example video that is not indexed is cut into moments
        self.video_limits = video_limits

    @classmethod
    def for_service(cls, service: "MMSearch", with_bridge: bool = False) -> "MoodSearch":
        projectors = list(service.projectors)
        if with_bridge and service.audio_encoders():
            projectors += service.bridge().projectors()  # example pictures -> sounds and back
        s = service.settings
        return cls(service.library(), service.encoders(), service.searcher.vectors, projectors,
                   video_rules=s.video_rules(), video_limits=s.video_limits())

    def moment_parts(self, value: str, weight: float = 1.0) -> list[QueryPart]:
        """A video moment as an example, indexed or not: its picture and its sound (workflows/moments.py)."""
        from mmsearch.media.shots import MomentRules
        from mmsearch.media.video import DecodeLimits
        from mmsearch.workflows.moments import moment_parts

        return moment_parts(self.library, self.encoders, value, weight,  # type: ignore[arg-type]
                            self.video_rules or MomentRules(), self.video_limits or DecodeLimits())

    def example(self, value: str, weight: float = 1.0) -> list[QueryPart]:
        """An example file's parts: a photo, a sound, or a video moment (FILE@SECONDS)."""
        from mmsearch.workflows.boards import modality_of

        kind = modality_of(value)
        return self.moment_parts(value, weight) if kind == "video" else [QueryPart(kind, value, weight)]

    def run(self, moods: Sequence[tuple[str, float]], examples: Sequence[QueryPart] = (),
            options: QueryOptions | None = None) -> Answer:
        parts = [mood_part(m, w, self.vocabulary) for m, w in moods] + list(examples)
        options = options or QueryOptions()
        options.hybrid = False  # a mood is no keyword: "mood:calm" must not match file names
        engine = QueryEngine(self.library, self.encoders, self.vectors, self.projectors)  # type: ignore[arg-type]
        return engine.run(parts, options)
