"""DNA enhancer domain: shipped data and splits, oracle checkpoints and accuracy, scoring, motifs, metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import workbench as wb
from domains.dna import (CELL_TYPES, HALVES, DNAEnhancer, MotifSet, accessible_fraction, diversity, encode,
                         kmer_correlation, kmer_counts, kmer_frequencies, load_dhs, load_oracle, load_tokens,
                         motif_correlation, one_hot, reverse_complement, top_real_sequences)
from domains.dna.metrics import heldout_logits
from domains.dna.oracle import CHECKPOINT_DIR, Oracle
from domains.dna.train_oracle import auroc, train
from optimizers import RandomSearch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dom() -> DNAEnhancer:
    return DNAEnhancer(objectives=("hepg2", ("k562", "minimize"), "hepg2_specificity", "motif:HNF4A", "gc"))


def _random_tokens(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 4, (n, 200), generator=torch.Generator().manual_seed(seed))


def test_data_splits_and_halves():
    frame = load_dhs()
    assert len(frame) == 47872 and list(frame.columns) == ["dhs_id", "chr", "start", "sequence", *CELL_TYPES, "split"]
    assert (frame[list(CELL_TYPES)].sum(axis=1) == 1).all()
    assert frame["split"].value_counts().to_dict() == {"train": 39254, "test": 4565, "validation": 4053}
    assert set(load_dhs("test")["chr"]) == {"chr1"} and set(load_dhs("validation")["chr"]) == {"chr2"}
    a, b = set(HALVES["a"]), set(HALVES["b"])
    assert not a & b and a | b == set(load_dhs("train")["chr"]) and not (a | b) & {"chr1", "chr2"}
    rows_a, rows_b = load_dhs("train", "a"), load_dhs("train", "b")
    assert (len(rows_a), len(rows_b)) == (19475, 19779)
    for rows in (rows_a, rows_b):  # balanced labels: each cell type 24-26 % of either half
        share = rows[list(CELL_TYPES)].mean()
        assert share.between(0.24, 0.26).all(), share
    with pytest.raises(ValueError, match="split"):
        load_dhs("val")


def test_encode_one_hot_and_errors(dom):
    seq = "ACGT" * 50
    tokens = encode([seq, seq.lower()])
    assert tokens.dtype == torch.int64 and torch.equal(tokens[0], tokens[1]) and tokens[0, :4].tolist() == [0, 1, 2, 3]
    assert dom.decode(tokens) == [seq, seq] and torch.equal(dom.encode(seq), tokens[:1])
    assert torch.equal(dom.space.encode([seq]), tokens[:1])  # same token order as SequenceSpace("ACGT")
    oh = one_hot(tokens)
    assert oh.shape == (2, 200, 4) and torch.equal(oh.sum(2), torch.ones(2, 200))
    with pytest.raises(ValueError, match=r"sequence 1 has invalid character 'N' at position 7"):
        dom.encode([seq, seq[:7] + "N" + seq[8:]])
    with pytest.raises(ValueError, match="sequence 0 has length 199; expected 200"):
        dom.encode(seq[:199])
    with pytest.raises(ValueError, match="tokens must lie in 0..3"):
        one_hot(torch.full((1, 200), 4))
    # reverse complement of the one-hot is the one-hot of the reverse complement
    rc = "".join({"A": "T", "C": "G", "G": "C", "T": "A"}[c] for c in reversed(load_dhs("test")["sequence"].iloc[0]))
    real = encode(load_dhs("test")["sequence"].iloc[:1].tolist())
    assert torch.equal(reverse_complement(one_hot(real)), one_hot(encode(rc)))


@pytest.mark.parametrize("half", ["a", "b"])
def test_checkpoints_load_with_weights_only(half):
    path = CHECKPOINT_DIR / f"oracle_{half}.pt"
    assert path.stat().st_size < 2_000_000
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["config"]["half"] == half and ckpt["config"]["chromosomes"] == list(HALVES[half])
    metrics = json.loads((CHECKPOINT_DIR / f"oracle_{half}.json").read_text())
    assert metrics["test"]["HepG2"] == pytest.approx(ckpt["config"]["metrics"]["test"]["HepG2"])
    model = Oracle.from_checkpoint(ckpt)
    assert not any(p.requires_grad for p in model.parameters()) and not model.training


def test_oracles_score_real_test_sequences():
    """Held-out AUROC on chr1 (never used in training or early stopping) is far above chance for both."""
    scored = heldout_logits("test")
    y = load_dhs("test")[list(CELL_TYPES)].to_numpy()
    heldout = auroc(y, scored[[f"{c}_logit" for c in CELL_TYPES]].to_numpy())
    assert (heldout > 0.85).all(), heldout
    pick = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:1000]
    tokens, labels = load_tokens("test")
    with torch.no_grad():
        reward = auroc(labels[pick].numpy(), load_oracle("reward")(one_hot(tokens[pick])).numpy())
    assert (reward > 0.85).all(), reward
    # the shipped metrics are these numbers
    recorded = json.loads((CHECKPOINT_DIR / "oracle_b.json").read_text())["test"]
    assert [recorded[c] for c in CELL_TYPES] == pytest.approx(heldout.tolist(), abs=1e-4)


def test_oracle_is_strand_symmetric():
    model = load_oracle("heldout")
    x = one_hot(_random_tokens(6, 1))
    with torch.no_grad():
        assert torch.allclose(model(x), model(reverse_complement(x)), atol=1e-5)


def test_evaluate_matches_evaluate_soft_and_has_gradients(dom):
    tokens = encode(load_dhs("test")["sequence"].iloc[:8].tolist())
    hard = dom.evaluate(tokens)
    assert set(hard) == {"hepg2", "k562", "hepg2_specificity", "motif:HNF4A", "gc"}
    assert all(v.shape == (8,) and v.dtype == torch.float64 for v in hard.values())
    soft = dom.evaluate_soft(one_hot(tokens))
    for name in hard:
        assert torch.allclose(hard[name], soft[name].double(), atol=1e-4), name
    assert hard["gc"].tolist() == pytest.approx([s.count("G") / 200 + s.count("C") / 200 for s in dom.decode(tokens)])
    logits = dom.logits(tokens)
    others = logits[:, :3].amax(1)  # GM12878, hESC, K562 (HepG2 is the last column)
    assert torch.allclose(hard["hepg2_specificity"].float(), logits[:, 3] - others, atol=1e-5)
    # relaxed sequences: gradients reach the probabilities for every objective
    probs = torch.softmax(torch.randn(4, 200, 4, generator=torch.Generator().manual_seed(2)), dim=2).requires_grad_()
    out = dom.evaluate_soft(probs)
    for name in ("hepg2", "motif:HNF4A", "gc"):
        (grad,) = torch.autograd.grad(out[name].sum(), probs)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_objectives_directions_and_errors():
    d = DNAEnhancer()
    assert [(o.name, o.direction) for o in d.objectives] == [("hepg2", "maximize")]
    with pytest.raises(ValueError, match="unknown objectives"):
        DNAEnhancer(objectives=("liver",))
    with pytest.raises(KeyError, match="no JASPAR motif named 'NOTAFACTOR'"):
        DNAEnhancer(objectives=("motif:NOTAFACTOR",))
    with pytest.raises(ValueError, match="oracle must be one of"):
        DNAEnhancer(oracle="b2")
    settings = DNAEnhancer(oracle="heldout").describe()["settings"]
    assert (settings["oracle"], settings["oracle_half"]) == ("heldout", "b")


def test_study_with_random_search(tmp_path):
    dom = DNAEnhancer(objectives=("hepg2", "gc"))
    study = wb.Study(dom, RandomSearch(batch_size=16), storage=f"sqlite:///{tmp_path / 'dna.db'}", seed=0, device="cpu")
    study.run(32, progress=False)
    df = study.results()
    assert len(df) == 32 and df["sequence"].str.len().eq(200).all() and df["hepg2"].notna().all()
    assert df["gc"].between(0.3, 0.7).all()


def test_planted_motif_scores_its_maximum():
    motifs = MotifSet.load(["HNF4A", "FOXA2", "CTCF"])
    assert len(motifs) >= 3 and motifs.release.startswith("JASPAR")
    consensus = motifs.consensus()
    x = _random_tokens(3, 5)
    j = motifs.find("CTCF")[0]
    site = encode(consensus[j], len(consensus[j]))[0]
    x[1, 60:60 + len(site)] = site                                  # forward strand
    x[2, 150:150 + len(site)] = (3 - site).flip(0)                  # reverse strand (A<->T, C<->G, reversed)
    rel = motifs.max_scores(one_hot(x))
    assert rel.shape == (3, len(motifs)) and (rel <= 1 + 1e-6).all() and (rel >= 0).all()
    assert rel[1, j] == pytest.approx(1.0, abs=1e-5) and rel[2, j] == pytest.approx(1.0, abs=1e-5)
    assert rel[0, j] < 0.9
    pos = motifs.position_scores(one_hot(x))[:, j]
    assert int(pos[1].argmax()) == 60 and int(pos[2].argmax()) == 150
    hits = motifs.hit_counts(one_hot(x))
    assert hits[1, j] >= 1 and hits[2, j] >= 1 and hits.dtype == torch.int64
    # the full export: every JASPAR 2026 CORE vertebrate matrix scores random sequences in [0, 1]
    full = MotifSet.load()
    assert len(full) > 800 and full.find("MA0114")
    scores = full.max_scores(one_hot(_random_tokens(2, 6)))
    assert scores.shape == (2, len(full)) and scores.min() >= 0 and scores.max() <= 1 + 1e-6


def test_metrics_on_known_inputs():
    x = _random_tokens(64, 3)
    assert kmer_correlation(x, x) == pytest.approx(1.0)
    assert kmer_correlation(x, x[:32]) > 0.5  # two halves of one random set share their 3-mer spectrum
    poly_a = torch.zeros(2, 200, dtype=torch.int64)
    counts = kmer_counts(poly_a)
    assert counts[:, 0].tolist() == [198, 198] and counts[:, 1:].sum() == 0
    assert kmer_frequencies(encode("ACGT" * 50), k=1).tolist() == [0.25] * 4
    assert diversity(x[:1].repeat(5, 1)) == 0.0
    assert diversity(torch.stack([poly_a[0], torch.full((200,), 3)])) == 1.0
    brute = (x[:, None] != x[None]).double().mean(2).sum() / (64 * 63)
    assert diversity(x) == pytest.approx(float(brute), abs=1e-12)
    motifs = MotifSet.load(["HNF4A", "FOXA2", "CEBPB", "GATA1", "SPI1", "CTCF", "POU5F1"])
    assert motif_correlation(x, x, motifs) == pytest.approx(1.0)
    logits = torch.tensor([[0.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, -1.0], [0.0, 0.0, 0.0, 0.5], [5.0, 0.0, 0.0, -3.0]])
    assert accessible_fraction(logits, "HepG2") == 0.5 and accessible_fraction(logits, "gm12878") == 0.25


def test_top_real_sequences_are_hepg2_sites():
    top = top_real_sequences("HepG2", n=100, pool="test")
    assert len(top) == 100 and top["HepG2_logit"].is_monotonic_decreasing
    assert top["HepG2"].mean() > 0.8  # mostly labelled HepG2 sites (21 % of chr1 are)
    assert set(top["chr"]) == {"chr1"}


def test_training_is_deterministic_for_a_seed():
    tokens, labels = load_tokens("validation")
    pick = torch.randperm(len(tokens), generator=torch.Generator().manual_seed(0))[:256]
    tokens, labels = tokens[pick], labels[pick]
    small = (tokens[:128], labels[:128], tokens[128:], labels[128:])
    a, b = (train("a", 3, epochs=1, log=False, data=small) for _ in range(2))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


def test_study_merges_runs_and_reports_the_worst_seed(tmp_path):
    """``--merge`` joins the per-study rows of separate runs (the later run's version of a seed wins) and writes
    spread.md with mean, min and max over seeds; the rows are the H200 runs of docs/dna.md."""
    first, second = tmp_path / "first", tmp_path / "second"
    sources = ("dna_enhancers_h200_studies.csv", "dna_enhancers_h200_budget_studies.csv")
    for folder, source in zip((first, second), sources):
        folder.mkdir()
        (folder / "studies.csv").write_bytes((ROOT / "docs" / "figures" / source).read_bytes())
    proc = subprocess.run([sys.executable, "studies/dna_enhancers.py", "--scale", "gpu", "--merge", str(first),
                           str(second), "--out", str(tmp_path / "merged")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = pd.read_csv(tmp_path / "merged" / "gpu" / "studies.csv")
    budget = rows[rows.method == "drakes_budget"].set_index("seed")
    assert sorted(budget.index) == [0, 1, 2] and budget.loc[0, "kmer_corr"] == pytest.approx(0.862, abs=1e-3)
    spread = (tmp_path / "merged" / "gpu" / "spread.md").read_text()
    assert "| drakes_budget | 0, 1, 2 | 10.29 (8.85 to 11.29) |" in spread
    assert "0.875 (0.857 to 0.907)" in spread  # 3-mer Corr: mean, then the worst and the best seed
