"""The HTML report: tables, figures, the front never thinned, read-only storage, pictures, the CLI and its errors.

The page itself is opened in a real browser by ``test_report_browser.py``; here its content is read back from
the file (the figures are JSON blocks, their arrays base64 as plotly.py writes them).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import textwrap
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import moocore
import numpy as np
import pytest
import torch

import workbench as wb
from domains.benchmarks import DTLZ2
from optimizers import NSGA2, RandomSearch
from workbench.cli import main
from workbench.report import stored_campaigns, write_html
from workbench.report.data import POINTS_PER_FIGURE, collect, hypervolume_trace
from workbench.report.downsample import thin
from workbench.report.logo import letter_heights
from workbench.storage import StorageError

pytestmark = pytest.mark.usefixtures("one_thread")
DNA_ORACLE = Path(__file__).resolve().parents[1] / "domains" / "dna" / "checkpoints" / "oracle_a.pt"


# ------------------------------------------------------------------ helpers
def zdt1(x: torch.Tensor) -> torch.Tensor:
    f1 = x[:, 0]
    g = 1 + 9 * x[:, 1:].mean(dim=1)
    return torch.stack([f1, g * (1 - torch.sqrt(f1 / g))], dim=1)


def beam(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """A constrained two-objective problem with a maximized objective (some designs infeasible)."""
    return {"mass": x[:, 0] + 0.5 * x[:, 1], "stiffness": x[:, 0] * x[:, 1] + x[:, 2], "load": x[:, 0] + x[:, 2]}


def decode(value):
    """A plotly array: a list, or {"dtype", "bdata"(, "shape")} as plotly.py encodes numpy arrays."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return arr.reshape([int(s) for s in str(value["shape"]).split(",")]) if "shape" in value else arr
    return np.asarray(value)


def figures(page: str) -> list[tuple[str, str, dict]]:
    """(kind, domain, figure) of every figure block of a report."""
    blocks = re.findall(r'<script type="application/json" class="wb-figure" data-target="[^"]+" data-kind="([^"]+)" '
                        r'data-domain="([^"]+)">(.*?)</script>', page, re.S)
    return [(kind, domain, json.loads(body)) for kind, domain, body in blocks]


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A run campaign over three domains: 2 objectives (4 studies), 3 objectives, constrained with a maximum."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("small")
    zdt = wb.Domain.from_function(wb.MixedSpace.box(10), zdt1, objectives=["f1", "f2"], name="zdt1")
    mixed = wb.Domain.from_function(wb.MixedSpace.box(3), beam, objectives=["mass", ("stiffness", "maximize")],
                                    constraints=[wb.Constraint("load", 1.2, "<=")], name="beam")
    campaign = wb.Campaign("small", storage=f"sqlite:///{folder / 'small.db'}", device="cpu")
    campaign.grid(zdt, {"nsga2": NSGA2(pop_size=20), "random": RandomSearch(batch_size=20)}, seeds=[0, 1], budget=100)
    campaign.add(DTLZ2(n_obj=3), RandomSearch(batch_size=50), seed=0, budget=100, label="random")
    campaign.add(mixed, RandomSearch(batch_size=50), seed=0, budget=100, label="random")
    single = wb.Domain.from_function(wb.MixedSpace.box(2), lambda x: (x - 0.3).pow(2).sum(dim=1, keepdim=True),
                                     objectives=["distance"], name="bowl")
    campaign.grid(single, {"nsga2": NSGA2(pop_size=20)}, seeds=[0, 1], budget=60)
    assert (campaign.run(progress=False)["status"] == "finished").all()
    return campaign, folder


