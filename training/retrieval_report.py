"""Tables (markdown) and the K-curve plot from the ``docs/model/retrieval_*.json`` files.

    python -m training.retrieval_report            # prints the tables, writes docs/model/k_curve.png
"""

from __future__ import annotations

import json
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "model"
SETS = ("test", "outside")
ENCODERS = ("musicnn", "compact")
ANALYSES = ("spread4", "spread6", "spread8", "spread12", "spread16", "full", "excerpt30")
K_OF = {"spread4": 4, "spread6": 6, "spread8": 8, "spread12": 12}


def load(set_name: str, name: str) -> dict | None:
    path = DOCS / f"retrieval_{set_name}_{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main_table() -> str:
    lines = ["| encoder | analysis | set | P@1 raw | P@5 raw | mAP raw | P@1 centred | P@5 centred | mAP centred | songs/s* |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for encoder in ENCODERS:
        for analysis in ANALYSES:
            for set_name in SETS:
                data = load(set_name, encoder)
                entry = data and data["analyses"].get(analysis)
                if not entry:
                    continue
                r, c = entry["raw"], entry["centred"]
                lines.append(f"| {encoder} | {analysis} | {set_name} | {r['p@1']:.3f} | {r['p@5']:.3f} | {r['map']:.3f} | "
                             f"{c['p@1']:.3f} | {c['p@5']:.3f} | {c['map']:.3f} | {entry['timing']['songs_per_second']:.2f} |")
    return "\n".join(lines)


def set_table(set_name: str) -> str:
    """One set: rows encoder × analysis, columns P@1 / P@5 / mAP raw and centred, songs/s."""
    lines = [f"| {set_name}: encoder, analysis | P@1 | P@5 | mAP | P@1 centred | P@5 centred | mAP centred | songs/s* |",
             "|---|---|---|---|---|---|---|---|"]
    for encoder in ENCODERS:
        data = load(set_name, encoder)
        for analysis in ANALYSES:
            entry = data and data["analyses"].get(analysis)
            if not entry:
                continue
            r, c = entry["raw"], entry["centred"]
            lines.append(f"| {encoder}, {analysis} | {r['p@1']:.3f} | {r['p@5']:.3f} | {r['map']:.3f} | "
                         f"{c['p@1']:.3f} | {c['p@5']:.3f} | {c['map']:.3f} | {entry['timing']['songs_per_second']:.2f} |")
    return "\n".join(lines)


def baseline_table() -> str:
    lines = ["| baseline | set | P@1 raw | P@5 raw | mAP raw | P@1 centred | P@5 centred | mAP centred |", "|---|---|---|---|---|---|---|---|"]
    for set_name in SETS:
        data = load(set_name, "mfcc")
        rnd = (data or load(set_name, "musicnn"))["random"]
        lines.append(f"| random (200 draws; analytic P@1 {rnd['p@1_analytic']:.3f}) | {set_name} | {rnd['p@1']:.3f} | "
                     f"{rnd['p@5']:.3f} | {rnd['map']:.3f} | — | — | — |")
    for set_name in SETS:
        data = load(set_name, "mfcc")
        if data:
            r, c = data["raw"], data["centred"]
            lines.append(f"| MFCC statistics, spread 8 (60-d) | {set_name} | {r['p@1']:.3f} | {r['p@5']:.3f} | {r['map']:.3f} | "
                         f"{c['p@1']:.3f} | {c['p@5']:.3f} | {c['map']:.3f} |")
    return "\n".join(lines)


def whitening_table() -> str:
    lines = ["| vectors | set | none (raw) | centred | pca8 | pca16 | pca32 | shrink0.1 | shrink1 |", "|---|---|---|---|---|---|---|---|---|"]
    for name, analysis in (("musicnn", "spread8"), ("compact", "spread8"), ("mfcc", None)):
        for set_name in SETS:
            data = load(set_name, name)
            entry = data and (data["analyses"].get(analysis) if analysis else data)
            if not entry:
                continue
            w = entry["whitened"]
            cells = [entry["raw"], entry["centred"]] + [w[k] for k in ("pca8", "pca16", "pca32", "shrink0.1", "shrink1")]
            lines.append(f"| {name} {analysis or 'spread8'} | {set_name} | " +
                         " | ".join(f"{c['p@1']:.3f} / {c['map']:.3f}" for c in cells) + " |")
    return "\n".join(lines)


def package_table() -> str:
    cols = [("musicnn", "spread8", "raw"), ("musicnn", "spread8", "centred"), ("compact", "excerpt30", "raw"),
            ("compact", "excerpt30", "centred")]
    tables = {}
    for name, analysis, kind in cols:
        data = load("outside", name)
        if data and analysis in data["analyses"]:
            tables[(name, analysis, kind)] = data["analyses"][analysis]["per_package_p@1"][kind]
    mfcc = load("outside", "mfcc")
    if mfcc:
        tables[("mfcc", "spread8", "centred")] = mfcc["per_package_p@1"]["centred"]
    packages = sorted(next(iter(tables.values())))
    head = "| package (queries) | " + " | ".join(f"{n} {a} {k}" for n, a, k in tables) + " |"
    lines = [head, "|---" * (len(tables) + 1) + "|"]
    for package in packages:
        first = next(iter(tables.values()))[package]
        lines.append(f"| {package} ({first['queries']}) | " + " | ".join(f"{t[package]['p@1']:.2f}" for t in tables.values()) + " |")
    return "\n".join(lines)


def plot(path: Path = DOCS / "k_curve.png") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5.0), sharex=True)
    xs = [4, 6, 8, 12, 16, 20]
    colours = {"musicnn": "tab:blue", "compact": "tab:orange"}
    styles = {"test": "--", "outside": "-"}
    for ax, metric, title in zip(axes, ("p@1", "map"), ("P@1 (centred)", "mAP (centred)")):
        for encoder in ENCODERS:
            for set_name in SETS:
                data = load(set_name, encoder)
                if not data:
                    continue
                a = data["analyses"]
                pts = [(x, a[k]["centred"][metric]) for k, x in zip(("spread4", "spread6", "spread8", "spread12", "spread16", "full"), xs) if k in a]
                if pts:
                    ax.plot(*zip(*pts), styles[set_name], marker="o", color=colours[encoder], label=f"{encoder}, {set_name}")
                if "excerpt30" in a:
                    ax.plot([10.0], [a["excerpt30"]["centred"][metric]], marker="*", markersize=14, linestyle="none",
                            color=colours[encoder] if set_name == "outside" else "white", markeredgecolor=colours[encoder],
                            label=f"{encoder}, {set_name}: 30-s excerpt")
        ax.set_xticks(xs, ["4", "6", "8", "12", "16", "all\n(≤ 64)"])
        ax.set_xlabel("patches per song, spread over the song (K)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("same-package retrieval")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle("Where to listen: K patches spread over the song vs all patches (centred vectors)\n"
                 "solid: outside set (46 songs); dashed: corpus test split (75 songs); "
                 "stars: the centred 30-s excerpt (10 contiguous patches)", fontsize=9.5)
    fig.tight_layout(rect=(0, 0.13, 1, 0.95))
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    for table in (lambda: set_table("outside"), lambda: set_table("test"), baseline_table, whitening_table, package_table):
        try:
            print(table(), end="\n\n")
        except Exception as err:  # a partial set of runs
            print(f"(a table: {err})\n")
    plot()


