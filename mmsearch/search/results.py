from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class SearchResult:
    path: str
    score: float  # cosine similarity in one embedding space: the one named by score_space
    name: str
    folder: str
    width: int
    height: int
    format: str
    size: int
    modality: str = "image"
    duration_s: float | None = None
    offset_s: float | None = None
    # The space (EmbeddingSpace.id) whose cosine `score` is; None when no dense list scored the item
    # (a keyword-only hit with rerank off). Scores of different spaces are different numbers.
    score_space: str | None = None
    # A catalog's product (modality "product"): catalog, product_id, title, price, image_file and the
    # catalog's own typed columns; None for files.
    product: dict | None = None
    # A video: the moment that matched best (seconds from the start), the frame that stands for it, and the file's
    # frame rate and codec. None for photos and sounds.
    start_s: float | None = None
    end_s: float | None = None
    frame_s: float | None = None
    fps: float | None = None
    codec: str | None = None

    @property
    def moment(self) -> str | None:
        """FILE@SECONDS, the form `--like` takes for "more like this moment"; None when not a video."""
        return None if self.start_s is None else f"{self.path}@{self.start_s:g}"

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.moment is not None:
            d["moment"] = self.moment
        return d

    @property
    def picture(self) -> str:
        """The file that shows this result: a product's image, else the file itself."""
        return str(self.product["image_file"]) if self.product and self.product.get("image_file") else self.path

    @classmethod
    def from_row(cls, row: dict, score: float, modality: str = "image",
                 space: str | None = None, product: dict | None = None) -> "SearchResult":
        return cls(
            path=row.get("file") or row["path"],  # a video's moment answers with its file
            score=round(float(score), 6),
            name=row["name"],
            folder=row["folder"],
            width=int(row["width"] or 0),
            height=int(row["height"] or 0),
            format=row["format"] or "",
            size=int(row["size"] or 0),
            modality=modality,
            duration_s=row.get("duration_s"),
            offset_s=row.get("offset_s"),
            score_space=space,
            product=product,
            start_s=row.get("start_s"),
            end_s=row.get("end_s"),
            frame_s=row.get("frame_s"),
            fps=None if row.get("fps") is None else round(float(row["fps"]), 3),
            codec=row.get("codec"),
        )
