"""What the PyTorch checks share. Every check (Mamba4Rec and SSD4Rec too) reads what `export.ts`
wrote through it: raw int32 files, safetensors weights and metadata. The checks of the
padded-batch models (GRU4Rec, NARM, SASRec, BERT4Rec, Caser) also share the comparison of the
exported batch's loss and gradients in float64 and float32 with its limits, the float64 NumPy loss
check, RecBole's training protocol from the exported weights, and the command line around them.

PyTorch is used where it is installed. Without it `torch`, `nn` and `F` are None and `Module` is
`object`, so the model files still load and their NumPy checks (`gradients DIR --numpy-loss`) run;
everything else says PyTorch is needed.
"""
import argparse
import glob
import json
import os
import struct
import sys
import time

import numpy as np

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.nn import Module
except ModuleNotFoundError:
    torch = nn = F = None
    Module = object

DEVICE = "cuda" if torch is not None and torch.cuda.is_available() else "cpu"

LOSS_LIMIT = 1e-5
"""The largest float64 loss difference a check passes, relative to PyTorch's (or NumPy's) loss."""

GRADIENT_LIMIT = 1e-4
"""The largest float64 gradient difference a check passes, relative to the gradient's largest
entry, for every parameter."""

ZERO_GRADIENT = 1e-10
"""A parameter whose float64 PyTorch gradient stays below this fraction of the model's largest
gradient entry has a zero gradient in exact arithmetic (SASRec's key biases: the softmax ignores
a shift shared by all keys of a query); its difference is measured against the model's largest
gradient entry, since its own largest entry is rounding noise."""


def require_torch(what):
    """Exits with a message when PyTorch is not installed."""
    if torch is None:
        sys.exit(f"{what} needs PyTorch (pip install torch); without it only "
                 f"'gradients DIR --numpy-loss' runs, where the model has it")


def read_ints(directory, name):
    """The raw little-endian int32 file DIR/NAME.i32 as int64."""
    return np.fromfile(f"{directory}/{name}.i32", dtype=np.int32).astype(np.int64)


def read_arrays(path):
    """The float32 tensors of a safetensors file as NumPy arrays, by name."""
    with open(path, "rb") as f:
        raw = f.read()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + size])
    header.pop("__metadata__", None)
    arrays = {}
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: tensor '{name}' is {entry['dtype']}; the export writes "
                             f"F32 only, so this file is not one of its outputs")
        start, end = entry["data_offsets"]
        data = np.frombuffer(raw[8 + size + start:8 + size + end], dtype=np.float32).copy()
        arrays[name] = data.reshape(entry["shape"])
    return arrays


def read_safetensors(path):
    """The float32 tensors of a safetensors file as torch tensors, by name."""
    return {name: torch.from_numpy(a) for name, a in read_arrays(path).items()}


def read_metadata(path):
    """The __metadata__ entry of a safetensors file (string values)."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(size)).get("__metadata__", {})


def read_model_config(directory):
    """The exported model's hyperparameters (`modelConfig` of init.safetensors), camelCase keys."""
    return json.loads(read_metadata(f"{directory}/init.safetensors")["modelConfig"])


def read_padded_batch(directory):
    """The exported batch as int64 arrays: items [B, L] (right-padded with 0), lengths, targets."""
    lengths = read_ints(directory, "batch_lengths")
    items = read_ints(directory, "batch_items").reshape(len(lengths), -1)
    return items, lengths, read_ints(directory, "batch_targets")


def read_batch(directory):
    """The exported batch as int64 arrays by name: `items` [B, L] (right-padded with 0),
    `lengths`, `targets`, and flat under NAME every other `batch_NAME.i32` the export wrote for
    the model (BERT4Rec's `masked_items`, `loss_positions` and `loss_targets`, Caser's `users`)."""
    items, lengths, targets = read_padded_batch(directory)
    batch = {"items": items, "lengths": lengths, "targets": targets}
    for path in sorted(glob.glob(os.path.join(glob.escape(directory), "batch_*.i32"))):
        name = os.path.basename(path)[len("batch_"):-len(".i32")]
        if name not in batch:
            batch[name] = read_ints(directory, f"batch_{name}")
    return batch


def last_item_loss(model, batch):
    """RecBole's loss of most padded models: the cross-entropy of the item after each window,
    scored from `model(items, lengths)` against `model.item_embedding`; returns the loss and the
    representation."""
    h = model(batch["items"], batch["lengths"])
    return F.cross_entropy(h @ model.item_embedding.weight.t(), batch["targets"]), h


def training_loss(model, batch):
    """A batch's loss and representation (the exported batch, or one of `train`'s):
    `model.training_loss(batch)` for a model with its own objective (BERT4Rec's masked items,
    Caser's users and norms), else `last_item_loss`."""
    if hasattr(model, "training_loss"):
        return model.training_loss(batch)
    return last_item_loss(model, batch)


