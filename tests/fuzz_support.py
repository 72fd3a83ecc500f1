"""Structure-aware fuzzing of image files: mutations that keep a file identifiable, so most inputs get past
format identification and exercise the header parsers and pixel decoders behind it.

Byte flips in a whole file mostly break the magic number or a length/CRC, and Pillow refuses the file
before any decoder runs. Here each format is parsed into its parts (PNG chunks, JPEG segments and entropy
data, TIFF IFD entries, GIF blocks, RIFF chunks, BMP headers); a mutation changes a part's fields
(dimensions, bit depths, sampling, chunk lengths, frame counts, EXIF orientation, ICC profiles, compressed
and raw pixel data) and the file is written back with valid lengths and CRCs wherever the format has them.
"""

from __future__ import annotations

import io
import struct
import zlib

from hypothesis import strategies as st
from PIL import Image

# -- seeds: several variants per format, so the fuzz covers more than one decoder path -------------------


def _noise(size=(48, 40), mode="RGB"):
    return Image.effect_noise(size, 80).convert(mode)


def _exif(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "fuzz camera"
    return exif.tobytes()


def _icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _save(img, fmt, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _frames(n: int, mode="P"):
    return [Image.effect_noise((24, 20), 10 + 20 * i).convert(mode) for i in range(n)]


def seeds(fmt: str) -> list[bytes]:
    img = _noise()
    if fmt == "PNG":
        frames = _frames(3, "RGB")
        return [_save(img, "PNG"), _save(_noise(mode="RGBA"), "PNG", icc_profile=_icc()),
                _save(_noise(mode="P"), "PNG", transparency=0), _save(_noise(mode="L"), "PNG", exif=_exif()),
                _save(frames[0], "PNG", save_all=True, append_images=frames[1:])]  # APNG: acTL/fcTL/fdAT
    if fmt == "JPEG":
        return [_save(img, "JPEG", quality=80), _save(img, "JPEG", progressive=True, exif=_exif(8)),
                _save(_noise(mode="L"), "JPEG"), _save(img, "JPEG", subsampling=0, icc_profile=_icc()),
                _save(_noise(mode="CMYK"), "JPEG")]
    if fmt == "TIFF":
        frames = _frames(3, "RGB")
        return [_save(img, "TIFF"), _save(img, "TIFF", compression="tiff_lzw", tiffinfo={274: 6}),
                _save(_noise(mode="L"), "TIFF", compression="tiff_deflate", icc_profile=_icc()),
                _save(_noise(mode="1"), "TIFF", compression="packbits"),
                _save(frames[0], "TIFF", save_all=True, append_images=frames[1:])]  # three frames
    if fmt == "GIF":
        frames = _frames(3)
        return [_save(frames[0], "GIF", save_all=True, append_images=frames[1:], loop=0, duration=40),
                _save(_noise(mode="P"), "GIF", transparency=3)]
    if fmt == "WEBP":
        frames = _frames(2, "RGB")
        return [_save(img, "WEBP", quality=80), _save(img, "WEBP", lossless=True),
                _save(_noise(mode="RGBA"), "WEBP", exif=_exif(), icc_profile=_icc()),
                _save(frames[0], "WEBP", save_all=True, append_images=frames[1:])]
    if fmt == "BMP":
        return [_save(img, "BMP"), _save(_noise(mode="P"), "BMP"), _save(_noise(mode="1"), "BMP"),
                _save(_noise(mode="RGBA"), "BMP")]
    raise ValueError(fmt)


# -- shared byte-level helpers ---------------------------------------------------------------------------

def _flip(draw, data: bytes, n_max: int = 8) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(draw(st.integers(1, n_max))):
        out[draw(st.integers(0, len(out) - 1))] ^= draw(st.integers(1, 255))
    return bytes(out)


def _resize(draw, data: bytes) -> bytes:
    """Shorter or longer (random bytes appended): the part's length field is then written to match."""
    if draw(st.booleans()) and data:
        return data[:draw(st.integers(0, len(data) - 1))]
    return data + draw(st.binary(min_size=1, max_size=64))


def _dim(draw) -> int:
    return draw(st.one_of(st.integers(1, 300), st.sampled_from([0, 1, 2, 65535, 4096]), st.integers(1, 2000)))


# -- PNG --------------------------------------------------------------------------------------------------

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes) -> list[list]:
    out, pos = [], 8
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        out.append([kind, data[pos + 8:pos + 8 + n]])
        pos += 12 + n
    return out


def png_build(chunks) -> bytes:
    parts = [PNG_SIG]
    for kind, body in chunks:
        parts.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)))
    return b"".join(parts)


