from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class SearchResult:
    path: str
    score: float  # cosine similarity in the table's space
    name: str
    folder: str
    width: int
    height: int
    format: str
    size: int
    modality: str = "image"
    duration_s: float | None = None
    offset_s: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict, score: float, modality: str = "image") -> "SearchResult":
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
        )