def ranking_scores(model, batch):
    """The scores [B, items] an evaluation batch ranks: `model.ranking_scores(batch)` for a model
    that ranks otherwise (BERT4Rec's evaluation window and output bias, Caser's users), else
    `model(items, lengths)` against `model.item_embedding`."""
    if hasattr(model, "ranking_scores"):
        return model.ranking_scores(batch)
    return model(batch["items"], batch["lengths"]) @ model.item_embedding.weight.t()


def exported_gradients(model):
    """The model's gradients under the export's parameter names and shapes:
    `model.exported_gradients()` for a model that lays a parameter out otherwise than the export
    (Caser's horizontal filters, packed there), else every named parameter's gradient."""
    if hasattr(model, "exported_gradients"):
        return model.exported_gradients()
    return {name: p.grad for name, p in model.named_parameters()}


def relative_difference(theirs, ours):
    """max |theirs − ours| / max |theirs| (torch tensors)."""
    return (theirs - ours).abs().max().item() / max(theirs.abs().max().item(), 1e-30)


def check_gradients(directory, build):
    """The exported batch through `build(weights)` in float64 and float32: a torch model whose
    loss and representation `training_loss` gives, whose gradients `exported_gradients` names.
    Prints both losses, the representation's and every parameter's largest difference relative to
    its largest entry (to the model's largest gradient entry for a gradient that is zero in exact
    arithmetic, see ZERO_GRADIENT). Returns the float64 loss difference relative to PyTorch's loss
    and the largest float64 gradient difference."""
    init = read_safetensors(f"{directory}/init.safetensors")
    ours = read_safetensors(f"{directory}/grads.safetensors")
    batch = {name: torch.from_numpy(a).to(DEVICE) for name, a in read_batch(directory).items()}
    items = batch["items"]
    worst, loss64, worst64, zero = 0.0, None, 0.0, None
    for dtype in [torch.float64, torch.float32]:
        model = build(init).to(DEVICE, dtype)
        loss, h = training_loss(model, batch)
        loss.backward()
        grads = exported_gradients(model)
        exported = {n[len("grad."):] for n in ours if n.startswith("grad.")}
        for names, where in [(exported - set(grads), "the PyTorch model lacks"),
                             (set(grads) - exported, "the export lacks")]:
            if names:
                raise ValueError(f"{directory}/grads.safetensors: gradients of parameters "
                                 f"{where}: {', '.join(sorted(names))}")
        print(f"[{dtype}] batch {items.shape[0]} x {items.shape[1]}: loss torch "
              f"{loss.item():.7f}, webgpu {ours['loss'].item():.7f}; representation max |Δ| / "
              f"max |h| = {relative_difference(h.detach(), ours['h'].to(DEVICE, dtype)):.2e}")
        if dtype == torch.float64:
            loss64 = abs(loss.item() - ours["loss"].item()) / abs(loss.item())
        scale = max(g.abs().max().item() for g in grads.values())
        if zero is None:  # decided on the float64 gradients
            zero = {n for n, g in grads.items() if g.abs().max().item() < ZERO_GRADIENT * scale}
        width = max(30, *(len(n) for n in grads))
        for name, grad in grads.items():
            exported_grad = ours["grad." + name].to(DEVICE, dtype)
            if name in zero:
                error = (grad - exported_grad).abs().max().item() / scale
                label, note = "max |Δ| / max |g| of the model", " (zero in exact arithmetic)"
            else:
                error = relative_difference(grad, exported_grad)
                label, note = "max |Δ| / max |g|", ""
            worst = max(worst, error)
            if dtype == torch.float64:
                worst64 = max(worst64, error)
            print(f"  {name:{width}s} {label} = {error:.2e}{note}")
    print(f"largest relative gradient difference: {worst:.2e}")
    return loss64, worst64


def within_limits(loss_difference, gradient_difference):
    """Prints the float64 figures against LOSS_LIMIT and GRADIENT_LIMIT; True when both hold."""
    passed = loss_difference <= LOSS_LIMIT and gradient_difference <= GRADIENT_LIMIT
    print(f"float64: loss relative difference {loss_difference:.2e} (limit {LOSS_LIMIT:.0e}), "
          f"largest relative gradient difference {gradient_difference:.2e} "
          f"(limit {GRADIENT_LIMIT:.0e}): {'pass' if passed else 'FAIL'}")
    return passed


def log_softmax_cross_entropy(h, table, targets):
    """Mean cross-entropy of the scores h · tableᵀ against `targets` (NumPy, stable)."""
    scores = h @ table.T
    top = scores.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(scores - top).sum(axis=1))
    return float(np.mean(log_norm - scores[np.arange(len(targets)), targets]))


