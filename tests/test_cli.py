import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

import workbench as wb
from optimizers import NSGA2
from workbench.cli import main


@pytest.fixture
def stored(tmp_path, mixed_domain):
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    wb.Study(mixed_domain, NSGA2(pop_size=20), storage=db, name="mixed-a", seed=0, device="cpu").run(60, progress=False)
    wb.Study(mixed_domain, NSGA2(pop_size=20), storage=db, name="mixed-b", seed=1, device="cpu").run(40, progress=False)
    return db


def test_status_plot_export(stored, tmp_path, capsys):
    assert main(["status", stored]) == 0
    out = capsys.readouterr().out
    assert "mixed-a" in out and "mixed-b" in out and "nsga2" in out
    for kind in ("pareto", "parallel", "pairwise"):
        assert main(["plot", stored, "--study", "mixed-a", "--kind", kind, "--out", str(tmp_path / f"{kind}.png")]) == 0
        assert (tmp_path / f"{kind}.png").stat().st_size > 1000
    assert main(["plot", stored, "--study", "mixed-a", "--study", "mixed-b", "--kind", "hypervolume",
                 "--ref", "20,-5", "--out", str(tmp_path / "hv.png")]) == 0
    assert main(["export", stored, "--out", str(tmp_path / "all.csv")]) == 0
    table = pd.read_csv(tmp_path / "all.csv")
    assert len(table) == 100 and set(table["study"]) == {"mixed-a", "mixed-b"}
    assert {"material", "mass", "stiffness", "budget", "feasible", "status"} <= set(table.columns)


def test_clear_errors(stored, tmp_path, capsys):
    assert main(["status", str(tmp_path / "nope.db")]) == 2
    assert "no storage at" in capsys.readouterr().err
    assert main(["plot", stored, "--study", "unknown", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "no study named 'unknown'" in err and "mixed-a" in err
    (tmp_path / "junk.db").write_text("not a database at all, just text" * 100)
    assert main(["status", f"sqlite:///{tmp_path / 'junk.db'}"]) == 2
    assert "cannot open storage" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no such study file"):
        main(["run", str(tmp_path / "missing.py")])
