"""Markdown tables and the trade-off plot of ``bench_formats.py`` results (JSON in, text out).

    python benchmarks/bench_formats_report.py benchmarks/results/formats.json

re-renders ``formats.md`` and ``formats.png`` from a saved JSON without re-measuring.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Json = dict[str, Any]
MB = 1e6
ROW_BYTES = 113 * 113 * 4


def ms(s: float | None) -> str:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "-"
    v = s * 1e3
    if v < 1:
        return f"{v:.2f}"
    if v < 100:
        return f"{v:.1f}"
    return f"{v:,.0f}"


def ratio(x: float | None, digits: int = 1) -> str:
    if x is None or math.isnan(x) or math.isinf(x):
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def med(entry: Json | None) -> float:
    if not entry or not entry.get("n"):
        return math.nan
    return float(entry["median_s"])


def med_min(entry: Json | None) -> str:
    if not entry or not entry.get("n"):
        return "-"
    return f"{ms(entry['median_s'])} [{ms(entry['min_s'])}]"


# --- sections -------------------------------------------------------------------------------


def machine(res: Json) -> list[str]:
    m = res["machine"]
    loads = [res["machine"]["load_avg_at_start"][0], res.get("load_at_end", [math.nan])[0]]
    for ds in res["datasets"].values():
        for key in ("sweep", "headline"):
            loads += [x[0] for x in ds.get(key, {}).get("load", [])]
    loads = [x for x in loads if not math.isnan(x)]
    return [
        (f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram']} RAM, {m['platform']}; Python "
        f"{m['python']}, numpy {m['numpy']}, zarr {m['zarr']}, numcodecs {m['numcodecs']}, "
        f"xarray {m['xarray']}. Load average (1 min) during the run: "
        f"{min(loads):.1f}-{max(loads):.1f}. Mode {res['mode']}, {res['elapsed_s'] / 60:.0f} min. "
        f"Cold cache: {res['cold_method']} (checked with mincore; "
        f"drop_caches {'also works' if res['drop_caches_available'] else 'not available'}, "
        "not used: it would evict other users' caches on this shared machine)."),
        "",
    ]


def limits(res: Json) -> list[str]:
    lim = res["limits"]
    big = lim["big_bytes"] / 2**20
    return [
        "### Physical limits (same run)",
        "",
        "| what | ms | GB/s |",
        "| --- | ---: | ---: |",
        (f"| memcpy of one epoch (26.2 MB, np.copyto) | {med_min(lim['memcpy_epoch'])} | "
        f"{lim['memcpy_gbps']:.1f} |"),
        (f"| page-cache read of one epoch's .npy (one readinto) | "
        f"{med_min(lim['page_cache_epoch'])} | {lim['page_cache_epoch_gbps']:.1f} |"),
        (f"| page-cache read of a {big:.0f} MiB file (8 MiB blocks) | "
        f"{med_min(lim['page_cache_big'])} | {lim['page_cache_big_gbps']:.1f} |"),
        (f"| cold read of one epoch's .npy (after fadvise DONTNEED) | "
        f"{med_min(lim['disk_epoch'])} | {lim['disk_epoch_gbps']:.2f} |"),
        (f"| cold read of the {big:.0f} MiB file | {med_min(lim['disk_big'])} | "
        f"{lim['disk_big_gbps']:.2f} |"),
        (f"| Blosc lz4-5 decode of one epoch (one call) | {med_min(lim['decode_lz45'])} | "
        f"{26.2144 / 1e3 / med(lim['decode_lz45']):.1f} |"),
        (f"| Blosc zstd-1 decode of one epoch (one call) | {med_min(lim['decode_zstd1'])} | "
        f"{26.2144 / 1e3 / med(lim['decode_zstd1']):.1f} |"),
        (f"| Blosc zstd-3 decode of one epoch (one call) | {med_min(lim['decode_zstd3'])} | "
        f"{26.2144 / 1e3 / med(lim['decode_zstd3']):.1f} |"),
        "",
        f"Pages resident after the eviction (mincore): {lim['evict_check_resident_after']:.3f}.",
        "",
    ]


def sweep_tables(name: str, sw: Json, res: Json) -> list[str]:
    rows = sw["codecs"]
    npy = next(r for r in rows if r["kind"] == "npy")
    npz = next(r for r in rows if r["kind"] == "npz")
    npz_all = next((r for r in rows if r["kind"] == "npz_all"), None)
    n = len(sw["epochs"])
    limit = med(res["limits"]["page_cache_epoch"])
    out = [
        (f"#### Sweep ({name}): {n} epochs {sw['epochs']}, warm page cache, default chunking "
        "(16 neurons per chunk, one shard per epoch) unless stated"),
        "",
        ("ms are medians [min]. x npy: time / raw .npy time; x limit: time / page-cache read of "
        "one epoch; npz / this: per-epoch .npz time / this time (higher is better)."),
        "",
        ("| format / codec | MB per epoch | ratio | ratio / npz's | write MB/s | write / npz's | "
        "full epoch ms | x npy | x limit | npz / this | npz-all / this | one neuron ms | "
        "npz / this |"),
        ("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
        "---: |"),
    ]
    for r in rows + [c for c in sw["chunkings"] if not _dup(c, rows)]:
        out.append(
            f"| {r['label']} | {r['bytes'] / n / MB:.2f} | {r['ratio']:.2f} | "
            f"{r['ratio'] / npz['ratio']:.2f} | {r['write_mbps']:.0f} | "
            f"{r['write_mbps'] / npz['write_mbps']:.1f} | {med_min(r['timings']['full'])} | "
            f"{ratio(r['full_s'] / npy['full_s'])} | {ratio(r['full_s'] / limit)} | "
            f"{ratio(npz['full_s'] / r['full_s'])} | "
            f"{ratio(npz_all['full_s'] / r['full_s']) if npz_all else '-'} | "
            f"{med_min(r['timings']['row'])} | {ratio(npz['row_s'] / r['row_s'], 0)} |"
        )
    out.append("")
    return out


def _dup(row: Json, rows: Sequence[Json]) -> bool:
    return any(
        r["kind"] == "epochstore"
        and r["codec"] == row["codec"]
        and r["rows_per_chunk"] == row["rows_per_chunk"]
        for r in rows
    )


def headline_tables(name: str, h: Json, res: Json) -> list[str]:
    f = h["formats"]
    n = h["epochs"]
    lim = res["limits"]
    warm, cold = h["warm"], h["cold"]
    pc = lim["page_cache_big_gbps"] * 1e9
    disk = lim["disk_big_gbps"] * 1e9
    out = [
        f"#### All {n} epochs ({name}; {h['zero_fraction']:.0%} exact zeros)",
        "",
        "| format | MB on disk | files | ratio | write MB/s | write / npz's |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    npz_w = f["npz"]["write_mbps"]
    for r in f.values():
        extra = " (all epochs at once)" if r["spec"]["kind"] == "npz_all" else ""
        out.append(
            f"| {r['label']}{extra} | {r['bytes'] / MB:,.0f} | {r['files']} | {r['ratio']:.2f} | "
            f"{r['write_mbps']:.0f} | {r['write_mbps'] / npz_w:.1f} |"
        )
    w = h["npz_all_write"]
    out += [
        "",
        (
            f"The one-file .npz: writing epochs 0..{n - 2} at once took "
            f"{w['write_all_first_n_minus_1_s']:.0f} s; **adding epoch {n - 1} (rewriting the "
            f"file) took {w['append_epoch_n_s']:.0f} s**, "
            f"{w['append_epoch_n_over_per_epoch_npz']:.0f}x the per-epoch .npz write of one "
            "epoch. Built one epoch at a time, as training produces them, the file would cost "
            f"~{w['incremental_total_estimate_s'] / 60:.0f} min of writes in total (estimate: "
            "sum of the rewrite costs)."
        ),
        "",
    ]

    def read_table(title: str, table: Json, bw: float, limit_name: str) -> list[str]:
        npz = {c: med(table.get(f"npz|{c}")) for c in ("full", "row", "across", "mean")}
        nall = {c: med(table.get(f"npz_all|{c}")) for c in ("full", "row", "across", "mean")}
        need = {
            "full": 512 * ROW_BYTES,
            "row": ROW_BYTES,
            "across": n * ROW_BYTES,
            "mean": n * 512 * ROW_BYTES,
        }
        lines = [
            title,
            "",
            (
                f"ms, median [min]. x lim: time / (bytes returned or reduced / {limit_name}). "
                "npz / this and all / this: the per-epoch .npz and one-file .npz times over "
                "this one (higher is better). epochstore rows: across = no dask "
                "(`chunks=None`), mean = dask with the default blocks (`chunks=\"auto\"`: "
                "slabs of epochs along whole Zarr chunks on a local store); the last columns: "
                "across with dask (`chunks=\"auto\"`), mean with one dask task per epoch "
                "(`chunks={\"epoch\": 1}`) and mean as a loop of `load_epoch` (no dask)."
            ),
            "",
            (
                "| format | full epoch | x lim | npz / this | all / this | one neuron | "
                f"npz / this | neuron across {n} epochs | x lim | npz / this | all / this | "
                "mean over epochs | x lim | npz / this | across, dask | mean, epoch chunks | "
                "mean, loop |"
            ),
            "| --- |" + " ---: |" * 16,
        ]
        for key, r in f.items():
            cells = [r["label"]]
            for case in ("full", "row", "across", "mean"):
                e = table.get(f"{key}|{case}")
                t = med(e)
                cells.append(med_min(e))
                if case != "row":
                    cells.append(ratio(t / (need[case] / bw)))
                cells.append(ratio(npz[case] / t, 0 if case == "row" else 1))
                if case != "row" and case != "mean":
                    cells.append(ratio(nall[case] / t))
            cells.append(med_min(table.get(f"{key}|across_dask")))
            cells.append(med_min(table.get(f"{key}|mean_epoch_chunks")))
            cells.append(med_min(table.get(f"{key}|mean_loop")))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        return lines

    out += read_table(f"Warm reads ({name})", warm, pc, "page-cache bandwidth")
    if cold:
        out += read_table(
            f"Cold reads ({name}; the files read were evicted before every timed read)",
            cold, disk, "cold disk bandwidth",
        )
    if "rss" in h:
        rss = h["rss"]
        out += [
            (f"Peak RSS growth ({name}; MB, one fresh process per read; +warm: after the same "
            "kind of read on two other epochs/another neuron)"),
            "",
            ("| format | full epoch (26.2 MB result) | one neuron | neuron across epochs | "
            "+warm | across, dask | +warm | mean over epochs | mean, epoch chunks | "
            "mean, loop |"),
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for key, r in f.items():
            def g(k: str, key: str = key) -> str:
                e = rss.get(f"{key}|{k}")
                return f"{e['peak_growth_mb']:.1f}" if e else "-"

            out.append(
                f"| {r['label']} | {g('full')} | {g('row')} | {g('across')} | "
                f"{g('across+warm')} | {g('across_dask')} | {g('across_dask+warm')} | "
                f"{g('mean')} | {g('mean_epoch_chunks')} | {g('mean_loop')} |"
            )
        out.append("")
    return out


def targets(name: str, h: Json, sw: Json) -> list[str]:
    f, warm = h["formats"], h["warm"]
    n = h["epochs"]
    npy_full = med(warm["npy|full"])
    npz_full = med(warm["npz|full"])
    npz_across = med(warm["npz|across"])
    rows = sw["codecs"]
    npz_s = next(r for r in rows if r["kind"] == "npz")
    out = [
        f"#### Issue 6 targets ({name}, {n} epochs, warm, medians)",
        "",
        (
            "| epochstore variant | full <= 3x .npy | full >= 2x faster than .npz | across >= "
            "50x faster than .npz (no dask / dask) | across peak RSS < 32 MB (no dask / dask; "
            "fresh, +warm) | ratio >= .npz's, writes >= 5x .npz's |"
        ),
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rss = h.get("rss", {})

    def ok(flag: bool) -> str:
        return "yes" if flag else "**no**"

    for key, r in f.items():
        if r["spec"]["kind"] != "epochstore":
            continue
        full = med(warm[f"{key}|full"])
        nod = med(warm[f"{key}|across"])
        dk = med(warm.get(f"{key}|across_dask"))

        def rss_cell(k: str, key: str = key) -> str:
            a, b = rss.get(f"{key}|{k}"), rss.get(f"{key}|{k}+warm")
            if not a:
                return "-"
            s = f"{ok(a['peak_growth_mb'] < 32)} ({a['peak_growth_mb']:.1f}"
            if b:
                s += f", {b['peak_growth_mb']:.1f}"
            return s + ")"

        codec = r["spec"]["codec"]
        sw_row = next(
            (x for x in rows if x["kind"] == "epochstore" and x["codec"] == codec), None
        )
        if sw_row:
            good = sw_row["ratio"] >= npz_s["ratio"] and sw_row["write_mbps"] >= 5 * npz_s[
                "write_mbps"]
            codec_cell = (
                f"{ok(good)} (ratio {sw_row['ratio']:.2f} vs {npz_s['ratio']:.2f}; writes "
                f"{sw_row['write_mbps'] / npz_s['write_mbps']:.1f}x)"
            )
        else:
            codec_cell = "-"
        out.append(
            f"| {r['label']} | {ok(full <= 3 * npy_full)} ({full / npy_full:.1f}x) | "
            f"{ok(npz_full / full >= 2)} ({npz_full / full:.1f}x) | "
            f"{ok(npz_across / nod >= 50)} ({npz_across / nod:.0f}x) / "
            f"{ok(npz_across / dk >= 50)} ({npz_across / dk:.0f}x) | "
            f"{rss_cell('across')} / {rss_cell('across_dask')} | {codec_cell} |"
        )
    out.append("")
    if n != 95:
        out += [f"(Only {n} epochs: the across-epochs target is defined for 95.)", ""]
    return out


def report(res: Json) -> str:
    lines = [f"## Storage suite: `bench_formats.py` ({res['mode']})", ""]
    lines += machine(res)
    lines += limits(res)
    for name, ds in res["datasets"].items():
        lines += [f"### Data: {name}", "", ds["description"] + ".", ""]
        lines += sweep_tables(name, ds["sweep"], res)
        if "headline" in ds:
            lines += headline_tables(name, ds["headline"], res)
            lines += targets(name, ds["headline"], ds["sweep"])
    return "\n".join(lines)


# --- plot -----------------------------------------------------------------------------------


def _style(r: Json) -> tuple[str, str, str]:
    """(colour, marker, legend group) of a sweep row."""
    kind = r["kind"]
    if kind != "epochstore":
        colours = {
            "npy": "black", "npz": "tab:red", "npz_all": "darkred",
            "safetensors": "tab:gray", "zarr": "tab:olive",
        }
        return colours.get(kind, "black"), "s", kind
    codec = r["codec"] or {}
    cname = codec.get("cname")
    shuffle = codec.get("shuffle")
    colour = {
        None: "tab:purple", "lz4": "tab:blue", "zstd": "tab:green",
    }.get(cname, "tab:cyan")
    rows = r["rows_per_chunk"]
    marker = {1: "v", 16: "o", 64: "D", 512: "^"}.get(rows, "o")
    if cname == "zstd":
        colour = {1: "tab:green", 3: "yellowgreen", 5: "darkgreen"}.get(
            codec.get("clevel"), colour
        )
    if shuffle == "bitshuffle":
        marker = {16: "P"}.get(rows, marker)
    elif shuffle == "shuffle":
        marker = {16: "X"}.get(rows, marker)
    return colour, marker, kind


def _short(r: Json) -> str:
    if r["kind"] != "epochstore":
        return {
            "npy": ".npy", "npz": ".npz/epoch", "npz_all": ".npz all-in-one",
            "safetensors": "safetensors",
        }.get(r["kind"], _zarr_short(r))
    codec = r["codec"] or {}
    c = "none" if codec.get("cname") is None else f"{codec['cname']}{codec['clevel']}"
    sh = {"shuffle": "+sh", "bitshuffle": "+bit"}.get(codec.get("shuffle", ""), "")
    return f"{c}{sh} k{r['rows_per_chunk']}"


def _place_labels(ax: Any, points: list[tuple[float, float, str]]) -> None:
    """Label points without overlaps: try a few offsets per label, skip it if none fits."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []
    marks = [ax.transData.transform((x, y)) for x, y, _ in points]
    offsets = [(5, 3), (5, -10), (-5, 3), (-5, -10), (0, 9), (0, -14), (8, 12), (8, -18)]
    for (x, y, text), _mark in zip(points, marks, strict=True):
        for dx, dy in offsets:
            ha = "left" if dx >= 0 else "right"
            t = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points",
                            fontsize=7.5, ha=ha, zorder=4)
            box = t.get_window_extent(renderer).expanded(1.02, 1.1)
            hits_mark = any(
                box.contains(mx, my) for mx, my in marks
                if (mx, my) != tuple(ax.transData.transform((x, y)))
            )
            if not any(box.overlaps(b) for b in placed) and not hits_mark:
                placed.append(box)
                break
            t.remove()


