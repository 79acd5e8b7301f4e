"""Mamba4Rec in PyTorch, built from torch.nn modules the way the official code builds it, to check
the WebGPU implementation against an independent one on real data.

    python mamba4rec_torch.py gradients DIR        # one batch: loss and every gradient, f64 and f32
    python mamba4rec_torch.py train DIR [--seconds S] [--dropout P]
                                                   # RecBole's protocol from the same initial weights

DIR is what `deno run -A scripts/pytorch_crosscheck/export.ts --out DIR` wrote. The selective scan
is the plain recurrence over time (no CUDA kernel needed); on an H200 an ML-1M epoch takes about
130 s, ten times the WebGPU one, which is fine for a check.
"""
import argparse
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from crosscheck_common import DEVICE, read_ints, read_safetensors, train as train_protocol


class MambaBlock(nn.Module):
    """mamba_ssm v1.1.4's Mamba block: in_proj, causal depthwise conv + SiLU, x_proj, dt_proj,
    the selective scan with D skip and SiLU(z) gate, out_proj."""

    def __init__(self, d_model, d_state=32, d_conv=4, expand=2):
        super().__init__()
        inner = expand * d_model
        self.inner, self.state, self.rank = inner, d_state, math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, 2 * inner, bias=False)
        self.conv1d = nn.Conv1d(inner, inner, d_conv, groups=inner, padding=d_conv - 1, bias=True)
        self.x_proj = nn.Linear(inner, self.rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.rank, inner, bias=True)
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, d_model, bias=False)

    def forward(self, hidden):
        batch, length, _ = hidden.shape
        x, z = self.in_proj(hidden).chunk(2, dim=-1)
        x = F.silu(self.conv1d(x.transpose(1, 2))[..., :length]).transpose(1, 2)
        dt, b, c = self.x_proj(x).split([self.rank, self.state, self.state], dim=-1)
        delta = F.softplus(dt @ self.dt_proj.weight.t() + self.dt_proj.bias)
        a = -torch.exp(self.A_log)
        h = torch.zeros(batch, self.inner, self.state, device=hidden.device, dtype=hidden.dtype)
        ys = []
        for t in range(length):
            h = torch.exp(delta[:, t, :, None] * a) * h \
                + (delta[:, t] * x[:, t])[:, :, None] * b[:, t, None, :]
            ys.append(torch.einsum("bdn,bn->bd", h, c[:, t]))
        y = torch.stack(ys, dim=1) + x * self.D
        return self.out_proj(y * F.silu(z))


class FeedForward(nn.Module):
    def __init__(self, d_model, dropout):
        super().__init__()
        self.w_1, self.w_2 = nn.Linear(d_model, 4 * d_model), nn.Linear(4 * d_model, d_model)
        self.LayerNorm, self.dropout = nn.LayerNorm(d_model, eps=1e-12), nn.Dropout(dropout)

    def forward(self, x):
        h = self.dropout(self.w_2(self.dropout(F.gelu(self.w_1(x)))))
        return self.LayerNorm(h + x)


