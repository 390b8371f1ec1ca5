"""Panel `filter_grid`: decoder (and encoder) filters as PNG atlases laid out on the model's topology.

Each filter is contrast-normalised on its own (zero stays mid-grey, ±max|f| maps to black/white),
so weak and strong filters are equally legible. Layouts (the payload's `layout.type`):
- `grid`: tiles at their place on the model's 2-D grid (topographic models);
- `groups`: 1-D groups side by side, one group per atlas row (a gap between groups);
- `tree`: one atlas row per tree level, the tree's `parents` for the renderer's edges;
- `positions`: receptive fields placed at their image positions (local filters: `layout.positions`);
- `list`: row-major in a near-square grid;
- `layers`: a stack of layers (conv stacks), one labelled block per layer, top to bottom, each laid
  out by its own layout; `layout.layers` = [{label, count, first, tile, top, channels}] (units
  first … first+count−1 are that layer's; `top` is the block's label band, LABEL_H pixels high).
Every tile's place is in `tiles` ([[x, y], ...] in atlas pixels) unless the layout is `grid`
(rows × cols, pitch tile + pad). The encoder atlas (`encoder_png`, same places) is sent when the
frame stays under BUDGET; otherwise `encoder_omitted` says so.
Per-unit statistics on the probe batch (`stats`): mean activation, share of probes it is active on,
and the decoder filter's norm; `groups`: the groups of each unit (at most MAX_GROUPS listed), or
`group_rule` ({type: "torus_2d", side, pool, stride}) from which the renderer works them out.
"""
from __future__ import annotations

import math
import weakref

import numpy as np

from ._util import (BG, PAD, area_resize, code, encoder_filters, filter_bank, grey_tiles, grid_places, paste_tiles,
                    png_base64, rounded)

LEVELS_BITS = 6  # grey levels quantised to 64: the atlas PNG compresses ~25% better, still smooth
BUDGET = 50_000  # characters of payload a frame; the encoder atlas is sent only when it fits
MAX_GROUPS = 4  # groups listed per unit for hover (overlapping pools can hold a unit 25 times)
LABEL_H = 6  # atlas rows above each layer block where the renderer writes the layer's label
MAX_TILE_PIXELS = 36_864  # tile pixels an atlas may hold: 256 tiles of 12×12 fit; 400 of 28×28 become 9×9


def tile_size(m: int, h: int, w: int, limit: int = MAX_TILE_PIXELS) -> tuple[int, int]:
    """The tile size m filters of h×w are drawn at: their own, or shrunk (aspect kept) to fit `limit` pixels."""
    if m * h * w <= limit:
        return h, w
    scale = math.sqrt(limit / (m * h * w))
    return max(3, int(h * scale)), max(3, int(w * scale))


def shrink(filters: np.ndarray) -> np.ndarray:
    """The filters at tile_size (area-averaged, so a shrunk tile keeps the filter's coarse shape)."""
    return area_resize(filters, *tile_size(*filters.shape))


def atlas(filters: np.ndarray, cols: int) -> np.ndarray:
    """(m, h, w) filters → one uint8 image, tiles row-major, `cols` per row."""
    m, h, w = filters.shape
    return place(filters, grid_places(m, cols, h, w))[0]