def _png_extra(draw) -> list:
    kind = draw(st.sampled_from([b"tEXt", b"zTXt", b"iTXt", b"iCCP", b"eXIf", b"gAMA", b"cHRM", b"sRGB", b"pHYs",
                                 b"tRNS", b"PLTE", b"sBIT", b"bKGD", b"tIME", b"acTL", b"fcTL", b"sPLT"]))
    if kind == b"iCCP":
        profile = draw(st.sampled_from([_icc(), b""])) or draw(st.binary(max_size=200))
        body = b"fuzz\0\0" + (zlib.compress(profile) if draw(st.booleans()) else _flip(draw, zlib.compress(profile)))
    elif kind == b"eXIf":
        body = _exif(draw(st.integers(0, 12)))
        body = _flip(draw, body) if draw(st.booleans()) else body
    elif kind == b"acTL":  # animation: frame count and plays
        body = struct.pack(">II", draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 5)))
    elif kind == b"zTXt":
        body = b"k\0\0" + zlib.compress(draw(st.binary(max_size=100)))
    else:
        body = draw(st.binary(max_size=80))
    return [kind, body]


@st.composite
def png_mutation(draw, seed: bytes) -> bytes:
    chunks = png_chunks(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["ihdr", "pixels", "idat", "length", "add", "drop", "dup", "split", "truncate",
                                   "frames"]))
        idats = [c for c in chunks if c[0] == b"IDAT"]
        if op == "ihdr":
            w, h, depth, colour, comp, filt, lace = struct.unpack(">IIBBBBB", chunks[0][1][:13])
            field = draw(st.sampled_from(["size", "depth", "colour", "lace", "method"]))
            if field == "size":
                w, h = (_dim(draw), h) if draw(st.booleans()) else (w, _dim(draw))
            elif field == "depth":
                depth = draw(st.sampled_from([1, 2, 4, 8, 16, 0, 3, 255]))
            elif field == "colour":
                colour = draw(st.sampled_from([0, 2, 3, 4, 6, 1, 7]))
            elif field == "lace":
                lace = draw(st.integers(0, 2))
            else:
                comp, filt = draw(st.integers(0, 2)), draw(st.integers(0, 2))
            chunks[0][1] = struct.pack(">IIBBBBB", w, h, depth, colour, comp, filt, lace)
        elif op == "pixels" and idats:  # valid zlib around mutated scanlines (filter bytes included)
            try:
                raw = zlib.decompress(b"".join(c[1] for c in idats))
            except zlib.error:
                continue
            raw = _flip(draw, raw) if draw(st.booleans()) else _resize(draw, raw)
            first = chunks.index(idats[0])
            chunks = [c for c in chunks if c[0] != b"IDAT"]
            chunks.insert(first, [b"IDAT", zlib.compress(raw)])
        elif op == "idat" and idats:
            c = draw(st.sampled_from(idats))
            c[1] = _flip(draw, c[1])
        elif op == "length":  # a chunk grows or shrinks; its length and CRC follow
            c = draw(st.sampled_from(chunks[1:] or chunks))
            c[1] = _resize(draw, c[1])
        elif op == "add":
            chunks.insert(draw(st.integers(1, len(chunks))), _png_extra(draw))
        elif op == "drop" and len(chunks) > 2:
            del chunks[draw(st.integers(1, len(chunks) - 1))]
        elif op == "dup":
            c = draw(st.sampled_from(chunks))
            chunks.insert(draw(st.integers(1, len(chunks))), list(c))
        elif op == "split" and idats:
            c = draw(st.sampled_from(idats))
            cut = draw(st.integers(0, len(c[1])))
            i = chunks.index(c)
            chunks[i:i + 1] = [[b"IDAT", c[1][:cut]], [b"IDAT", c[1][cut:]]]
        elif op == "truncate":
            return png_build(chunks)[:draw(st.integers(33, max(33, len(png_build(chunks)) - 1)))]
        elif op == "frames":  # APNG frame count, sequence numbers and frame sizes
            for c in chunks:
                if c[0] == b"acTL":
                    c[1] = struct.pack(">I", draw(st.integers(0, 100000))) + c[1][4:]
                elif c[0] == b"fcTL" and draw(st.booleans()):
                    c[1] = _flip(draw, c[1], 3)
    return png_build(chunks)


