"""SSD4Rec in PyTorch, written from its specification with torch.nn pieces, to check the WebGPU
implementation against an independent one on the same weights and the same packed batch.

    python ssd4rec_torch.py gradients DIR   # one packed batch: loss and every gradient, f64 and f32
    python ssd4rec_torch.py train DIR [--seconds S] [--dropout P] [--mask-ratio RHO]
                                            # the official protocol from the same initial weights

DIR is what `deno run -A scripts/pytorch_crosscheck/export.ts --model ssd4rec --out DIR` wrote.

The model: the item embedding (row 0, the mask id, learned), optionally Dropout then LayerNorm;
per Bi-SSD layer ONE Mamba-2 block run on the packed tokens and on every segment reversed in place,
h = fwd + beta * bwd + x with bwd left reversed, Dropout(LayerNorm(h)), then the post-LN feed-forward
Dropout(LayerNorm(W2 Dropout(GELU(W1 h)) + h)); each segment's last token scored against the tied
item embedding with a full-softmax cross-entropy.

The Mamba-2 block: in_proj split into z, xBC and dt; a depthwise nn.Conv1d over xBC with SiLU, in
which no tap reaches into another segment (each segment is convolved after its own d_conv - 1
zeros); the SSD as the plain recurrence S_t = exp(dt_t A) S_{t-1} + dt_t x_t B_t^T,
y_t = S_t C_t + D x_t, run segment by segment from a zero state (no chunking, no mamba_ssm);
the gated RMSNorm RMSNorm(y * SiLU(z)) * w (eps 1e-5, one group); out_proj.

Memory: the recurrence keeps one [heads, headdim, d_state] state per token for the backward, about
T * 32 * 16 * 64 * 8 bytes for T tokens in float64 (52 GB for a whole ML-1M batch of ~2e5 tokens);
each block call is recomputed in the backward (activation checkpointing), so only one call's states
are held at a time. Export fewer samples (`--max-segments`) when that does not fit.
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from crosscheck_common import (DEVICE, hit_ndcg_at_10, print_epoch, read_ints, read_metadata,
                               read_model_config, read_safetensors)

LAYER_NORM_EPS = 1e-12
GATED_NORM_EPS = 1e-5


class Segments:
    """The segments of a packed batch, from their lengths: segment id and reversal of every token,
    each segment's last token, and the tokens the recurrence reads at each step."""

    def __init__(self, lengths, device):
        lengths = lengths.to(device)
        ends = torch.cumsum(lengths, 0)
        starts = ends - lengths
        tokens = int(ends[-1])
        self.count, self.tokens = len(lengths), tokens
        self.seq_idx = torch.repeat_interleave(torch.arange(len(lengths), device=device), lengths)
        self.last = ends - 1
        # Token p of segment [s, e] takes its value from s + e - p when segments are reversed.
        self.flip = (starts + self.last)[self.seq_idx] - torch.arange(tokens, device=device)
        # Longest segments first, so the segments still running at step t are a prefix of them.
        order = torch.argsort(lengths, descending=True, stable=True)
        sorted_lengths, sorted_starts = lengths[order].tolist(), starts[order]
        self.steps = []
        active = len(sorted_lengths)
        for t in range(sorted_lengths[0]):
            while sorted_lengths[active - 1] <= t:
                active -= 1
            self.steps.append(sorted_starts[:active] + t)
        self.step_tokens = torch.cat(self.steps)


