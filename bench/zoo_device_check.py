"""Half precision on a GPU for the zoo's encoders, with their tiny random twins (the tests' builders).

For each encoder: embed the same texts and images on the CPU in fp32 and on DEVICE at each precision, and
report the smallest cosine between the two. Half precision moves vectors a little, not a lot.

    python bench/zoo_device_check.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from tests import zoo_support as zs  # noqa: E402

TEXTS = ["a dog on the beach", "a red car in the city", "sunset over the sea"]


def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (48 + 8 * i, 64, 3), dtype=np.uint8)) for i in range(3)]


def builders(work: Path) -> dict:
    from mmsearch.encoders.bgevl import BGEVLEncoder
    from mmsearch.encoders.jina import JinaV4Encoder
    from mmsearch.encoders.openclip import OpenCLIPEncoder

    siglip = work / "siglip"
    zs.t5_tokenizer(siglip)
    from transformers import AutoTokenizer

    zs.save_open_clip(siglip, zs.siglip_cfg(len(AutoTokenizer.from_pretrained(siglip)), "timm/ViT-B-16-SigLIP"))
    mobile = zs.save_open_clip(work / "mobileclip", zs.mobileclip_cfg())
    bge = zs.make_tiny_bge_vl(work / "bge")
    jina = zs.make_tiny_jina_v4(work / "jina")
    return {
        "open-clip SigLIP twin": lambda d, p: OpenCLIPEncoder(str(siglip), None, offline=True, device=d, precision=p),
        "open-clip MobileCLIP twin": lambda d, p: OpenCLIPEncoder(str(mobile), None, offline=True, device=d, precision=p),
        "bge-vl twin": lambda d, p: BGEVLEncoder(str(bge), offline=True, device=d, precision=p),
        "jina-v4 twin": lambda d, p: JinaV4Encoder(str(jina), offline=True, device=d, precision=p),
    }


def embed(enc) -> np.ndarray:
    pics = [enc.preprocess_image(im) for im in images()]
    out = [enc.encode_text(TEXTS), enc.encode_images(pics)]
    if hasattr(enc, "encode_composed"):
        out.append(enc.encode_composed(images()[:1], ["but in red"]))
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "fp16", "bf16", "auto"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in builders(Path(tmp)).items():
            ref = embed(make("cpu", "fp32"))
            for precision in args.precisions:
                enc = make(args.device, precision)
                got = embed(enc)
                row = {"encoder": name, "device": args.device, "precision": precision, "dtype": str(enc.dtype),
                       "min_cosine_vs_cpu_fp32": round(float(np.min(np.sum(ref * got, axis=1))), 5)}
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
