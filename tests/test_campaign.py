import subprocess
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

import workbench as wb
from optimizers import NSGA2, RandomSearch
from workbench.storage import open_storage


def test_grid_compare_traces_and_report(tmp_path, zdt1_domain):
    camp = wb.Campaign("c", storage=f"sqlite:///{tmp_path / 'c.db'}", device="cpu")
    names = camp.grid(zdt1_domain, {"nsga2": NSGA2(pop_size=20), "random": RandomSearch(batch_size=20)},
                      seeds=[0, 1], budget=200)
    assert len(names) == 4 and names[0] == "c/zdt1-inline/nsga2/seed0"
    table = camp.run(progress=False)
    assert (table["status"] == "finished").all()
    cmp = camp.compare(ref=[1.1, 7.0])
    assert list(cmp["optimizer"]) == ["nsga2", "random"]
    assert (cmp["seeds"] == 2).all() and (cmp["evaluations"] == 200).all()
    hv = {r.optimizer: r.hv_mean for r in cmp.itertuples()}
    assert hv["nsga2"] > hv["random"]
    per_seed = [camp.results(n).hypervolume([1.1, 7.0]) for n in names[:2]]
    assert hv["nsga2"] == pytest.approx(sum(per_seed) / 2)
    traces = camp.traces(ref=[1.1, 7.0])
    assert set(traces.columns) == {"domain", "label", "seed", "evaluations", "hypervolume"}
    last = traces.groupby(["label", "seed"])["hypervolume"].agg(["first", "last"])
    assert (last["last"] >= last["first"]).all()  # hypervolume of a growing set never drops
    files = camp.report(tmp_path / "report", ref=[1.1, 7.0])
    for path in files.values():
        assert path.stat().st_size > 0
    # running again resumes: nothing is evaluated twice
    camp.run(progress=False)
    assert sum(s["evaluations"] for s in open_storage(camp.storage_url).summary()) == 800


def test_inferred_reference_point(tmp_path, mixed_domain):
    camp = wb.Campaign("m", storage=f"sqlite:///{tmp_path / 'm.db'}", device="cpu")
    camp.add(mixed_domain, RandomSearch(batch_size=30), seed=0, budget=60)
    camp.run(progress=False)
    (ref,) = camp.reference_points().values()
    res = camp.results(next(iter(camp.entries)))
    frame = res.frame()[res.feasible_mask()]
    assert ref[0] > frame["mass"].max() and ref[1] < frame["stiffness"].min()


def test_a_failing_study_does_not_stop_the_campaign(tmp_path, zdt1_domain):
    def broken(x):
        raise RuntimeError("boom")

    camp = wb.Campaign("f", storage=f"sqlite:///{tmp_path / 'f.db'}", device="cpu")
    bad = wb.Domain.from_function(wb.MixedSpace.box(2), broken, objectives=["a"], name="broken")
    camp.add(bad, NSGA2(pop_size=4, eliminate_duplicates=False), budget=8)
    camp.add(zdt1_domain, RandomSearch(batch_size=10), budget=20)
    table = camp.run(progress=False)
    assert (table["status"] == "finished").all()  # a failing evaluation is a failed row, not a failed study
    res = camp.results(table.study[0]).frame()
    assert len(res) == 8 and (res["error"] == "RuntimeError: boom").all()


CAMPAIGN_FILE = textwrap.dedent('''
    import sys, time, torch
    import workbench as wb
    from optimizers import NSGA2

    def zdt1(x):
        time.sleep(0.01)
        f1 = x[:, 0]
        g = 1 + 9 * x[:, 1:].mean(1)
        return torch.stack([f1, g * (1 - torch.sqrt(f1 / g))], 1)

    dom = wb.Domain.from_function(wb.MixedSpace.box(6), zdt1, objectives=["f1", "f2"], name="z")
    campaign = wb.Campaign("par", storage="sqlite:///par.db", device="cpu")
    campaign.grid(dom, {"nsga2": NSGA2(pop_size=10)}, seeds=range(8), budget=300)

    if __name__ == "__main__":
        table = campaign.run(progress=False)
        assert (table.status == "finished").all(), table
''')


def test_eight_processes_write_one_database(tmp_path):
    path = tmp_path / "camp.py"
    db = tmp_path / "par.db"
    path.write_text(CAMPAIGN_FILE.replace('"sqlite:///par.db"', f'"sqlite:///{db}"'))
    subprocess.run([sys.executable, "-m", "workbench.cli", "run", str(path), "--workers", "8"], check=True,
                   capture_output=True, text=True)
    summary = pd.DataFrame(open_storage(f"sqlite:///{db}", create=False).summary())
    assert len(summary) == 8 and (summary["evaluations"] == 300).all() and (summary["failed"] == 0).all()
    workers = set()
    for name in summary["study"]:
        frame = wb.Study.load(f"sqlite:///{db}", name).frame()
        assert list(frame.index) == list(range(300))
        workers |= set(frame["worker"])
    assert len(workers) >= 2  # really written by several processes


def test_finished_yields_only_studies_that_hold_their_budget(tmp_path, zdt1_domain, capsys):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    assert list(wb.Campaign("f", storage=url, device="cpu").finished()) == []  # no database yet: nothing, no error
    camp = wb.Campaign("f", storage=url, device="cpu")
    camp.add(zdt1_domain, RandomSearch(batch_size=10), seed=0, budget=30, label="done")
    camp.add(zdt1_domain, RandomSearch(batch_size=10), seed=1, budget=30, label="short")
    camp.study(list(camp.entries)[0]).run(30, progress=False)
    camp.study(list(camp.entries)[1]).run(10, progress=False)
    finished = list(camp.finished())
    assert [entry.label for _, entry, _ in finished] == ["done"] and len(finished[0][2]) == 30
    assert "skipping unfinished study f/zdt1-inline/short/seed1 (10 of 30)" in capsys.readouterr().out