def ssd_recurrence(x, dt, A, B, C, D, segments):
    """The SSD over every segment from a zero state. x [T, H, P], dt [T, H] (after softplus),
    A [H], B and C [T, G, N], D [H]; returns y [T, H, P]."""
    heads = x.shape[1]
    B = B.repeat_interleave(heads // B.shape[1], dim=1)
    C = C.repeat_interleave(heads // C.shape[1], dim=1)
    state = x.new_zeros(len(segments.steps[0]), heads, x.shape[2], B.shape[2])
    ys = []
    for tokens in segments.steps:
        state = state[:len(tokens)]
        decay = torch.exp(dt[tokens] * A)[:, :, None, None]
        step_input = (dt[tokens, :, None] * x[tokens])[..., None] * B[tokens, :, None, :]
        state = decay * state + step_input
        ys.append(torch.einsum("khpn,khn->khp", state, C[tokens]))
    y = x.new_zeros(x.shape).index_copy(0, segments.step_tokens, torch.cat(ys))
    return y + D[:, None] * x


class GatedRMSNorm(nn.Module):
    """RMSNorm(y * SiLU(z)) * weight over all channels (norm_before_gate=False, one group)."""

    def __init__(self, size, eps=GATED_NORM_EPS):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(size)), eps

    def forward(self, y, z):
        g = y * F.silu(z)
        return g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Mamba2(nn.Module):
    """Mamba-2 with SSD4Rec's arguments, on packed tokens [T, d_model]."""

    def __init__(self, d_model, d_state, headdim, d_conv, expand, ngroups=1):
        super().__init__()
        inner = expand * d_model
        self.inner, self.heads, self.headdim = inner, inner // headdim, headdim
        self.groups, self.state = ngroups, d_state
        self.conv_dim = inner + 2 * ngroups * d_state
        self.in_proj = nn.Linear(d_model, inner + self.conv_dim + self.heads, bias=False)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, d_conv, groups=self.conv_dim)
        self.dt_bias = nn.Parameter(torch.zeros(self.heads))
        self.A_log = nn.Parameter(torch.zeros(self.heads))
        self.D = nn.Parameter(torch.ones(self.heads))
        self.norm = GatedRMSNorm(inner)
        self.out_proj = nn.Linear(inner, d_model, bias=False)

    def segment_conv(self, xbc, segments):
        """The causal depthwise convolution with no tap across a segment change: every segment is
        laid out after its own d_conv - 1 zeros and the whole row convolved unpadded."""
        lead = self.conv1d.kernel_size[0] - 1
        at = torch.arange(segments.tokens, device=xbc.device) + lead * (segments.seq_idx + 1)
        laid = xbc.new_zeros(segments.tokens + lead * segments.count, xbc.shape[1])
        laid = laid.index_copy(0, at, xbc)
        return self.conv1d(laid.t()[None])[0].t()[at - lead]

    def forward(self, u, segments):
        T = u.shape[0]
        z, xbc, dt = self.in_proj(u).split([self.inner, self.conv_dim, self.heads], dim=-1)
        xbc = F.silu(self.segment_conv(xbc, segments))
        gn = self.groups * self.state
        x, B, C = xbc.split([self.inner, gn, gn], dim=-1)
        y = ssd_recurrence(
            x.reshape(T, self.heads, self.headdim),
            F.softplus(dt + self.dt_bias),
            -torch.exp(self.A_log),
            B.reshape(T, self.groups, self.state),
            C.reshape(T, self.groups, self.state),
            self.D,
            segments,
        )
        return self.out_proj(self.norm(y.reshape(T, self.inner), z))


class FeedForward(nn.Module):
    """Dropout(LayerNorm(w_2(Dropout(GELU(w_1 h))) + h)), exact GELU."""

    def __init__(self, d_model, dropout):
        super().__init__()
        self.w_1, self.w_2 = nn.Linear(d_model, 4 * d_model), nn.Linear(4 * d_model, d_model)
        self.LayerNorm = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h):
        f = self.w_2(self.dropout(F.gelu(self.w_1(h))))
        return self.dropout(self.LayerNorm(f + h))


class BiSSDLayer(nn.Module):
    """The shared Mamba-2 block forward and on every segment reversed, h = fwd + beta*bwd + x
    (bwd not reversed back), Dropout(LayerNorm(h)), the feed-forward."""

    def __init__(self, config, dropout):
        super().__init__()
        d = config["hiddenSize"]
        self.beta = config["beta"]
        self.mamba = Mamba2(d, config["dState"], config["headDim"], config["dConv"],
                            config["expand"])
        self.LayerNorm = nn.LayerNorm(d, eps=LAYER_NORM_EPS)
        self.dropout = nn.Dropout(dropout)
        self.ffn = FeedForward(d, dropout)

    def forward(self, x, segments):
        fwd = checkpoint(self.mamba, x, segments, use_reentrant=False)
        bwd = checkpoint(self.mamba, x[segments.flip], segments, use_reentrant=False)
        h = fwd + self.beta * bwd + x
        return self.ffn(self.dropout(self.LayerNorm(h)))


