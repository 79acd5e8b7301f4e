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
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from mamba4rec_torch import read_ints, read_safetensors

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


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

    def loss(self, items, lengths, targets):
        return F.cross_entropy(self(items, lengths) @ self.item_embedding.weight.t(), targets)


def relative_difference(theirs, ours):
    return (theirs - ours).abs().max().item() / max(theirs.abs().max().item(), 1e-30)


def gradients(args):
    init = read_safetensors(f"{args.dir}/init.safetensors")
    ours = read_safetensors(f"{args.dir}/grads.safetensors")
    lengths = torch.from_numpy(read_ints(args.dir, "batch_lengths"))
    items = torch.from_numpy(read_ints(args.dir, "batch_items")).reshape(len(lengths), -1)
    targets = torch.from_numpy(read_ints(args.dir, "batch_targets"))
    worst = 0.0
    for dtype in [torch.float64, torch.float32]:
        model = GRU4Rec.from_weights(init, dropout=0.0).to(DEVICE, dtype)
        h = model(items.to(DEVICE), lengths.to(DEVICE))
        loss = F.cross_entropy(h @ model.item_embedding.weight.t(), targets.to(DEVICE))
        loss.backward()
        print(f"[{dtype}] batch {len(lengths)} x {items.shape[1]}: loss torch {loss.item():.7f}, "
              f"webgpu {ours['loss'].item():.7f}; representation max |Δ| / max |h| = "
              f"{relative_difference(h.detach(), ours['h'].to(DEVICE, dtype)):.2e}")
        for name, param in model.named_parameters():
            error = relative_difference(param.grad, ours["grad." + name].to(DEVICE, dtype))
            worst = max(worst, error)
            print(f"  {name:30s} max |Δ| / max |g| = {error:.2e}")
    print(f"largest relative gradient difference: {worst:.2e}")


def train(args):
    torch.manual_seed(args.seed)
    offsets = torch.from_numpy(read_ints(args.dir, "offsets")).to(DEVICE)
    items = torch.from_numpy(read_ints(args.dir, "items")).to(DEVICE)
    splits = {s: (torch.from_numpy(read_ints(args.dir, f"{s}_users")).to(DEVICE),
                  torch.from_numpy(read_ints(args.dir, f"{s}_pos")).to(DEVICE))
              for s in ["train", "valid"]}
    exported_length = len(read_ints(args.dir, "batch_items")) // len(
        read_ints(args.dir, "batch_lengths"))
    max_len = args.max_len or exported_length
    steps = torch.arange(max_len, device=DEVICE)

    def windows(users, positions):  # the last max_len items before each target, right-padded
        start = torch.maximum(offsets[users], positions - max_len)
        length = positions - start
        index = (start[:, None] + steps[None, :]).clamp(max=len(items) - 1)
        seq = torch.where(steps[None, :] < length[:, None], items[index], torch.zeros_like(index))
        return seq, length, items[positions]

    model = GRU4Rec.from_weights(read_safetensors(f"{args.dir}/init.safetensors"), args.dropout)
    model = model.to(DEVICE)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        users, positions = splits["train"]
        order = torch.randperm(len(users), device=DEVICE)
        total, batches, t0 = 0.0, 0, time.time()
        for b in range(0, len(users), args.batch_size):
            pick = order[b:b + args.batch_size]
            optimizer.zero_grad()
            loss = model.loss(*windows(users[pick], positions[pick]))
            loss.backward()
            optimizer.step()
            total += loss.detach()
            batches += 1
        seconds = time.time() - t0
        model.eval()
        hits = ndcg = 0.0
        with torch.no_grad():
            seq, length, target = windows(*splits["valid"])
            for b in range(0, len(target), 1024):
                scores = model(seq[b:b + 1024], length[b:b + 1024]) @ model.item_embedding.weight.t()
                scores[:, 0] = -float("inf")
                rank = (scores > scores.gather(1, target[b:b + 1024, None])).sum(1)
                hit = rank < 10
                hits += hit.sum().item()
                ndcg += (hit.float() / torch.log2(rank.float() + 2)).sum().item()
        n = len(target)
        print(f"epoch {epoch} loss {total.item() / batches:.4f} valid hit@10 {hits / n:.4f} "
              f"ndcg@10 {ndcg / n:.4f} ({seconds:.1f} s)", flush=True)
        if time.time() - start > args.seconds:
            break


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gradients")
    g.add_argument("dir")
    t = sub.add_parser("train")
    t.add_argument("dir")
    t.add_argument("--seconds", type=float, default=400)
    t.add_argument("--epochs", type=int, default=300)
    t.add_argument("--dropout", type=float, default=0.2)
    t.add_argument("--batch-size", type=int, default=2048)
    t.add_argument("--max-len", type=int, default=None,
                   help="window length L (default: the exported batch's)")
    t.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args()
    print("device", DEVICE, "torch", torch.__version__, flush=True)
    gradients(args) if args.command == "gradients" else train(args)


if __name__ == "__main__":
    main()