# -- JPEG -------------------------------------------------------------------------------------------------

def jpeg_segments(data: bytes) -> tuple[list[list], bytes]:
    """[(marker, body)] up to and including SOS, and the entropy-coded data after it (to EOI)."""
    segs, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        n = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        segs.append([marker, data[pos + 4:pos + 2 + n]])
        pos += 2 + n
        if marker == 0xDA:
            break
    return segs, data[pos:]


def jpeg_build(segs, scan: bytes) -> bytes:
    out = [b"\xff\xd8"]
    for marker, body in segs:
        out.append(bytes([0xFF, marker]) + struct.pack(">H", min(len(body) + 2, 0xFFFF)) + body[:0xFFFD])
    return b"".join(out) + scan


@st.composite
def jpeg_mutation(draw, seed: bytes) -> bytes:
    segs, scan = jpeg_segments(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["sof", "dqt", "dht", "sos", "scan", "scan", "truncate", "exif", "icc", "dri",
                                   "length", "dup"]))
        find = lambda markers: [s for s in segs if s[0] in markers]  # noqa: E731
        if op == "sof" and find({0xC0, 0xC1, 0xC2}):
            s = find({0xC0, 0xC1, 0xC2})[0]
            body = bytearray(s[1])
            if len(body) < 6:  # an earlier "length" op cut this segment: nothing left to rewrite
                continue
            field = draw(st.sampled_from(["size", "precision", "sampling", "tables", "components"]))
            if field == "size":
                body[1:5] = struct.pack(">HH", _dim(draw), _dim(draw))
            elif field == "precision":
                body[0] = draw(st.sampled_from([8, 12, 16, 0, 255]))
            elif field == "sampling" and len(body) >= 10:
                body[7 + 3 * draw(st.integers(0, (len(body) - 7) // 3 - 1))] = draw(st.integers(0, 255))
            elif field == "tables" and len(body) >= 10:
                body[8 + 3 * draw(st.integers(0, (len(body) - 8) // 3 - 1))] = draw(st.integers(0, 5))
            else:
                body[5] = draw(st.integers(0, 5))
            s[1] = bytes(body)
        elif op in ("dqt", "dht", "sos") and find({"dqt": {0xDB}, "dht": {0xC4}, "sos": {0xDA}}[op]):
            s = draw(st.sampled_from(find({"dqt": {0xDB}, "dht": {0xC4}, "sos": {0xDA}}[op])))
            s[1] = _flip(draw, s[1], 3)
        elif op == "scan":  # the entropy-coded data: the Huffman and IDCT paths
            scan = _flip(draw, scan[:-2]) + scan[-2:]
        elif op == "truncate":
            scan = scan[:draw(st.integers(0, len(scan)))]
        elif op == "exif":
            body = b"Exif\0\0" + _exif(draw(st.sampled_from([0, 1, 3, 5, 6, 7, 8, 9, 65535])))
            segs.insert(0, [0xE1, _flip(draw, body, 4) if draw(st.booleans()) else body])
        elif op == "icc":  # APP2 ICC_PROFILE with its chunk number/count, maybe broken
            profile = _icc()
            n, total = draw(st.integers(0, 3)), draw(st.integers(0, 3))
            body = b"ICC_PROFILE\0" + bytes([n, total]) + (profile if draw(st.booleans()) else _resize(draw, profile))
            segs.insert(draw(st.integers(0, max(0, len(segs) - 1))), [0xE2, body])
        elif op == "dri":  # restart interval without (or with wrong) restart markers in the scan
            segs.insert(len(segs) - 1, [0xDD, struct.pack(">H", draw(st.integers(0, 65535)))])
        elif op == "length" and len(segs) > 1:
            s = draw(st.sampled_from(segs[:-1]))
            s[1] = _resize(draw, s[1])
        elif op == "dup" and len(segs) > 1:
            s = draw(st.sampled_from(segs[:-1]))
            segs.insert(draw(st.integers(0, len(segs) - 1)), list(s))
    return jpeg_build(segs, scan)


# -- TIFF -------------------------------------------------------------------------------------------------

TIFF_TYPES = {1: ("B", 1), 3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}
INTERESTING_TAGS = {256, 257, 258, 259, 262, 273, 274, 277, 278, 279, 284, 317, 320, 338, 339, 34675}


def tiff_entries(data: bytes) -> list[tuple[int, int, int, int]]:
    """(offset of the entry, tag, type, count) of every IFD entry of every frame (loops stop)."""
    endian = "<" if data[:2] == b"II" else ">"
    out, seen = [], set()
    ifd = struct.unpack(endian + "I", data[4:8])[0]
    while 8 <= ifd < len(data) - 2 and ifd not in seen:
        seen.add(ifd)
        n = struct.unpack(endian + "H", data[ifd:ifd + 2])[0]
        for i in range(n):
            at = ifd + 2 + 12 * i
            if at + 12 > len(data):
                return out
            tag, kind, count = struct.unpack(endian + "HHI", data[at:at + 8])
            out.append((at, tag, kind, count))
        nxt = ifd + 2 + 12 * n
        ifd = struct.unpack(endian + "I", data[nxt:nxt + 4])[0] if nxt + 4 <= len(data) else 0
        out.append((nxt, -1, 0, 0))  # the next-IFD pointer: the frame chain
    return out


TIFF_VALUES = {256: "dim", 257: "dim", 278: "dim", 258: [1, 2, 4, 8, 12, 16, 32, 0, 64],
               259: [1, 2, 5, 7, 8, 32773, 32946, 99], 262: [0, 1, 2, 3, 4, 5, 6, 8, 9], 274: list(range(10)),
               277: [1, 2, 3, 4, 5, 0, 200], 284: [1, 2, 0], 317: [1, 2, 3, 0], 338: [0, 1, 2, 3]}


def _tiff_values(data: bytes, endian: str, entry) -> list[int]:
    at, _tag, kind, count = entry
    if kind not in (3, 4) or not 0 < count < 10000:
        return []
    fmt, size = TIFF_TYPES[kind]
    where = at + 8 if size * count <= 4 else struct.unpack(endian + "I", data[at + 8:at + 12])[0]
    raw = data[where:where + size * count]
    return list(struct.unpack(endian + fmt * (len(raw) // size), raw[:len(raw) // size * size]))


def tiff_strips(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of the first frame's pixel strips, from StripOffsets and StripByteCounts."""
    endian = "<" if data[:2] == b"II" else ">"
    entries = tiff_entries(data)
    first = entries[:next((i for i, e in enumerate(entries) if e[1] == -1), len(entries))]
    offsets = next((_tiff_values(data, endian, e) for e in first if e[1] == 273), [])
    sizes = next((_tiff_values(data, endian, e) for e in first if e[1] == 279), [])
    return [(o, n) for o, n in zip(offsets, sizes) if n > 0 and o + n <= len(data)]


@st.composite
def tiff_mutation(draw, seed: bytes) -> bytes:
    data = bytearray(seed)
    endian = "<" if data[:2] == b"II" else ">"
    for _ in range(draw(st.integers(1, 4))):
        entries = tiff_entries(bytes(data))
        op = draw(st.sampled_from(["value", "value", "value", "pixels", "pixels", "pixels", "frames", "truncate",
                                   "type", "count"]))
        fields = [e for e in entries if e[1] in INTERESTING_TAGS] or [e for e in entries if e[1] >= 0]
        if op == "value" and fields:  # a dimension, bit depth, compression, strip offset/size, orientation...
            at, tag, kind, count = draw(st.sampled_from(fields))
            choice = TIFF_VALUES.get(tag)
            if choice == "dim":
                value = _dim(draw)
            elif choice:
                value = draw(st.sampled_from(choice))
            else:
                value = draw(st.integers(0, len(data) + 100))
            if kind == 3 and count <= 2:
                data[at + 8:at + 10] = struct.pack(endian + "H", value & 0xFFFF)
            elif count == 1 or kind == 4:
                data[at + 8:at + 12] = struct.pack(endian + "I", value & 0xFFFFFFFF)
        elif op == "type" and fields:
            at = draw(st.sampled_from(fields))[0]
            data[at + 2:at + 4] = struct.pack(endian + "H", draw(st.sampled_from([1, 2, 3, 4, 5, 7, 11, 12, 16, 99])))
        elif op == "count" and fields:
            at = draw(st.sampled_from(fields))[0]
            data[at + 4:at + 8] = struct.pack(endian + "I", draw(st.sampled_from([0, 1, 2, 3, 100, 2**20, 2**31])))
        elif op == "frames":  # the next-frame pointer: none, back to the first (a loop), anywhere
            links = [e for e in entries if e[1] == -1]
            if links:
                at = draw(st.sampled_from(links))[0]
                first = struct.unpack(endian + "I", data[4:8])[0]
                target = draw(st.sampled_from([0, first, at - 2, draw(st.integers(0, len(data) + 10))]))
                data[at:at + 4] = struct.pack(endian + "I", target & 0xFFFFFFFF)
        elif op in ("pixels", "truncate"):
            strips = tiff_strips(bytes(data))
            if not strips:
                continue
            if op == "truncate":  # the file ends inside its pixel data (where its IFD comes first)
                if struct.unpack(endian + "I", data[4:8])[0] < strips[0][0]:
                    data = data[:draw(st.integers(strips[0][0], len(data)))]
                continue
            for _ in range(draw(st.integers(1, 16))):  # compressed (LZW, deflate, packbits) or raw samples
                o, n = draw(st.sampled_from(strips))
                data[draw(st.integers(o, o + n - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


# -- GIF --------------------------------------------------------------------------------------------------

def gif_blocks(data: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(header with the screen descriptor and global colours, [extension and image blocks], trailer)."""
    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    head, blocks = data[:pos], []
    while pos < len(data) and data[pos] in (0x21, 0x2C):
        start = pos
        if data[pos] == 0x21:
            pos += 2
        else:
            f = data[pos + 9]
            pos += 10 + (3 * 2 ** ((f & 7) + 1) if f & 0x80 else 0) + 1
        while pos < len(data) and data[pos]:
            pos += data[pos] + 1
        pos += 1
        blocks.append(data[start:pos])
    return head, blocks, data[pos:]


@st.composite
def gif_mutation(draw, seed: bytes) -> bytes:
    head, blocks, tail = gif_blocks(seed)
    head = bytearray(head)
    for _ in range(draw(st.integers(1, 4))):
        images = [i for i, b in enumerate(blocks) if b[0] == 0x2C]
        op = draw(st.sampled_from(["screen", "colours", "frame", "lzw", "data", "frames", "drop", "ext", "trailer"]))
        if op == "screen":
            head[6:10] = struct.pack("<HH", _dim(draw), _dim(draw))
        elif op == "colours":
            head[10] = draw(st.integers(0, 255))
        elif op in ("frame", "lzw", "data") and images:
            i = draw(st.sampled_from(images))
            b = bytearray(blocks[i])
            if op == "frame":  # the frame's position and size inside the screen
                b[1:9] = struct.pack("<HHHH", *(draw(st.integers(0, 400)) for _ in range(4)))
            elif op == "lzw":
                f = b[9]
                at = 10 + (3 * 2 ** ((f & 7) + 1) if f & 0x80 else 0)
                if at < len(b):
                    b[at] = draw(st.integers(0, 12))
            else:
                b = bytearray(b[:12]) + _flip(draw, bytes(b[12:-1])) + b[-1:]
            blocks[i] = bytes(b)
        elif op == "frames" and images:  # many frames: the first is the one used
            blocks += [blocks[draw(st.sampled_from(images))]] * draw(st.integers(1, 300))
        elif op == "drop" and blocks:
            del blocks[draw(st.integers(0, len(blocks) - 1))]
        elif op == "ext":  # graphic control / application / comment extensions, maybe malformed
            body = draw(st.binary(max_size=20))
            label = draw(st.sampled_from([0xF9, 0xFF, 0xFE, 0x01]))
            blocks.insert(draw(st.integers(0, len(blocks))), bytes([0x21, label, len(body)]) + body + b"\0")
        elif op == "trailer":
            tail = draw(st.sampled_from([b"", b";", b"\0;"]))
    return bytes(head) + b"".join(blocks) + tail


# -- WEBP (RIFF) ------------------------------------------------------------------------------------------

def riff_chunks(data: bytes) -> list[list]:
    out, pos = [], 12
    while pos + 8 <= len(data):
        kind, n = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        out.append([kind, data[pos + 8:pos + 8 + n]])
        pos += 8 + n + (n & 1)
    return out


def riff_build(chunks) -> bytes:
    body = b"WEBP" + b"".join(k + struct.pack("<I", len(b)) + b + (b"\0" if len(b) & 1 else b"") for k, b in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


@st.composite
def webp_mutation(draw, seed: bytes) -> bytes:
    chunks = riff_chunks(seed)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["payload", "payload", "header", "length", "add", "drop", "frames"]))
        c = draw(st.sampled_from(chunks))
        if op == "payload" and len(c[1]) > 12:  # the coded image after its frame header
            c[1] = c[1][:10] + _flip(draw, c[1][10:])
        elif op == "header":  # VP8 frame size / VP8L size and version / VP8X canvas and flags
            c[1] = _flip(draw, c[1][:12], 2) + c[1][12:]
        elif op == "length":
            c[1] = _resize(draw, c[1])
        elif op == "add":
            kind = draw(st.sampled_from([b"EXIF", b"ICCP", b"XMP ", b"ALPH", b"ANIM", b"ANMF", b"VP8X"]))
            body = _exif(draw(st.integers(0, 9))) if kind == b"EXIF" else draw(st.binary(max_size=60))
            chunks.insert(draw(st.integers(0, len(chunks))), [kind, body])
        elif op == "drop" and len(chunks) > 1:
            chunks.remove(c)
        elif op == "frames":
            anmf = [x for x in chunks if x[0] == b"ANMF"]
            if anmf:
                chunks += [list(draw(st.sampled_from(anmf)))] * draw(st.integers(1, 50))
    return riff_build(chunks)


# -- BMP --------------------------------------------------------------------------------------------------

@st.composite
def bmp_mutation(draw, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["size", "bits", "compression", "offset", "colours", "pixels", "truncate"]))
        if op == "size":
            w, h = _dim(draw), _dim(draw) * draw(st.sampled_from([1, -1]))  # negative height: top-down rows
            data[18:26] = struct.pack("<ii", w, h)
        elif op == "bits":
            data[28:30] = struct.pack("<H", draw(st.sampled_from([0, 1, 2, 4, 8, 16, 24, 32, 64])))
        elif op == "compression":
            data[30:34] = struct.pack("<I", draw(st.integers(0, 7)))
        elif op == "offset":
            data[10:14] = struct.pack("<I", draw(st.integers(0, len(data) + 100)))
        elif op == "colours":
            data[46:50] = struct.pack("<I", draw(st.sampled_from([0, 1, 2, 16, 256, 257, 2**31])))
        elif op == "pixels":
            lo = struct.unpack("<I", data[10:14])[0]
            if lo < len(data) - 1:
                data[lo:] = _flip(draw, bytes(data[lo:]), 16)
        else:
            data = data[:draw(st.integers(54, len(data)))]
    return bytes(data)


MUTATIONS = {"PNG": png_mutation, "JPEG": jpeg_mutation, "TIFF": tiff_mutation, "GIF": gif_mutation,
             "WEBP": webp_mutation, "BMP": bmp_mutation}


def structured(fmt: str):
    """A strategy of mutated files of the format, each from one of its seeds."""
    return st.sampled_from(seeds(fmt)).flatmap(MUTATIONS[fmt])
