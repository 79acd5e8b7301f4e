"""NARM in PyTorch, built from torch.nn modules as RecBole 1.2's NARM is specified, to check the
WebGPU implementation against an independent one on the same weights and data.

    python narm_torch.py gradients DIR     # one batch: loss and every gradient, f64 and f32
    python narm_torch.py gradients DIR --numpy-loss
                                           # one batch's loss from a float64 NumPy forward
    python narm_torch.py train DIR [--seconds S] [--dropout P Q]
                                           # RecBole's protocol from the same initial weights

DIR is what `deno run -A scripts/pytorch_crosscheck/export.ts --model narm --out DIR` wrote. The
sizes (items, embedding, hidden, layers) are read from the exported weights, whose names are the
torch module's own, so they load with `load_state_dict`. `gradients` exits with status 1 when the
float64 loss or a float64 gradient differs by more than the limits of `crosscheck_common.py`.

The model: Embedding(n_items, E, padding_idx=0) -> Dropout(P) -> nn.GRU(E, H, n_layers,
bias=False, batch_first=True) over the whole right-padded window; the global encoder is the GRU
output at length - 1 (h_t); the local encoder weights every position j by
alpha_j = v_t(mask_j * sigmoid(a_1(gru_j) + a_2(h_t))), mask_j = 1 for an item and 0 for PAD, with
no softmax, and sums alpha_j * gru_j; [c_local, h_t] -> Dropout(Q) -> b = Linear(2H, E, bias=False)
-> scores against the tied item embedding, F.cross_entropy. Fresh weights are initialised as
specified (xavier_normal_ on the embedding and every Linear weight, PyTorch's default on the GRU),
though both subcommands load the exported ones.
"""
import numpy as np

from crosscheck_common import Module, nn, run_cli, torch


class NARM(Module):
    """Embedding and dropout, a bias-free GRU, the global and attention-weighted local encoders,
    dropout and `b` on their concatenation, the tied embedding as output."""

    def __init__(self, num_items, embedding_size=64, hidden_size=128, num_layers=1,
                 dropout_probs=(0.25, 0.5)):
        super().__init__()
        self.item_embedding = nn.Embedding(num_items, embedding_size, padding_idx=0)
        self.emb_dropout = nn.Dropout(dropout_probs[0])
        self.gru = nn.GRU(embedding_size, hidden_size, num_layers, bias=False, batch_first=True)
        self.a_1 = nn.Linear(hidden_size, hidden_size, bias=False)
        self.a_2 = nn.Linear(hidden_size, hidden_size, bias=False)
        self.v_t = nn.Linear(hidden_size, 1, bias=False)
        self.ct_dropout = nn.Dropout(dropout_probs[1])
        self.b = nn.Linear(2 * hidden_size, embedding_size, bias=False)
        for weight in [self.item_embedding.weight, self.a_1.weight, self.a_2.weight,
                       self.v_t.weight, self.b.weight]:
            nn.init.xavier_normal_(weight)

    @classmethod
    def from_weights(cls, weights, dropout_probs):
        """The model sized by the exported weights, holding them."""
        num_items, embedding_size = weights["item_embedding.weight"].shape
        hidden_size = weights["gru.weight_hh_l0"].shape[1]
        num_layers = sum(1 for name in weights if name.startswith("gru.weight_ih_l"))
        model = cls(num_items, embedding_size, hidden_size, num_layers, dropout_probs)
        model.load_state_dict(weights)
        return model

    def forward(self, items, lengths):
        gru_out, _ = self.gru(self.emb_dropout(self.item_embedding(items)))
        c_global = gru_out[torch.arange(len(lengths), device=gru_out.device), lengths - 1]
        q1 = self.a_1(gru_out)
        q2 = self.a_2(c_global)
        mask = (items > 0).unsqueeze(2).to(gru_out.dtype)
        alpha = self.v_t(mask * torch.sigmoid(q1 + q2.unsqueeze(1)))  # [B, L, 1]
        c_local = (alpha * gru_out).sum(dim=1)
        return self.b(self.ct_dropout(torch.cat([c_local, c_global], dim=1)))


def build(weights, config, dropout):
    """The torch model from the exported weights, dropout off or as `train`'s `--dropout` says."""
    return NARM.from_weights(weights, (0.0, 0.0) if dropout is None else tuple(dropout.dropout))


def add_dropout_arguments(parser):
    parser.add_argument("--dropout", type=float, nargs=2, default=[0.25, 0.5],
                        metavar=("EMBEDDING", "CONTEXT"),
                        help="dropout on the item embeddings and on [c_local, h_t] "
                             "(RecBole's dropout_probs; default 0.25 0.5)")


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_gru(x, weight_ih, weight_hh):
    """One bias-free GRU layer over [B, L, in] from a zero state, PyTorch's gate order (r, z, n):
    r = σ(W_ir x + W_hr h), z = σ(W_iz x + W_hz h), n = tanh(W_in x + r ⊙ W_hn h),
    h' = (1 − z) ⊙ n + z ⊙ h. Returns every step's state [B, L, H]."""
    hidden = weight_hh.shape[1]
    gates_in = x @ weight_ih.T
    h = np.zeros((x.shape[0], hidden))
    out = np.empty((x.shape[0], x.shape[1], hidden))
    for t in range(x.shape[1]):
        i_r, i_z, i_n = np.split(gates_in[:, t], 3, axis=1)
        h_r, h_z, h_n = np.split(h @ weight_hh.T, 3, axis=1)
        r, z = sigmoid(i_r + h_r), sigmoid(i_z + h_z)
        n = np.tanh(i_n + r * h_n)
        h = (1 - z) * n + z * h
        out[:, t] = h
    return out


def numpy_representation(weights, config, items, lengths):
    """NARM's representation [B, E] in float64 NumPy, dropout off."""
    x = weights["item_embedding.weight"][items]
    for layer in range(config["numLayers"]):
        x = numpy_gru(x, weights[f"gru.weight_ih_l{layer}"], weights[f"gru.weight_hh_l{layer}"])
    c_global = x[np.arange(len(lengths)), lengths - 1]
    gate = sigmoid(x @ weights["a_1.weight"].T + (c_global @ weights["a_2.weight"].T)[:, None])
    alpha = ((items > 0)[:, :, None] * gate) @ weights["v_t.weight"].T  # [B, L, 1]
    c_local = (alpha * x).sum(axis=1)
    return np.concatenate([c_local, c_global], axis=1) @ weights["b.weight"].T


if __name__ == "__main__":
    run_cli(__doc__, build, add_dropout_arguments, numpy_representation)
