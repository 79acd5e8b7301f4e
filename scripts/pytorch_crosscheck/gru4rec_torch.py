"""GRU4Rec in PyTorch, built from torch.nn modules as RecBole 1.2's GRU4Rec is specified, to check
the WebGPU implementation against an independent one on the same weights and data.

    python gru4rec_torch.py gradients DIR        # one batch: loss and every gradient, f64 and f32
    python gru4rec_torch.py train DIR [--seconds S] [--dropout P]
                                                 # RecBole's protocol from the same initial weights

DIR is what `deno run -A scripts/pytorch_crosscheck/export.ts --model gru4rec --out DIR` wrote. The
sizes (items, embedding, hidden, layers) are read from the exported weights, whose names are the
torch module's own, so they load with `load_state_dict`.

The model: Embedding(n_items, E, padding_idx=0) -> Dropout -> nn.GRU(E, hidden, num_layers,
bias=False, batch_first=True) over the whole right-padded window (no packing: pads only follow the
last real item) -> dense = Linear(hidden, E) on every step -> the step at length - 1 -> scores
against the tied item embedding, F.cross_entropy. Fresh weights are initialised as specified
(xavier_normal_ on the embedding, xavier_uniform_ on the first layer's weight_ih and weight_hh,
PyTorch's defaults elsewhere), though both subcommands load the exported ones.
"""
import argparse

import torch
import torch.nn as nn

from crosscheck_common import DEVICE, add_train_arguments, check_gradients, train


class GRU4Rec(nn.Module):
    """Embedding, dropout, a bias-free GRU, the dense projection, the tied embedding as output."""

    def __init__(self, num_items, embedding_size=64, hidden_size=128, num_layers=1, dropout=0.3):
        super().__init__()
        self.item_embedding = nn.Embedding(num_items, embedding_size, padding_idx=0)
        self.emb_dropout = nn.Dropout(dropout)
        self.gru_layers = nn.GRU(embedding_size, hidden_size, num_layers, bias=False,
                                 batch_first=True)
        self.dense = nn.Linear(hidden_size, embedding_size)
        nn.init.xavier_normal_(self.item_embedding.weight)
        nn.init.xavier_uniform_(self.gru_layers.weight_hh_l0)
        nn.init.xavier_uniform_(self.gru_layers.weight_ih_l0)

    @classmethod
    def from_weights(cls, weights, dropout):
        """The model sized by the exported weights, holding them."""
        num_items, embedding_size = weights["item_embedding.weight"].shape
        hidden_size = weights["gru_layers.weight_hh_l0"].shape[1]
        num_layers = sum(1 for name in weights if name.startswith("gru_layers.weight_ih_l"))
        model = cls(num_items, embedding_size, hidden_size, num_layers, dropout)
        model.load_state_dict(weights)
        return model

    def forward(self, items, lengths):
        output, _ = self.gru_layers(self.emb_dropout(self.item_embedding(items)))
        output = self.dense(output)
        return output[torch.arange(len(lengths), device=output.device), lengths - 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gradients")
    g.add_argument("dir")
    t = sub.add_parser("train")
    add_train_arguments(t)
    t.add_argument("--dropout", type=float, default=0.2)
    args = parser.parse_args()
    print("device", DEVICE, "torch", torch.__version__, flush=True)
    if args.command == "gradients":
        check_gradients(args.dir, lambda weights: GRU4Rec.from_weights(weights, dropout=0.0))
    else:
        train(args, lambda weights: GRU4Rec.from_weights(weights, args.dropout))


if __name__ == "__main__":
    main()