# -------------------------------------------------------------------- tests
def test_page_is_self_contained_with_the_tables_and_every_kind_of_figure(small):
    campaign, folder = small
    path = campaign.report(folder / "out" / "small.html", format="html")["html"]
    page = path.read_text()
    # one file: plotly.js inline, nothing fetched (no src/href but inline data)
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "<script></script>", page, flags=re.S)
    assert "<script src" not in markup and "<link" not in markup
    assert not re.search(r'(src|href)="(?!data:|#)', markup)
    assert len(page) > 4_000_000 and "Plotly" in page
    # the compare table is the campaign's own numbers
    compare = campaign.compare()
    for row in compare.itertuples():
        assert f"{row.hv_mean:.5g} ± {row.hv_std:.3g}" in page or (row.seeds == 1 and f"{row.hv_mean:.5g}" in page)
    for name in campaign.entries:
        assert f">{name}<" in page  # the studies table
    kinds = {}
    for kind, domain, fig in figures(page):
        kinds.setdefault(domain, set()).add(kind)
        assert fig["data"] and "template" not in fig["layout"]
    assert kinds == {"zdt1": {"hypervolume", "front-2d", "parallel"},
                     "dtlz2": {"hypervolume", "front-3d", "pairwise", "parallel"},
                     "beam": {"hypervolume", "front-2d", "parallel"}, "bowl": {"hypervolume", "progress"}}
    # the constrained domain shows its infeasible designs apart, and its front in the user's directions
    (fig,) = [f for k, d, f in figures(page) if d == "beam" and k == "front-2d"]
    names = [t["name"] for t in fig["data"]]
    assert "random seed 0 (infeasible)" in names and "random seed 0" in names
    stored = campaign.results("small/beam/random/seed0")
    front = stored.pareto_front()
    (shown,) = [t for t in fig["data"] if t["name"] == "random seed 0"]
    assert sorted(decode(shown["customdata"]).tolist()) == sorted(front.index.tolist())
    assert np.allclose(np.sort(decode(shown["y"])), np.sort(front["stiffness"].to_numpy()))
    # no pictures for domains without a render(), said once per domain
    assert "draws no pictures" in page and "<img" not in page


def test_traces_are_the_studies_own(small):
    campaign, _ = small
    view = collect(campaign, pictures=False)
    refs = campaign.reference_points()
    for domain in view.domains:
        for study in domain.studies:
            mine = hypervolume_trace(study, refs[domain.name])
            theirs = study.results.hypervolume_trace(refs[domain.name])
            assert mine["evaluations"].tolist() == theirs["evaluations"].tolist()
            assert np.allclose(mine["hypervolume"], theirs["hypervolume"])
            assert study.hypervolume == pytest.approx(study.results.hypervolume(refs[domain.name]))
            assert (study.front == study.results.pareto_mask()).all()
    assert view.traces.groupby(["domain", "label", "seed"]).ngroups == len(campaign.entries)


def two_lines(x: torch.Tensor) -> torch.Tensor:
    """f1 = x0; f2 = 1 - x0 on the 2% of designs with x1 < 0.02 (a front of ~2,000 points), above it elsewhere;
    NaN (a failed evaluation) where x2 > 0.999."""
    f2 = 1 - x[:, 0] + torch.where(x[:, 1] < 0.02, torch.zeros_like(x[:, 1]), x[:, 1])
    f2 = torch.where(x[:, 2] > 0.999, torch.full_like(f2, float("nan")), f2)
    return torch.stack([x[:, 0], f2], dim=1)