def place(filters: np.ndarray, places: list[tuple[int, int]]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Tiles at the given (x, y) pixel corners → atlas image (size fitted to the places)."""
    tiles = grey_tiles(filters) >> (8 - LEVELS_BITS) << (8 - LEVELS_BITS)
    return paste_tiles(tiles, places), places


def layout_places(layout: dict, m: int, h: int, w: int, groups: list[list[int]] | None) -> tuple[list, dict]:
    """Pixel corner of every tile for the layout; returns (places, layout as sent)."""
    kind = layout.get("type", "list")
    sx, sy = w + PAD, h + PAD
    if kind == "grid":
        cols = int(layout["cols"])
        return grid_places(m, cols, h, w), layout
    if kind == "tree" and layout.get("parents") is not None:
        parents = layout["parents"]
        depth = [0] * m
        for i in range(m):
            p = parents[i]
            depth[i] = 0 if p < 0 else depth[p] + 1
        levels: dict[int, list[int]] = {}
        for i in range(m):
            levels.setdefault(depth[i], []).append(i)
        widest = max(len(v) for v in levels.values())
        places = [(0, 0)] * m
        for d, nodes in levels.items():  # centre each level under the widest one
            offset = (widest - len(nodes)) * sx / 2
            for k, node in enumerate(nodes):
                places[node] = (int(PAD + offset + k * sx), PAD + d * (sy + 4))
        return places, {**layout, "levels": len(levels)}
    if kind == "positions" and layout.get("positions") is not None:
        pos = np.asarray(layout["positions"], dtype=np.float64)  # (m, 2): (x, y) in image pixels
        pos = pos - pos.min(axis=0)
        gaps = np.diff(np.unique(pos.ravel()))
        spacing = float(gaps[gaps > 0].min()) if (gaps > 0).any() else 1.0
        scale = max(1.0, max(sx, sy) / spacing)  # neighbouring fields never overlap on screen
        return [(int(PAD + x * scale), int(PAD + y * scale)) for x, y in pos], layout
    if groups is not None and layout.get("type") in (None, "list", "groups"):
        disjoint = all(len(g) == 1 for g in groups) and len({g[0] for g in groups}) > 1
        if disjoint:  # 1-D blocks: one group per atlas row, groups stacked with a gap
            by_group: dict[int, list[int]] = {}
            for i, g in enumerate(groups):
                by_group.setdefault(g[0], []).append(i)
            per_row = max(len(v) for v in by_group.values())
            n_rows = len(by_group)
            if per_row * n_rows == m and per_row > 1:
                cols_of_groups = max(1, int(round(math.sqrt(n_rows * sy / (per_row * sx)))))
                places = [(0, 0)] * m
                for k, (_, members) in enumerate(sorted(by_group.items())):
                    gr, gc = divmod(k, cols_of_groups)
                    for j, unit in enumerate(members):
                        places[unit] = (PAD + gc * (per_row * sx + 4) + j * sx, PAD + gr * sy)
                return places, {"type": "groups", "group_size": per_row, "n_groups": n_rows}
    cols = math.ceil(math.sqrt(m))
    return grid_places(m, cols, h, w), {**layout, "type": layout.get("type", "list")}


_membership: dict[int, tuple] = {}  # id(group structure) → (weak ref, lists): fixed for a run


def group_rule(model) -> dict | None:
    """The rule that generated the groups, when the renderer can apply it itself (torus pools): 256
    units in 25 pools each are ~6 KB of lists a frame, the rule is 60 bytes."""
    g = getattr(model, "groups", None)
    return (getattr(g, "meta", None) or {}).get("rule")


def unit_groups(model) -> tuple[list[list[int]] | None, list[int] | None]:
    g = getattr(model, "groups", None)
    if g is None or not hasattr(g, "membership"):
        return None, None
    known = _membership.get(id(g))
    if known is None or known[0]() is not g:
        full = g.membership()
        for key in [k for k, (ref, _) in _membership.items() if ref() is None]:
            del _membership[key]
        known = _membership[id(g)] = (weakref.ref(g), ([m[:MAX_GROUPS] for m in full], [len(m) for m in full]))
    return known[1]


def produce_layers(layers: list[dict]) -> dict:
    """One labelled block per layer (each its own tile size and layout), stacked into one atlas."""
    blocks, norms = [], []
    for spec in layers:
        filters = np.asarray(spec["filters"], dtype=np.float32)
        m = filters.shape[0]
        norms.append(np.linalg.norm(filters.reshape(m, -1), axis=1))
        tiles = shrink(filters)
        _, h, w = tiles.shape
        places, _ = layout_places(dict(spec.get("layout") or {}), m, h, w, None)
        blocks.append((spec, filters.shape[1:], tiles.shape[1:], places, place(tiles, places)[0]))
    width = max(img.shape[1] for *_, img in blocks)
    image = np.full((sum(LABEL_H + img.shape[0] for *_, img in blocks), width), BG, dtype=np.uint8)
    meta, tiles_xy, top, first = [], [], 0, 0
    for spec, source, tile, places, img in blocks:
        y0 = top + LABEL_H
        image[y0:y0 + img.shape[0], :img.shape[1]] = img
        tiles_xy += [[int(x), int(y0 + y)] for x, y in places]
        entry = {"label": spec["label"], "count": len(places), "first": first, "tile": list(tile), "top": top,
                 "channels": int(spec.get("channels", 1))}
        if tuple(tile) != tuple(source):
            entry["source_tile"] = list(source)
        meta.append(entry)
        top, first = y0 + img.shape[0], first + len(places)
    return {"atlas_png": png_base64(image), "count": first, "tile": meta[0]["tile"], "pad": PAD,
            "size": [image.shape[1], image.shape[0]], "layout": {"type": "layers", "layers": meta},
            "tiles": tiles_xy, "stats": {"norm": rounded(np.concatenate(norms), 3)}}


def produce(model, probe_x) -> dict:
    bank = filter_bank(model, probe_x)
    if len(bank.get("layers") or ()) > 1:
        return produce_layers(bank["layers"])
    filters = np.asarray(bank["filters"], dtype=np.float32)
    m, h0, w0 = filters.shape
    norms = np.linalg.norm(filters.reshape(m, -1), axis=1)
    tiles = shrink(filters)  # big banks: area-averaged tiles, each still contrast-normalised on its own
    m, h, w = tiles.shape
    rule = group_rule(model)
    groups, group_counts = (None, None) if rule else unit_groups(model)
    places, layout = layout_places(dict(bank.get("layout") or {}), m, h, w, groups)
    image, _ = place(tiles, places)
    out = {
        "atlas_png": png_base64(image),
        "count": m, "tile": [h, w], "pad": PAD, "size": [image.shape[1], image.shape[0]],
        "layout": layout,
    }
    if (h, w) != (h0, w0):  # the renderer says the tiles are shrunk, and from what size
        out["source_tile"] = [h0, w0]
    if layout.get("type") == "grid":  # tile places follow from rows × cols
        out["cols"], out["rows"] = int(layout["cols"]), int(layout["rows"])
    else:
        out["tiles"] = [[int(x), int(y)] for x, y in places]
    z = code(model, probe_x)
    stats = {"norm": rounded(norms, 3)}
    if z.shape[1] == m:
        stats["mean"] = rounded(z.mean(axis=0), 4)
        stats["active"] = rounded((np.abs(z) > 1e-6).mean(axis=0), 3)
    out["stats"] = stats
    if rule:
        out["group_rule"] = rule
    elif groups is not None:
        out["groups"], out["group_counts"] = groups, group_counts
    enc = encoder_filters(model, filters.shape)
    if enc is not None and 2 * len(out["atlas_png"]) > BUDGET:  # it cannot fit: do not spend time encoding it
        out["encoder_omitted"] = f"encoder atlas left out to keep a frame under {BUDGET // 1000} KB"
    elif enc is not None:
        enc_png = png_base64(place(area_resize(enc, h, w), places)[0])
        used = len(out["atlas_png"]) + sum(len(str(v)) for k, v in out.items() if k != "atlas_png")
        if used + len(enc_png) <= BUDGET:
            out["encoder_png"] = enc_png
        else:  # the renderer says why the encoder view is off for this model size
            out["encoder_omitted"] = f"encoder atlas ({len(enc_png) // 1000} KB) left out to keep a frame under {BUDGET // 1000} KB"
    return out