class SSD4Rec(nn.Module):
    """SSD4Rec on one packed batch; parameter names as the WebGPU model's."""

    def __init__(self, config, dropout=0.0):
        super().__init__()
        d = config["hiddenSize"]
        self.item_embedding = nn.Embedding(config["numItems"], d)
        self.dropout = nn.Dropout(dropout)
        if config["normEmbedding"]:
            self.LayerNorm = nn.LayerNorm(d, eps=LAYER_NORM_EPS)
        else:
            self.LayerNorm = None
        self.ssd_layers = nn.ModuleList(BiSSDLayer(config, dropout)
                                        for _ in range(config["numLayers"]))

    def forward(self, items, segments):
        h = self.item_embedding(items)
        if self.LayerNorm is not None:
            h = self.LayerNorm(self.dropout(h))
        for layer in self.ssd_layers:
            h = layer(h, segments)
        return h[segments.last]

    def loss(self, items, segments, targets):
        h = self(items, segments)
        return F.cross_entropy(h @ self.item_embedding.weight.t(), targets), h

    def load_webgpu(self, weights):
        """Copies the exported weights in (the WebGPU conv1d.weight is [channels, width])."""
        own = dict(self.named_parameters())
        if set(own) != set(weights):
            raise KeyError(f"parameter names differ: only in PyTorch {sorted(set(own) - set(weights))},"
                           f" only in the export {sorted(set(weights) - set(own))}")
        with torch.no_grad():
            for name, param in own.items():
                param.copy_(weights[name].reshape(param.shape))

    def gradients_webgpu_layout(self):
        return {name: p.grad.reshape(-1, p.shape[-1]) if name.endswith("conv1d.weight") else p.grad
                for name, p in self.named_parameters()}


def relative_difference(ours, theirs):
    return (ours - theirs).abs().max().item() / max(ours.abs().max().item(), 1e-30)


def gradients(args):
    init = read_safetensors(f"{args.dir}/init.safetensors")
    config = read_model_config(args.dir)
    exported = read_safetensors(f"{args.dir}/grads.safetensors")
    batch = read_metadata(f"{args.dir}/grads.safetensors")
    lengths = torch.from_numpy(read_ints(args.dir, "batch_lengths"))
    items = torch.from_numpy(read_ints(args.dir, "batch_items")).to(DEVICE)
    targets = torch.from_numpy(read_ints(args.dir, "batch_targets")).to(DEVICE)
    segments = Segments(lengths, DEVICE)
    seq_idx = torch.from_numpy(read_ints(args.dir, "batch_seq_idx")).to(DEVICE)
    if not torch.equal(seq_idx, segments.seq_idx) or len(items) != segments.tokens:
        raise ValueError(f"{args.dir}: batch_seq_idx and batch_items do not match batch_lengths; "
                         "export the batch again")
    print(f"batch: {segments.count} samples of {batch.get('batchSize')}, {segments.tokens} tokens, "
          f"{batch.get('maskedTokens')} masked (rho {batch.get('maskRatio')}), longest "
          f"{len(segments.steps)}; beta {config['beta']}, {config['numLayers']} layers", flush=True)
    worst = 0.0
    for dtype in [torch.float64, torch.float32]:
        model = SSD4Rec(config)
        model.load_webgpu(init)
        model = model.to(DEVICE, dtype)
        loss, h = model.loss(items, segments, targets)
        loss.backward()
        h_error = relative_difference(h.detach(), exported["h"].to(DEVICE, dtype))
        print(f"[{dtype}] loss torch {loss.item():.7f}, webgpu {exported['loss'].item():.7f}; "
              f"representation max |Δ| / max |h| = {h_error:.2e}")
        for name, grad in model.gradients_webgpu_layout().items():
            error = relative_difference(grad, exported["grad." + name].to(DEVICE, dtype))
            worst = max(worst, error)
            print(f"  {name:40s} max |Δ| / max |g| = {error:.2e}")
    print(f"largest relative gradient difference: {worst:.2e}")