def test_100k_rows_every_front_point_and_a_bounded_file(tmp_path):
    from plotly.offline import get_plotlyjs

    domain = wb.Domain.from_function(wb.MixedSpace.box(3), two_lines, objectives=["f1", "f2"], name="lines")
    campaign = wb.Campaign("big", storage=f"sqlite:///{tmp_path / 'big.db'}", device="cpu")
    campaign.add(domain, RandomSearch(batch_size=25_000), seed=0, budget=100_000, label="random")
    campaign.run(progress=False)
    started = time.perf_counter()
    path = campaign.report(tmp_path / "big.html", format="html")["html"]
    seconds = time.perf_counter() - started
    page = path.read_text()
    # bounded: plotly.js plus well under a megabyte of data for 100,000 rows
    assert len(page) - len(get_plotlyjs()) < 1_000_000, len(page)
    assert seconds < 60
    stored = campaign.results("big/lines/random/seed0")
    f = stored.minimized()
    ok = np.isfinite(f).all(axis=1)
    expected = np.flatnonzero(ok)[moocore.is_nondominated(f[ok], keep_weakly=True)]
    assert len(expected) > 1500  # the front is large: thinning it would show
    (fig,) = [f for k, _, f in figures(page) if k == "front-2d"]
    traces = {t["name"]: t for t in fig["data"]}
    front = traces["random seed 0"]
    assert decode(front["customdata"]).tolist() == expected.tolist()  # every non-dominated point, in order
    assert np.array_equal(decode(front["x"]), f[expected, 0]) and np.array_equal(decode(front["y"]), f[expected, 1])
    dominated = decode(traces["random seed 0 (dominated)"]["customdata"])
    assert 1000 < len(dominated) <= POINTS_PER_FIGURE
    assert not set(dominated.tolist()) & set(expected.tolist())
    n_failed = int((~ok).sum())
    assert n_failed > 50 and f"{n_failed:,} failed" in fig["layout"]["annotations"][0]["text"]
    (par,) = [f for k, _, f in figures(page) if k == "parallel"]
    assert len(decode(par["data"][0]["dimensions"][1]["values"])) == len(expected)


def test_report_only_reads_the_storage(small, tmp_path):
    campaign, folder = small
    db = folder / "small.db"
    before = sha(db), db.stat().st_mtime_ns
    stored = {n: len(campaign.results(n)) for n in campaign.entries}
    assert main(["report", f"sqlite:///{db}", "--out", str(tmp_path / "r.html")]) == 0
    campaign.report(tmp_path / "r2.html", format="html")
    assert (sha(db), db.stat().st_mtime_ns) == before
    assert {n: len(campaign.results(n)) for n in campaign.entries} == stored
    # never written over a database (or anything that is not an HTML page)
    with pytest.raises(FileExistsError, match="not an HTML report"):
        write_html(campaign, db)
    with pytest.raises(SystemExit, match="not an HTML report"):
        main(["report", str(db), "--out", str(db)])
    assert sha(db) == before[0]


def test_cli_reports_each_campaign_and_explains_bad_input(small, tmp_path, capsys):
    campaign, folder = small
    url = f"sqlite:///{folder / 'small.db'}"
    assert main(["report", url, "--out", str(tmp_path / "a.html"), "--ref", "1.1,7", "--campaign", "small",
                 "--no-pictures"]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "a.html").exists()
    # a storage of two campaigns: one page each, named after them
    two = tmp_path / "two.db"
    for name in ("first", "second"):
        c = wb.Campaign(name, storage=f"sqlite:///{two}", device="cpu")
        c.add(DTLZ2(n_obj=3), RandomSearch(batch_size=20), seed=0, budget=20, label="random")
        c.run(progress=False)
    assert main(["report", str(two), "--out", str(tmp_path / "two.html")]) == 0
    assert (tmp_path / "two-first.html").exists() and (tmp_path / "two-second.html").exists()
    assert [c.name for c in stored_campaigns(str(two))] == ["first", "second"]
    # bad input: a clear message, exit code 2
    capsys.readouterr()
    assert main(["report", str(tmp_path / "missing.db"), "--out", str(tmp_path / "x.html")]) == 2
    assert "no storage at" in capsys.readouterr().err
    assert main(["report", url, "--out", str(tmp_path / "x.html"), "--campaign", "nope"]) == 2
    assert "no campaign 'nope'; it holds: small" in capsys.readouterr().err
    plain = tmp_path / "plain.db"
    study = wb.Study(DTLZ2(n_obj=3), RandomSearch(batch_size=10), storage=f"sqlite:///{plain}", device="cpu")
    study.run(10, progress=False)
    assert main(["report", str(plain), "--out", str(tmp_path / "x.html")]) == 2
    assert "holds 1 studies but no campaign" in capsys.readouterr().err
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert main(["report", str(empty), "--out", str(tmp_path / "x.html")]) == 2
    assert "builds no campaign" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no such campaign file"):
        main(["report", str(tmp_path / "nofile.py"), "--out", str(tmp_path / "x.html")])
    assert not (tmp_path / "x.html").exists()