def _panel(ax: Any, rows: list[Json], key: str, n: int, title: str, xlabel: str) -> None:
    points = []
    for r in rows:
        colour, marker, _ = _style(r)
        t = r[key]
        if t is None or math.isnan(t):
            continue
        x, y = t * 1e3, r["bytes"] / n / MB
        ax.scatter(x, y, c=colour, marker=marker, s=64, edgecolors="k", linewidths=0.5, zorder=3)
        points.append((x, y, _short(r)))
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("MB on disk per epoch (raw: 26.2)")
    ax.set_title(title, fontsize=10.5)
    ax.grid(True, which="both", alpha=0.3)
    _place_labels(ax, points)


def _headline_rows(h: Json) -> list[Json]:
    rows = []
    for key, f in h["formats"].items():
        spec = f["spec"]
        warm = h["warm"]
        across = [med(warm.get(f"{key}|across"))]
        if spec["kind"] == "epochstore":
            across.append(med(warm.get(f"{key}|across_dask")))
        codec = spec.get("codec")
        rows_pc = spec.get("rows") or 16
        rows.append({
            "kind": spec["kind"], "label": f["label"], "name": spec["name"], "codec": codec,
            "rows_per_chunk": rows_pc,
            "bytes": f["bytes"], "across_s": min(a for a in across if not math.isnan(a)),
            "cold_full_s": med(h["cold"].get(f"{key}|full")) if h["cold"] else math.nan,
        })
    return rows