def packed_histories(offsets, items, users, positions, max_len=None):
    """Each sample's history before its target (the last max_len items, or whole), concatenated:
    the tokens' item ids and the histories' lengths."""
    starts = offsets[users]
    if max_len is not None:
        starts = torch.maximum(starts, positions - max_len)
    lengths = positions - starts
    first = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
    index = torch.repeat_interleave(starts, lengths) + torch.arange(len(first), device=first.device) - first
    return items[index], lengths


def train(args):
    """SSD4Rec's protocol from the exported initial weights: shuffled prefix samples in packed
    batches, each history token masked to 0 with probability rho, Adam, full-sort validation."""
    torch.manual_seed(args.seed)
    offsets = torch.from_numpy(read_ints(args.dir, "offsets")).to(DEVICE)
    items = torch.from_numpy(read_ints(args.dir, "items")).to(DEVICE)
    splits = {s: (torch.from_numpy(read_ints(args.dir, f"{s}_users")).to(DEVICE),
                  torch.from_numpy(read_ints(args.dir, f"{s}_pos")).to(DEVICE))
              for s in ["train", "valid"]}
    rho = args.mask_ratio
    if rho is None:
        rho = float(read_metadata(f"{args.dir}/grads.safetensors").get("maskRatio", 0.0))
    config = read_model_config(args.dir)
    if args.dropout is None:
        exported = read_metadata(f"{args.dir}/init.safetensors").get("trainingDropoutProb")
        if exported is None:
            raise ValueError(f"{args.dir}: init.safetensors names no trainingDropoutProb; "
                             "export again or give --dropout")
        args.dropout = float(exported)
    model = SSD4Rec(config, dropout=args.dropout)
    model.load_webgpu(read_safetensors(f"{args.dir}/init.safetensors"))
    model = model.to(DEVICE)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(f"rho {rho}, dropout {args.dropout}, batch {args.batch_size}, "
          f"max_len {args.max_len or 'whole histories'}", flush=True)
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        users, positions = splits["train"]
        order = torch.randperm(len(users), device=DEVICE)
        total, batches, t0 = 0.0, 0, time.time()
        for b in range(0, len(users), args.batch_size):
            pick = order[b:b + args.batch_size]
            tokens, lengths = packed_histories(offsets, items, users[pick], positions[pick],
                                               args.max_len)
            tokens = torch.where(torch.rand(len(tokens), device=DEVICE) < rho, 0, tokens)
            optimizer.zero_grad()
            loss, _ = model.loss(tokens, Segments(lengths, DEVICE), items[positions[pick]])
            loss.backward()
            optimizer.step()
            total += loss.detach()
            batches += 1
        seconds = time.time() - t0
        model.eval()
        hits = ndcg = 0.0
        users, positions = splits["valid"]
        with torch.no_grad():
            for b in range(0, len(users), args.eval_batch_size):
                u, p = users[b:b + args.eval_batch_size], positions[b:b + args.eval_batch_size]
                tokens, lengths = packed_histories(offsets, items, u, p, args.max_len)
                scores = model(tokens, Segments(lengths, DEVICE)) @ model.item_embedding.weight.t()
                batch_hits, batch_ndcg = hit_ndcg_at_10(scores, items[p])
                hits += batch_hits
                ndcg += batch_ndcg
        print_epoch(epoch, total.item() / batches, hits, ndcg, len(users), seconds)
        if time.time() - start > args.seconds:
            break


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gradients", help="loss and every gradient of the exported batch")
    g.add_argument("dir")
    t = sub.add_parser("train", help="train from the exported initial weights")
    t.add_argument("dir")
    t.add_argument("--seconds", type=float, default=400)
    t.add_argument("--epochs", type=int, default=300)
    t.add_argument("--dropout", type=float,
                   help="dropout probability (default: the dataset preset's, as exported)")
    t.add_argument("--mask-ratio", type=float, help="rho (default: the exported batch's)")
    t.add_argument("--batch-size", type=int, default=1024)
    t.add_argument("--eval-batch-size", type=int, default=2048)
    t.add_argument("--max-len", type=int, help="keep the last L items (default: whole histories)")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args()
    # Plain float32 arithmetic for the float32 pass (no TF32 in matmuls or convolutions).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print("device", DEVICE, "torch", torch.__version__, flush=True)
    gradients(args) if args.command == "gradients" else train(args)


if __name__ == "__main__":
    main()