CAMPAIGN_FILE = """
import workbench as wb
from domains.protein import ProteinDesign
from optimizers import RandomSearch

campaign = wb.Campaign("pictures", storage="sqlite:///{db}", device="cpu")
campaign.grid(ProteinDesign(objectives=("instability", "gravy")), {{"random": RandomSearch(batch_size=20)}},
              seeds=[0, 1], budget=40)

if __name__ == "__main__":
    raise SystemExit("the report must not run the campaign's main block")
"""


def test_pictures_of_the_best_designs_from_the_campaign_file(tmp_path):
    from PIL import Image

    from workbench.report import campaigns_from_file

    source = tmp_path / "pictures.py"
    source.write_text(textwrap.dedent(CAMPAIGN_FILE.format(db=tmp_path / "pictures.db")))
    (campaign,) = campaigns_from_file(source)
    campaign.run(progress=False)
    assert main(["report", str(source), "--out", str(tmp_path / "pictures.html")]) == 0
    page = (tmp_path / "pictures.html").read_text()
    images = re.findall(r'<img alt="best designs of ([^"]+)" width="(\d+)" height="(\d+)" '
                        r'src="data:image/png;base64,([^"]+)"', page)
    assert [name for name, *_ in images] == ["pictures/protein_design/random/seed0",
                                             "pictures/protein_design/random/seed1"]
    for _, width, height, data in images:
        image = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")).astype(int)
        assert image.shape[:2] == (int(height), int(width))
        coloured = (image.max(axis=2) - image.min(axis=2)) > 60  # logo letters are coloured
        assert coloured.mean() > 0.01
    # the same storage without the file: everything but the pictures, and why
    assert main(["report", str(tmp_path / "pictures.db"), "--out", str(tmp_path / "alone.html")]) == 0
    alone = (tmp_path / "alone.html").read_text()
    assert "<img" not in alone and "written from the storage alone" in alone


def test_one_objective_shows_values_by_evaluation_and_the_best(small):
    campaign, folder = small
    page = campaign.report(folder / "out" / "small.html", format="html")["html"].read_text()
    (fig,) = [f for k, d, f in figures(page) if d == "bowl" and k == "progress"]
    stored = campaign.results("small/bowl/nsga2/seed0")
    value = stored.frame()["distance"].to_numpy()
    traces = {t["name"]: t for t in fig["data"]}
    best = traces["nsga2 seed 0 (best)"]
    assert decode(best["customdata"] if "customdata" in best else best["x"]).tolist() == \
        np.flatnonzero(value == value.min()).tolist()
    line = traces["nsga2 seed 0"]  # best so far, a step line from the first design to the last
    assert decode(line["x"])[0] == 0 and decode(line["x"])[-1] == len(value) - 1
    assert decode(line["y"])[-1] == pytest.approx(value.min())
    assert np.all(np.diff(decode(line["y"])) <= 0)


@pytest.mark.skipif(not (DNA_ORACLE.exists()), reason=f"DNA oracle checkpoint missing: {DNA_ORACLE}")
def test_dna_logo_picture(tmp_path):
    from domains.dna import DNAEnhancer

    dna = DNAEnhancer(objectives=("gc",), prior="tiny")
    x = dna.encode(["ACGT" * 50, "ACGA" * 50])
    png = dna.picture(x, tmp_path / "dna.png")
    assert png.startswith(b"\x89PNG")
    heights = letter_heights(dna.decode(x), "ACGT")
    assert np.allclose(heights[0::4].sum(axis=1), 2.0)  # positions where both agree: 2 bits
    assert np.allclose(heights[3::4].sum(axis=1), 1.0)  # T or A: one bit, half each
    assert np.allclose(heights[3::4][:, [0, 3]], 0.5)


