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

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def picture(self) -> str:
        """The file that shows this result: a product's image, else the file itself."""
        return str(self.product["image_file"]) if self.product and self.product.get("image_file") else self.path

    @classmethod
    def from_row(cls, row: dict, score: float, modality: str = "image",
                 space: str | None = None, product: dict | None = None) -> "SearchResult":
        return cls(
            path=row["path"],
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
        )