class Mamba4Rec(nn.Module):
    """One Mamba layer (no residual around it), the FFN, the tied item embedding as output."""

    def __init__(self, num_items, d_model=64, dropout=0.2):
        super().__init__()
        self.item_embedding = nn.Embedding(num_items, d_model, padding_idx=0)
        self.LayerNorm, self.dropout = nn.LayerNorm(d_model, eps=1e-12), nn.Dropout(dropout)
        self.mamba = MambaBlock(d_model)
        self.mamba_norm = nn.LayerNorm(d_model, eps=1e-12)
        self.ffn = FeedForward(d_model, dropout)
        self.apply(self._init)

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(0.0, 0.02)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    def forward(self, items, lengths):
        h = self.LayerNorm(self.dropout(self.item_embedding(items)))
        h = self.ffn(self.mamba_norm(self.dropout(self.mamba(h))))
        return h[torch.arange(len(lengths), device=h.device), lengths - 1]

    def loss(self, items, lengths, targets):
        return F.cross_entropy(self(items, lengths) @ self.item_embedding.weight.t(), targets)

    # The WebGPU model keeps in_proj as its x and z halves and x_proj as its dt, B and C parts.
    def parameter_views(self):
        m, r, n, i = self.mamba, self.mamba.rank, self.mamba.state, self.mamba.inner
        p = "mamba_layers.0."
        views = {
            "item_embedding.weight": (self.item_embedding.weight, None),
            "LayerNorm.weight": (self.LayerNorm.weight, None),
            "LayerNorm.bias": (self.LayerNorm.bias, None),
            p + "mamba.in_proj_x.weight": (m.in_proj.weight, slice(0, i)),
            p + "mamba.in_proj_z.weight": (m.in_proj.weight, slice(i, 2 * i)),
            p + "mamba.conv1d.weight": (m.conv1d.weight, "conv"),
            p + "mamba.conv1d.bias": (m.conv1d.bias, None),
            p + "mamba.x_proj_dt.weight": (m.x_proj.weight, slice(0, r)),
            p + "mamba.x_proj_B.weight": (m.x_proj.weight, slice(r, r + n)),
            p + "mamba.x_proj_C.weight": (m.x_proj.weight, slice(r + n, r + 2 * n)),
            p + "mamba.dt_proj.weight": (m.dt_proj.weight, None),
            p + "mamba.dt_proj.bias": (m.dt_proj.bias, None),
            p + "mamba.A_log": (m.A_log, None),
            p + "mamba.D": (m.D, None),
            p + "mamba.out_proj.weight": (m.out_proj.weight, None),
            p + "LayerNorm.weight": (self.mamba_norm.weight, None),
            p + "LayerNorm.bias": (self.mamba_norm.bias, None),
        }
        for name in ["w_1.weight", "w_1.bias", "w_2.weight", "w_2.bias",
                     "LayerNorm.weight", "LayerNorm.bias"]:
            layer, field = name.split(".")
            views[p + "ffn." + name] = (getattr(getattr(self.ffn, layer), field), None)
        return views

    @staticmethod
    def _view(tensor, part):
        if part is None:
            return tensor
        if part == "conv":
            return tensor[:, 0]
        return tensor[part]

    def load_webgpu(self, weights):
        with torch.no_grad():
            for name, (param, part) in self.parameter_views().items():
                self._view(param, part).copy_(weights[name])

    def gradients_webgpu_layout(self):
        return {name: self._view(param.grad, part)
                for name, (param, part) in self.parameter_views().items()}


def gradients(args):
    init = read_safetensors(f"{args.dir}/init.safetensors")
    ours = read_safetensors(f"{args.dir}/grads.safetensors")
    lengths = torch.from_numpy(read_ints(args.dir, "batch_lengths"))
    items = torch.from_numpy(read_ints(args.dir, "batch_items")).reshape(len(lengths), -1)
    targets = torch.from_numpy(read_ints(args.dir, "batch_targets"))
    worst = 0.0
    for dtype in [torch.float64, torch.float32]:
        model = Mamba4Rec(init["item_embedding.weight"].shape[0], dropout=0.0)
        model.load_webgpu(init)
        model = model.to(DEVICE, dtype)
        loss = model.loss(items.to(DEVICE), lengths.to(DEVICE), targets.to(DEVICE))
        loss.backward()
        print(f"[{dtype}] batch {len(lengths)} x {items.shape[1]}: loss torch {loss.item():.7f}, "
              f"webgpu {ours['loss'].item():.7f}")
        for name, grad in model.gradients_webgpu_layout().items():
            other = ours["grad." + name].to(DEVICE, dtype)
            error = (grad - other).abs().max().item() / max(grad.abs().max().item(), 1e-30)
            worst = max(worst, error)
            print(f"  {name:45s} max |Δ| / max |g| = {error:.2e}")
    print(f"largest relative gradient difference: {worst:.2e}")


def train(args):
    """RecBole's protocol (`crosscheck_common.train`) on this Mamba4Rec, built from the exported
    initial weights with `--dropout`."""
    def build(weights):
        model = Mamba4Rec(weights["item_embedding.weight"].shape[0], dropout=args.dropout)
        model.load_webgpu(weights)
        return model

    train_protocol(args, build)


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
    t.add_argument("--max-len", type=int, default=200)
    t.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args()
    print("device", DEVICE, "torch", torch.__version__, flush=True)
    gradients(args) if args.command == "gradients" else train(args)


if __name__ == "__main__":
    main()