def test_picture_hook_and_logos(tmp_path):
    from domains.protein import ALPHABET, ProteinDesign

    protein = ProteinDesign(objectives=("instability",))
    x = protein.encode([protein.native] * 3)
    png = protein.picture(x, tmp_path / "logo.png")
    assert png.startswith(b"\x89PNG") and (tmp_path / "logo.png").read_bytes() == png
    # identical sequences: full height (log2 20 bits) for the native letter at every position
    heights = letter_heights(protein.decode(x), ALPHABET)
    assert heights.shape == (protein.backbone.length, 20)
    assert np.allclose(heights.sum(axis=1), np.log2(20))
    assert np.allclose(heights.max(axis=1), np.log2(20))
    # all four letters equally often: no information, no letters
    assert np.allclose(letter_heights(["ACGT", "CGTA", "GTAC", "TACG"], "ACGT"), 0.0)
    with pytest.raises(ValueError, match="not in the alphabet"):
        letter_heights(["ACGN"], "ACGT")
    plain = wb.Domain.from_function(wb.MixedSpace.box(2), zdt1, objectives=["f1", "f2"])
    with pytest.raises(NotImplementedError, match="has no render"):
        plain.picture(torch.rand(2, 2))


def test_thinning_keeps_the_outline_and_is_deterministic():
    rng = np.random.default_rng(0)
    points = np.vstack([rng.random((100_000, 2)), [[5.0, 5.0], [-3.0, 0.5]]])  # two far outliers
    kept = thin(points, 1000)
    assert len(kept) == 1000 and np.all(np.diff(kept) > 0)
    assert np.array_equal(kept, thin(points, 1000))
    assert {100_000, 100_001} <= set(kept.tolist())  # alone in their cells: always kept
    assert np.array_equal(thin(points[:10], 1000), np.arange(10))


def boom(x: torch.Tensor) -> torch.Tensor:
    raise RuntimeError("solver diverged")


def test_a_domain_whose_every_evaluation_failed_leaves_the_rest_whole(tmp_path):
    campaign = wb.Campaign("edge", storage=f"sqlite:///{tmp_path / 'edge.db'}", device="cpu")
    good = campaign.add(DTLZ2(n_obj=3), RandomSearch(batch_size=20), seed=0, budget=40, label="random")
    later = campaign.add(DTLZ2(n_obj=3), RandomSearch(batch_size=20), seed=1, budget=40, label="random")
    broken = wb.Domain.from_function(wb.MixedSpace.box(2), boom, objectives=["u", "v"], name="broken")
    campaign.add(broken, RandomSearch(batch_size=10), seed=0, budget=20, label="random")
    campaign.study(good).run(40, progress=False)
    campaign.study(later)._open()  # created, nothing stored yet
    campaign.study("edge/broken/random/seed0").run(20, progress=False)
    view = collect(campaign)
    assert list(view.compare["domain"]) == ["dtlz2"]  # the broken domain costs the other nothing
    assert "no hypervolume for broken" in view.note
    rows = view.studies.set_index("study")
    assert rows.loc[good, "hypervolume"] == pytest.approx(campaign.results(good).hypervolume([1.1, 1.1, 1.1]))
    assert rows.loc["edge/broken/random/seed0", "most common error"].startswith("RuntimeError: solver diverged")
    assert rows.loc[later, "evaluations"] == 0 and rows.loc[later, "state"] == "created"
    page = campaign.report(tmp_path / "edge.html", format="html")["html"].read_text()
    assert "Nothing to plot: none of the 20 evaluations" in page
    assert {d for _, d, _ in figures(page)} == {"dtlz2"}


def test_a_campaign_not_run_yet_is_a_clear_error(tmp_path):
    campaign = wb.Campaign("later", storage=f"sqlite:///{tmp_path / 'later.db'}", device="cpu")
    campaign.add(DTLZ2(n_obj=3), RandomSearch(batch_size=10), budget=10)
    with pytest.raises(StorageError, match="does not exist"):
        campaign.report(tmp_path / "later.html", format="html")
    with pytest.raises(ValueError, match="format must be 'png' or 'html'"):
        campaign.report(tmp_path, format="pdf")
