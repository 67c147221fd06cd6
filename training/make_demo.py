"""Build the demo library ``resources/demo/`` from the corpus, reproducibly.

Twelve ~30-s excerpts (the centred 30 s, mono 22 050 Hz Ogg Vorbis written with
soundfile, 0.5-s fades), two from each of six packages of different styles so every
demo song has a same-album neighbour. Title/artist/album/licence tags are written into
the new files (mutagen; the corpus files are never modified); the artist tag is a cleaned,
short form of the copyright holders (:func:`clean_artist`: no e-mail addresses, years or
boilerplate, at most two names), the full holder list goes into the ``copyright`` tag.
``ATTRIBUTION`` gives,
per file, the source package, original path, author and licence from that package's
Debian ``copyright`` file, and each used ``copyright`` file is copied under
``resources/demo/licenses/``.

    python -m training.make_demo            # needs the corpus (training/config.py: corpus_dir())
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import re
import shutil
from pathlib import Path

import numpy as np

from musicrec_gui.core.audio import load_audio
from training.config import corpus_dir
from training.data import near_duplicate_key

TRACKS_TSV = Path("/work/shared/corpus/tracks.tsv")
OUT = Path(__file__).resolve().parent.parent / "resources" / "demo"
SR = 22050
SECONDS = 30.0
# (package, style) — two tracks each: the first two different pieces, in path order, of at least 45 s.
PACKAGES = [
    ("ufoai-music", "orchestral"),
    ("naev-data", "ambient / space"),
    ("supertux-data", "chiptune-ish"),
    ("widelands-data", "folk / orchestral"),
    ("unknown-horizons", "orchestral / medieval"),
    ("hyperrogue-music", "electronic / ambient"),
]


def copyright_stanzas(path: Path) -> list[dict[str, str]]:
    """Paragraphs of a Debian (DEP-5) copyright file as dicts (continuation lines joined)."""
    stanzas, current, key = [], {}, None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
        elif line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            current[key.strip()] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def attribution_for(package: str, original: str, copyright_file: Path) -> tuple[str, str]:
    """(author/copyright, licence) of ``original`` from the package's copyright file.

    The ``Files:`` patterns name source-tree paths; the most specific stanza whose pattern
    matches the file's name or path tail wins, else the ``Files: *`` stanza.
    """
    stanzas = [s for s in copyright_stanzas(copyright_file) if "Files" in s]
    name = original.split("!")[-1]
    best, best_len = None, -1
    parts = name.split("/")
    for s in stanzas:
        for pattern in s["Files"].split():
            if pattern == "*":
                continue
            pdirs, pfile = pattern.split("/")[:-1], pattern.split("/")[-1]
            if not fnmatch.fnmatch(parts[-1], pfile):
                continue
            if pdirs and pdirs[-1] not in parts[:-1]:
                continue
            if len(pattern) > best_len:
                best, best_len = s, len(pattern)
    if best is None:
        best = next((s for s in stanzas if s["Files"].split() == ["*"]), stanzas[0] if stanzas else {})
    # One holder per line in DEP-5; keep them apart ("; ") instead of running the names together.
    holders = [h.strip() for h in best.get("Copyright", "unknown").splitlines() if h.strip()]
    author = "; ".join(re.sub(r"\s+", " ", h) for h in holders) or "unknown"
    licence = best.get("License", "unknown").splitlines()[0].strip()
    return author, licence


_EMAIL = re.compile(r"<[^>]*>|\(?\b[\w.+-]+@[\w-]+(\.[\w-]+)+\b\)?")
_YEARS = re.compile(r"\b(1[89]|20)\d\d\b(\s*[-\u2013,]\s*((1[89]|20)\d\d\b|present\b))*", re.IGNORECASE)
_BOILERPLATE = re.compile(r"\bcopyright\b|\(c\)|\u00a9|\ball rights reserved\b\.?", re.IGNORECASE)
_LEADING_BY = re.compile(r"^(by\s+the\b|by\b)\s*", re.IGNORECASE)


def artist_names(copyright_text: str) -> list[str]:
    """Clean person/team names from a DEP-5 ``Copyright`` value: no e-mail addresses or ``<...>``,
    no years, "Copyright"/"(c)"/"by the" boilerplate; one name per holder line (or ``,``/``;``-separated
    part), duplicates dropped, order kept."""
    names, seen = [], set()
    for line in re.split(r"[\n;]|\s+and\s+|\s*&\s*|,", copyright_text):
        name = _EMAIL.sub(" ", line)
        name = _BOILERPLATE.sub(" ", name)
        name = _YEARS.sub(" ", name)
        name = re.sub(r"\s+", " ", name).strip(" ,.:;-\u2013")
        name = _LEADING_BY.sub("", name).strip(" ,.:;-\u2013")
        if not re.search(r"[^\W\d_]", name):
            continue
        if name.lower() not in seen:
            seen.add(name.lower())
            names.append(name)
    return names


def upstream_team(copyright_file: Path, package: str) -> str:
    """The package's upstream team: a team-like holder of its ``Files: *`` stanza ("... Team"), else
    ``Upstream-Name``."""
    stanzas = copyright_stanzas(copyright_file)
    star = next((s for s in stanzas if s.get("Files", "").split() == ["*"]), None)
    if star:
        teamlike = re.compile(r"\b(team|developers|project|contributors|authors)\b", re.IGNORECASE)
        names = [n for n in artist_names(star.get("Copyright", "")) if teamlike.search(n) and not re.search(r"debian|\bsee\b|\bothers\b", n, re.IGNORECASE)]
        if names:
            return names[0]
    header = next((s for s in stanzas if "Upstream-Name" in s), {})
    return header.get("Upstream-Name", "").strip() or package


def clean_artist(author: str, team: str, composer: str = "", max_names: int = 2) -> str:
    """The artist tag: at most ``max_names`` clean names from ``author`` (the full attribution stays in
    ATTRIBUTION and the ``copyright`` tag). When the corpus knows the track's composer (a name taken
    from the upstream file name), the matching holder is used, or the composer's name itself when a
    stanza lists several holders and none matches. Falls back to the upstream team."""
    names = artist_names(author.replace("; ", "\n"))
    if composer:
        key = composer.lower()
        match = [n for n in names if key in re.findall(r"[^\W\d_]+", n.lower())]
        if match:
            return match[0]
        if len(names) > max_names or not names:
            return composer
    return ", ".join(names[:max_names]) or team


def pick_tracks() -> list[dict[str, str]]:
    with open(corpus_dir() / "manifest.tsv", newline="", encoding="utf-8") as handle:
        manifest = list(csv.DictReader(handle, delimiter="\t"))
    originals, composers = {}, {}
    if TRACKS_TSV.is_file():
        with open(TRACKS_TSV, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                local = f"{row['package']}/" + row["path"].split("!")[-1].replace("/", "__")
                originals[local] = row["path"]
                composers[local] = row.get("composer", "") or ""
    chosen = []
    for package, style in PACKAGES:
        rows = sorted((r for r in manifest if r["package"] == package and float(r["seconds"]) >= 45), key=lambda r: r["path"])
        groups = set()
        for r in rows:
            key = near_duplicate_key(r["path"])
            if len(groups) == 2 or any(key.startswith(g) or g.startswith(key) for g in groups):
                continue  # two different pieces, not two variants of one
            groups.add(key)
            chosen.append({**r, "style": style, "original": originals.get(r["path"], r["path"]),
                           "composer": composers.get(r["path"], "")})
    return chosen


def title_of(path: str) -> str:
    stem = Path(path.split("__")[-1]).stem
    return re.sub(r"[_\-]+", " ", stem).strip().title()


def build(out: Path = OUT) -> list[Path]:
    import soundfile
    from mutagen.oggvorbis import OggVorbis

    out.mkdir(parents=True, exist_ok=True)
    (out / "licenses").mkdir(exist_ok=True)
    lines = [
        "musicrec demo library — attribution",
        "",
        "Each file is a 30-second excerpt (mono, 22 050 Hz, Ogg Vorbis) of a track shipped in a Debian",
        "'main' package. Author and licence below are taken from that package's Debian copyright file,",
        "a copy of which is in licenses/<package>.copyright (full licence texts are referenced there and",
        "in /usr/share/common-licenses on Debian systems). Excerpts are unmodified except for mixing to",
        "mono, resampling and 0.5-s fades.",
        "The 'artist' tag in each file is a short form of the author line (no e-mail addresses, years or",
        "boilerplate, at most two names; for ufoai-music, whose copyright stanzas list several holders for",
        "a group of files, the composer credited in the upstream file name). The full author line below",
        "and the file's 'copyright' tag are the attribution.",
        "",
    ]
    written = []
    corpus = corpus_dir()
    for i, row in enumerate(pick_tracks(), start=1):
        package = row["package"]
        copyright_file = corpus / package / "copyright"
        author, licence = attribution_for(package, row["original"], copyright_file)
        artist = clean_artist(author, upstream_team(copyright_file, package), row.get("composer", ""))
        shutil.copyfile(copyright_file, out / "licenses" / f"{package}.copyright")
        seconds = float(row["seconds"])
        offset = max(0.0, (seconds - SECONDS) / 2)
        audio = load_audio(corpus / row["path"], sample_rate=SR, offset=offset, duration=SECONDS)
        fade = int(0.5 * SR)
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        audio[:fade] *= ramp
        audio[-fade:] *= ramp[::-1]
        peak = float(np.max(np.abs(audio))) or 1.0
        audio = (audio / max(peak, 1.0)).astype(np.float32)
        title = title_of(row["path"])
        target = out / f"{i:02d} - {package} - {title}.ogg"
        soundfile.write(target, audio, SR, format="OGG", subtype="VORBIS", compression_level=0.5)
        tags = OggVorbis(target)
        tags["title"] = title
        tags["artist"] = artist
        tags["album"] = f"{package} (Debian)"
        tags["genre"] = row["style"]
        tags["tracknumber"] = str(i)
        tags["license"] = licence
        tags["copyright"] = author
        tags["comment"] = f"30-s excerpt from {offset:.1f} s of {row['original']} in Debian package {package}"
        tags.save()
        written.append(target)
        lines += [
            f"{target.name}",
            f"  source package: {package} (Debian main)",
            f"  original path:  {row['original']}",
            f"  excerpt:        {offset:.1f}-{offset + SECONDS:.1f} s of {seconds:.1f} s",
            f"  author:         {author}",
            f"  artist tag:     {artist}",
            f"  licence:        {licence}",
            f"  full terms:     licenses/{package}.copyright",
            "",
        ]
    (out / "ATTRIBUTION").write_text("\n".join(lines), encoding="utf-8")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{len(written)} demo files, {total / 1e6:.2f} MB in {out}")
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    build(Path(args.out))


if __name__ == "__main__":
    main()