# Song vectors kept by ``python -m training.retrieval ... --vectors docs/model/retrieval_vectors`` (1.2 MB).
VECTORS = DOCS / "retrieval_vectors"


def hits_at_1(vectors, labels, *, centre: bool = False):
    """Per-query hit (1/0) of the nearest neighbour, for queries with a relevant neighbour."""
    from training.retrieval import per_query

    return per_query(vectors, labels, centre=centre)["p@1"].astype(int)


def paired(set_name: str, a: tuple[str, str, bool], b: tuple[str, str, bool]) -> str:
    """Discordant queries between two systems (encoder, analysis, centred): a-only / b-only hits, sign-test p."""
    import numpy as np
    from scipy.stats import binomtest

    def hits(spec):
        name, analysis, centre = spec
        d = np.load(VECTORS / f"{set_name}_{name}_{analysis}.npz")
        # Library ids follow the sorted symlink names (the scan plan inserts them in walk order), i.e. the
        # set's track order; newer files store that order explicitly.
        order = np.argsort(d["order"]) if "order" in d.files else np.arange(len(d["labels"]))
        return hits_at_1(d["vectors"][order], d["labels"][order], centre=centre), d["labels"][order]

    ha, la = hits(a)
    hb, lb = hits(b)
    assert (la == lb).all(), "different track orders"
    only_a, only_b = int(((ha == 1) & (hb == 0)).sum()), int(((ha == 0) & (hb == 1)).sum())
    p = binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
    return f"{set_name}: {a} {ha.mean():.3f} vs {b} {hb.mean():.3f}: {only_a} vs {only_b} discordant, sign-test p = {p:.2f}"


def train_whitening(analysis: str = "spread8") -> dict:
    """Whitening (and centring) fitted on the corpus TRAIN split's musicnn vectors, applied to test and outside."""
    import numpy as np

    from training.retrieval import WHITENINGS, pca_whitening, retrieval_scores

    fit = np.load(VECTORS / f"train_musicnn_{analysis}.npz")["vectors"]
    out = {}
    for set_name in SETS:
        d = np.load(VECTORS / f"{set_name}_musicnn_{analysis}.npz")
        v, labels = d["vectors"], d["labels"]
        row = {"centred on train mean": retrieval_scores(v - fit.mean(axis=0), labels)}
        for name, dims, shrink in WHITENINGS:
            row[name] = retrieval_scores(pca_whitening(fit, dims=dims, shrink=shrink)(v), labels)
        out[set_name] = row
    return out


def query_aps(vectors, labels, *, centre: bool = False):
    """Per-query average precision (queries with a relevant neighbour), as ``retrieval.retrieval_scores``."""
    from training.retrieval import per_query

    return per_query(vectors, labels, centre=centre)["ap"]


def paired_map(set_name: str, a: tuple[str, str, bool], b: tuple[str, str, bool]) -> str:
    """Mean AP of two systems on the same queries, the mean difference and a Wilcoxon signed-rank p."""
    import numpy as np
    from scipy.stats import wilcoxon

    def aps(spec):
        name, analysis, centre = spec
        d = np.load(VECTORS / f"{set_name}_{name}_{analysis}.npz")
        order = np.argsort(d["order"]) if "order" in d.files else np.arange(len(d["labels"]))
        return query_aps(d["vectors"][order], d["labels"][order], centre=centre)

    x, y = aps(a), aps(b)
    p = wilcoxon(x, y).pvalue if np.any(x != y) else 1.0
    return f"{set_name}: mAP {a} {x.mean():.3f} vs {b} {y.mean():.3f}: mean diff {np.mean(x - y):+.3f}, Wilcoxon p = {p:.2f}"