def _zarr_short(r: Json) -> str:
    name = str(r.get("name", ""))
    if name.startswith("zarr_"):
        parts = name.split("_")[1:]
        return "zarr " + " ".join(p.replace("unsharded", "unsh").replace("sharded", "sh")
                                  for p in parts)
    return str(r["label"]).replace("plain zarr ", "zarr ")


def plot(res: Json, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    names = list(res["datasets"])
    ncols = 3
    fig, axes = plt.subplots(
        len(names), ncols, figsize=(21, 6.6 * len(names)), squeeze=False,
        constrained_layout=True,
    )
    for i, name in enumerate(names):
        ds = res["datasets"][name]
        sw = ds["sweep"]
        rows = sw["codecs"] + [c for c in sw["chunkings"] if not _dup(c, sw["codecs"])]
        n = len(sw["epochs"])
        _panel(axes[i][0], rows, "full_s", n,
               f"{name} data: size vs reading one full epoch",
               "read one full epoch (ms, median, warm page cache, log scale)")
        _panel(axes[i][1], rows, "row_s", n,
               f"{name} data: size vs reading one neuron of one epoch",
               "read one neuron of one epoch (ms, median, warm, log scale)")
        if "headline" in ds:
            h = ds["headline"]
            hrows = _headline_rows(h)
            _panel(axes[i][2], hrows, "across_s", h["epochs"],
                   f"{name} data: size vs one neuron across all {h['epochs']} epochs",
                   f"read one neuron in each of {h['epochs']} epochs (ms, median, warm; "
                   "epochstore: best of dask / no dask)")
        else:
            axes[i][2].axis("off")
    handles = [
        Line2D([], [], ls="", marker="s", mfc="black", mec="k", label=".npy"),
        Line2D([], [], ls="", marker="s", mfc="tab:gray", mec="k", label="safetensors"),
        Line2D([], [], ls="", marker="s", mfc="tab:red", mec="k", label=".npz per epoch"),
        Line2D([], [], ls="", marker="s", mfc="darkred", mec="k", label=".npz, all epochs"),
        Line2D([], [], ls="", marker="s", mfc="tab:olive", mec="k", label="plain zarr"),
        Line2D([], [], ls="", marker="o", mfc="tab:purple", mec="k", label="epochstore, none"),
        Line2D([], [], ls="", marker="o", mfc="tab:blue", mec="k", label="epochstore lz4-5"),
        Line2D([], [], ls="", marker="o", mfc="tab:green", mec="k", label="epochstore zstd-1"),
        Line2D([], [], ls="", marker="o", mfc="yellowgreen", mec="k", label="epochstore zstd-3"),
        Line2D([], [], ls="", marker="o", mfc="darkgreen", mec="k", label="epochstore zstd-5"),
        Line2D([], [], ls="", marker="o", mfc="w", mec="k", label="k16: 16 neurons/chunk"),
        Line2D([], [], ls="", marker="X", mfc="w", mec="k", label="k16, byte shuffle"),
        Line2D([], [], ls="", marker="P", mfc="w", mec="k", label="k16, bitshuffle"),
        Line2D([], [], ls="", marker="D", mfc="w", mec="k", label="k64"),
        Line2D([], [], ls="", marker="^", mfc="w", mec="k", label="whole epoch (k512)"),
        Line2D([], [], ls="", marker="v", mfc="w", mec="k", label="k1"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=8, fontsize=9)
    m = res["machine"]
    fig.suptitle(
        "epochstore storage trade-off, (512, 113, 113) float32 activations: lower = smaller on "
        f"disk, left = faster read ({m['nproc']} cores; medians)",
        fontsize=12,
    )
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str]) -> int:
    src = Path(argv[0])
    res = json.loads(src.read_text())
    src.with_suffix(".md").write_text(report(res) + "\n")
    plot(res, src.with_suffix(".png"))
    print(report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
