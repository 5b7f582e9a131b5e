"""The HTML report in a real browser: Debian's chromium, headless, with the network cut.

Each report must load with no console error, fetch nothing, draw every plot (a screenshot of each holds
coloured data, not only axes) and show its pictures. Needs ``chromium`` (``apt-get install -y chromium``,
which ``scripts/setup.sh`` runs as root); without it the tests fail, unless ``WORKBENCH_TEST_BROWSER=skip`` is
set (as the PostgreSQL tests and ``WORKBENCH_TEST_POSTGRES``).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest

import workbench as wb
from optimizers import RandomSearch
from workbench.report import campaigns_from_file
from workbench.report.browser import check_page, find_chromium, pixels

DEMO = Path(__file__).resolve().parents[1] / "studies" / "demo.py"
pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(os.environ.get("WORKBENCH_TEST_BROWSER") == "skip",
                                 reason="WORKBENCH_TEST_BROWSER=skip")]


@pytest.fixture(autouse=True)
def chromium_installed() -> None:
    if find_chromium() is None:
        pytest.fail("the report's browser tests need chromium: `apt-get install -y chromium` (scripts/setup.sh "
                    "does it when run as root), or set WORKBENCH_TEST_BROWSER=skip to skip them")


def assert_page_is_whole(check, kinds: set[str]) -> None:
    """No console error, nothing fetched, every plot drawn with data, every image shown."""
    assert check.console_errors == []
    assert check.external_requests == [] and check.failed_requests == []
    assert not [w for w in check.console_warnings if "WebGL" in w]  # no context lost
    assert {p.kind for p in check.plots} == kinds
    assert [p.target for p in check.plots if not p.rendered] == []
    assert [(p.target, p.data_ink) for p in check.plots if p.blank] == []
    assert check.broken_images == 0


def small_run(campaign: wb.Campaign, folder: Path, batches: int | None = 2) -> wb.Campaign:
    """The same campaign into ``folder``, each study cut to ``batches`` batches (the test checks the page, not
    the optimization; None: as the file sets it), then run."""
    campaign.storage_url = f"sqlite:///{folder / (campaign.name + '.db')}"
    for entry in campaign.entries.values():
        if batches is not None:
            entry.budget = min(entry.budget, batches * (entry.batch_size or entry.optimizer.default_batch_size))
    assert (campaign.run(progress=False)["status"] == "finished").all()
    return campaign


def test_demo_campaign_report_opens_offline_and_draws_every_plot(tmp_path):
    campaigns = campaigns_from_file(DEMO)
    assert campaigns, f"{DEMO} builds no campaign"
    for campaign in campaigns:
        small_run(campaign, tmp_path, batches=None)  # the demo as users run it (about 15 s)
        path = campaign.report(tmp_path / f"{campaign.name}.html", format="html")["html"]
        check = check_page(path)
        kinds = {"hypervolume", "parallel"}
        for entry in campaign.entries.values():
            k = len(entry.domain.objectives)
            kinds |= {"progress"} if k == 1 else {"front-2d"} if k == 2 else {"front-3d", "pairwise"}
        if all(len(e.domain.objectives) == 1 for e in campaign.entries.values()):
            kinds.discard("parallel")
        assert_page_is_whole(check, kinds)
        assert check.load_seconds < 60


PROTEIN_FILE = """
import workbench as wb
from domains.protein import ProteinDesign
from optimizers import RandomSearch

campaign = wb.Campaign("protein", storage="sqlite:///{db}", device="cpu")
campaign.grid(ProteinDesign(objectives=("instability",)), {{"random": RandomSearch(batch_size=20)}}, seeds=[0, 1],
              budget=40)
"""


def test_pictures_show_in_the_browser(tmp_path):
    source = tmp_path / "protein.py"
    source.write_text(textwrap.dedent(PROTEIN_FILE.format(db=tmp_path / "protein.db")))
    (campaign,) = campaigns_from_file(source)
    campaign.run(progress=False)
    path = campaign.report(tmp_path / "protein.html", format="html")["html"]
    check = check_page(path, elements=".card img")
    assert_page_is_whole(check, {"hypervolume", "progress"})
    assert check.images == 2 and len(check.elements) == 2
    for png in check.elements:  # as the browser shows them: the coloured letters of a sequence logo
        colours, ink, coloured = pixels(png)
        assert colours > 50 and coloured > 0.01


def test_a_plot_without_its_data_is_caught(tmp_path):
    """The check itself: the same page with one figure's data emptied shows that plot blank, and only it."""
    import json
    import re

    domain = wb.Domain.from_function(wb.MixedSpace.box(2), lambda x: x.pow(2).sum(dim=1, keepdim=True),
                                     objectives=["distance"], name="bowl")
    campaign = wb.Campaign("bowl", storage=f"sqlite:///{tmp_path / 'bowl.db'}", device="cpu")
    campaign.add(domain, RandomSearch(batch_size=20), seed=0, budget=60, label="random")
    campaign.run(progress=False)
    page = campaign.report(tmp_path / "bowl.html", format="html")["html"].read_text()

    def empty(match: re.Match) -> str:
        fig = json.loads(match.group(2))
        for trace in fig["data"]:
            trace["x"], trace["y"] = [], []
        return match.group(1) + json.dumps(fig) + "</script>"

    broken = re.sub(r'(<script type="application/json" class="wb-figure" data-target="[^"]+" '
                    r'data-kind="progress"[^>]*>)(.*?)</script>', empty, page, flags=re.S)
    assert broken != page
    (tmp_path / "broken.html").write_text(broken)
    check = check_page(tmp_path / "broken.html")
    assert check.console_errors == []
    assert {p.kind: p.blank for p in check.plots} == {"hypervolume": False, "progress": True}


@pytest.mark.slow
def test_100k_row_report_in_the_browser(tmp_path):
    from test_report import two_lines

    domain = wb.Domain.from_function(wb.MixedSpace.box(3), two_lines, objectives=["f1", "f2"], name="lines")
    campaign = wb.Campaign("big", storage=f"sqlite:///{tmp_path / 'big.db'}", device="cpu")
    campaign.add(domain, RandomSearch(batch_size=25_000), seed=0, budget=100_000, label="random")
    campaign.run(progress=False)
    path = campaign.report(tmp_path / "big.html", format="html")["html"]
    check = check_page(path)
    assert_page_is_whole(check, {"hypervolume", "front-2d", "parallel"})
    assert check.load_seconds < 30