def check_numpy_loss(directory, representation):
    """The exported batch's loss from `representation(weights, config, items, lengths)`, a NumPy
    float64 forward on the exported initial weights, against the exported loss and representation;
    returns True when the loss is within LOSS_LIMIT."""
    init = read_arrays(f"{directory}/init.safetensors")
    weights = {name: a.astype(np.float64) for name, a in init.items()}
    ours = read_arrays(f"{directory}/grads.safetensors")
    items, lengths, targets = read_padded_batch(directory)
    h = representation(weights, read_model_config(directory), items, lengths)
    loss = log_softmax_cross_entropy(h, weights["item_embedding.weight"], targets)
    exported = float(ours["loss"].reshape(-1)[0])
    difference = abs(loss - exported) / abs(loss)
    h_difference = np.abs(h - ours["h"]).max() / max(np.abs(h).max(), 1e-30)
    passed = difference <= LOSS_LIMIT
    print(f"[numpy float64] batch {len(lengths)} x {items.shape[1]}: loss numpy {loss:.7f}, "
          f"webgpu {exported:.7f}; relative difference {difference:.2e} (limit {LOSS_LIMIT:.0e}); "
          f"representation max |Δ| / max |h| = {h_difference:.2e}: {'pass' if passed else 'FAIL'}")
    return passed


def add_train_arguments(parser):
    """The `train` subcommand's arguments shared by every model (the dropout ones are its own)."""
    parser.add_argument("dir")
    parser.add_argument("--seconds", type=float, default=400)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--max-len", type=int, default=None,
                        help="window length L (default: the exported batch's)")
    parser.add_argument("--seed", type=int, default=2020)


def hit_ndcg_at_10(scores, target):
    """A validation batch's HR@10 and NDCG@10 summed over its rows, full ranking with PAD
    excluded (its column of `scores` [B, items] set to −inf in place); `target` [B] the items."""
    scores[:, 0] = -float("inf")
    rank = (scores > scores.gather(1, target[:, None])).sum(1)
    hit = rank < 10
    return hit.sum().item(), (hit.float() / torch.log2(rank.float() + 2)).sum().item()


def print_epoch(epoch, mean_loss, hits, ndcg, n, seconds):
    """An epoch's line: its mean training loss and the validation HR@10 and NDCG@10 over `n`."""
    print(f"epoch {epoch} loss {mean_loss:.4f} valid hit@10 {hits / n:.4f} "
          f"ndcg@10 {ndcg / n:.4f} ({seconds:.1f} s)", flush=True)


def train(args, build):
    """RecBole's protocol from the exported initial weights, the model `build(weights)` (its loss
    `training_loss`, its scores `ranking_scores`, on batches of `items`, `lengths`, `targets` and
    `users`): shuffled prefix samples in windows of the last L items, Adam 1e-3, the loss and
    validation HR@10 / NDCG@10 (full ranking, PAD excluded) per epoch, until `--epochs` or
    `--seconds` run out."""
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
        return {"items": seq, "lengths": length, "targets": items[positions], "users": users}

    model = build(read_safetensors(f"{args.dir}/init.safetensors")).to(DEVICE)
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
            loss, _ = training_loss(model, windows(users[pick], positions[pick]))
            loss.backward()
            optimizer.step()
            total += loss.detach()
            batches += 1
        seconds = time.time() - t0
        model.eval()
        hits = ndcg = 0.0
        with torch.no_grad():
            valid = windows(*splits["valid"])
            target = valid["targets"]
            for b in range(0, len(target), 1024):
                scores = ranking_scores(model, {k: v[b:b + 1024] for k, v in valid.items()})
                batch_hits, batch_ndcg = hit_ndcg_at_10(scores, target[b:b + 1024])
                hits += batch_hits
                ndcg += batch_ndcg
        print_epoch(epoch, total.item() / batches, hits, ndcg, len(target), seconds)
        if time.time() - start > args.seconds:
            break


def run_cli(doc, build, add_dropout_arguments, numpy_representation=None):
    """The command line of a model's check: `gradients DIR [--numpy-loss]` (exit status 1 when the
    float64 figures exceed their limits) and `train DIR …`. `build(weights, config, dropout)`
    makes the torch model from the exported weights and hyperparameters, `dropout` being the
    parsed `train` arguments or None for dropout off; `add_dropout_arguments(parser)` adds the
    model's dropout options to `train`; `numpy_representation(weights, config, items, lengths)`
    is the float64 NumPy forward, where the model has one (`--numpy-loss` is offered then)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gradients")
    g.add_argument("dir")
    if numpy_representation is not None:
        g.add_argument("--numpy-loss", action="store_true",
                       help="only the float64 NumPy forward's loss against the exported one "
                            "(no PyTorch needed)")
    t = sub.add_parser("train")
    add_train_arguments(t)
    add_dropout_arguments(t)
    args = parser.parse_args()
    if args.command == "gradients" and getattr(args, "numpy_loss", False):
        sys.exit(0 if check_numpy_loss(args.dir, numpy_representation) else 1)
    require_torch(f"'{args.command}'")
    print("device", DEVICE, "torch", torch.__version__, flush=True)
    config = read_model_config(args.dir)
    if args.command == "gradients":
        passed = within_limits(*check_gradients(args.dir, lambda w: build(w, config, None)))
        sys.exit(0 if passed else 1)
    train(args, lambda w: build(w, config, args))
