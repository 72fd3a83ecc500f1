"""onnx-int8 against fp32 on image vectors that differ from image to image (random weights, spread out).

A fresh random init gives MobileCLIP the same vector for every image (pairwise cosine >= 0.99997): any
backend then "loses" results to float noise. This script spreads the vectors as training leaves them
(layer scales 1 instead of timm's 1e-5 init, BatchNorm statistics from a calibration pass over synthetic
pictures; ViTs have neither and are left as they are), saves the weights as a local open_clip folder and
loads them through mmsearch's encoder (reparameterisation, ONNX export and int8 as in production), then
reports the pairwise cosine spread and bench_encoders.py's retention@10 for text and image queries.

    OMP_NUM_THREADS=2 .venv/bin/python bench/int8_spread_retention.py MobileCLIP2-S0 [--collapsed] [--images 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import numpy as np  # noqa: E402
import open_clip  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from bench_encoders import QUERIES, retention, synthetic_images  # noqa: E402
from mmsearch.encoders.openclip import OpenCLIPEncoder  # noqa: E402


def spread_out(model: torch.nn.Module, preprocess) -> dict:
    visual, scales = model.visual, 0
    with torch.no_grad():
        for module in visual.modules():
            if type(module).__name__.startswith("LayerScale"):
                for p in module.parameters(recurse=False):
                    p.fill_(1.0)
                    scales += 1
        norms = [m for m in visual.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None
        if norms:
            x = torch.stack([preprocess(im) for im in synthetic_images(64, seed=7)])
            visual.train()
            for i in range(0, len(x), 16):
                visual(x[i:i + 16])
            visual.eval()
    return {"layer_scales_set": scales, "batchnorms_calibrated": len(norms)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--collapsed", action="store_true", help="keep the raw random init (the old measurement)")
    ap.add_argument("--images", type=int, default=64)
    args = ap.parse_args()
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(args.model, pretrained=None)
    out = {"model": args.model, "spread": not args.collapsed, "images": args.images}
    if not args.collapsed:
        out.update(spread_out(model, preprocess))
    folder = Path(tempfile.mkdtemp(prefix="int8-spread-")) / args.model
    folder.mkdir()
    cfg = {"model_cfg": open_clip.get_model_config(args.model),
           "preprocess_cfg": dict(getattr(model.visual, "preprocess_cfg", {}) or {})}
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    encs = {b: OpenCLIPEncoder(str(folder), None, offline=True, device="cpu", precision="fp32", backend=b)
            for b in ("torch", "onnx", "onnx-int8")}
    images = synthetic_images(args.images, seed=1)
    tensors = [encs["torch"].preprocess_image(im) for im in images]
    vecs = {b: np.concatenate([e.encode_images(tensors[i:i + 16]) for i in range(0, len(tensors), 16)])
            for b, e in encs.items()}
    ref = vecs["torch"]
    off = (ref @ ref.T)[~np.eye(len(ref), dtype=bool)]
    out["pairwise_cos"] = {"min": round(float(off.min()), 4), "median": round(float(np.median(off)), 4),
                           "max": round(float(off.max()), 5)}
    text_q = encs["torch"].encode_text(QUERIES)
    for b in ("onnx", "onnx-int8"):
        out[b] = {"max_abs_diff": float(np.abs(vecs[b] - ref).max()),
                  "retention@10_text": round(retention(ref, vecs[b], text_q), 3),
                  "retention@10_image": round(retention(ref, vecs[b], ref[:16]), 3)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
