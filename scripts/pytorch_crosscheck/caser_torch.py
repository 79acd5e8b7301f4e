"""Caser in PyTorch, built from torch.nn modules as RecBole 1.2's Caser is specified, to check the
WebGPU implementation against an independent one on the same weights and data.

    python caser_torch.py gradients DIR   # one batch: loss and every gradient, f64 and f32
    python caser_torch.py train DIR [--seconds S] [--dropout P]
                                          # RecBole's protocol from the same initial weights

DIR is what `deno run -A scripts/pytorch_crosscheck/export.ts --model caser --out DIR` wrote: the
windows, each row's user, and the loss with its regularisation term. The sizes (items, users,
embedding, window, filters) are read from the exported weights, the regularisation weight from the
exported model configuration. The export keeps the horizontal filters of every height in one
packed tensor, `conv_h.weight` (height h's [nh, h, E] block at nh · E · h(h − 1)/2) with their
biases in `conv_h.bias` [L, nh], and the vertical filters as [nv, L]; they are loaded into one
`nn.Conv2d` per height and the `nn.Conv2d` of the vertical filters, and their gradients packed back
for the comparison. `gradients` exits with status 1 when the float64 loss or a float64 gradient
differs by more than the limits of `crosscheck_common.py`. `train` ranks with each validation
sample's user, and its windows must be the exported length (the convolutions span it).

The model: the item embedding of the whole right-padded window, pads included (padding_idx=0),
[B, 1, L, E] -> conv_v = Conv2d(1, nv, (L, 1)), no activation, [B, nv · E]; for every height
h = 1 … L, Conv2d(1, nh, (h, E)) -> ReLU -> max-pool over all positions, [B, nh], concatenated by
height, [B, nh · L] -> Dropout(P) on [out_v, out_h] -> ReLU(fc1) -> [z, user_embedding(user)] ->
ReLU(fc2) -> scores against the tied item embedding (PAD row included). The loss:
F.cross_entropy of the item after each window + reg_weight · (‖U‖ + ‖E‖ + ‖conv_v.W‖ + ‖fc1.W‖ +
‖fc2.W‖) + reg_weight · Σ_h ‖conv_h[h].W‖, each an unsquared Frobenius norm, biases not
regularised. Fresh weights are initialised as specified (both embeddings N(0, 1/E), Linear weights
xavier_normal_ with zero biases, PyTorch's default on the convolutions), though both subcommands
load the exported ones.
"""
from crosscheck_common import F, Module, nn, run_cli, torch


def height_offset(filters, dim, height):
    """Where height `height`'s filters start in the packed horizontal weights."""
    return filters * dim * height * (height - 1) // 2


class Caser(Module):
    """Vertical and every-height horizontal convolutions over the window's item embeddings, fc1,
    the user's embedding, fc2; the tied item embedding as output; RecBole's regularised loss."""

    def __init__(self, num_items, num_users, embedding_size=64, max_length=50, nv=4, nh=8,
                 dropout=0.4, reg_weight=1e-4):
        super().__init__()
        self.nv, self.nh, self.reg_weight = nv, nh, reg_weight
        self.user_embedding = nn.Embedding(num_users, embedding_size, padding_idx=0)
        self.item_embedding = nn.Embedding(num_items, embedding_size, padding_idx=0)
        self.conv_v = nn.Conv2d(1, nv, (max_length, 1))
        self.conv_h = nn.ModuleList(nn.Conv2d(1, nh, (h, embedding_size))
                                    for h in range(1, max_length + 1))
        self.fc1 = nn.Linear(nv * embedding_size + nh * max_length, embedding_size)
        self.fc2 = nn.Linear(2 * embedding_size, embedding_size)
        self.dropout = nn.Dropout(dropout)
        for embedding in [self.user_embedding, self.item_embedding]:
            nn.init.normal_(embedding.weight, 0.0, 1.0 / embedding_size)
        for linear in [self.fc1, self.fc2]:
            nn.init.xavier_normal_(linear.weight)
            nn.init.zeros_(linear.bias)

    @classmethod
    def from_weights(cls, weights, config, dropout):
        """The model sized by the exported weights (reg_weight from `config`), holding them,
        the packed horizontal filters and the [nv, L] vertical ones laid out as the convolutions
        take them."""
        num_users, embedding_size = weights["user_embedding.weight"].shape
        num_items = weights["item_embedding.weight"].shape[0]
        nv, max_length = weights["conv_v.weight"].shape
        nh = weights["conv_h.bias"].shape[1]
        packed = weights["conv_h.weight"]
        expected = height_offset(nh, embedding_size, max_length + 1)
        if packed.numel() != expected:
            raise ValueError(f"conv_h.weight has {packed.numel()} values, but {nh} filters of "
                             f"every height 1 … {max_length} over {embedding_size} columns take "
                             f"{expected}")
        model = cls(num_items, num_users, embedding_size, max_length, nv, nh, dropout,
                    config["regWeight"])
        own = {name: w for name, w in weights.items() if not name.startswith("conv_")}
        own["conv_v.weight"] = weights["conv_v.weight"].reshape(nv, 1, max_length, 1)
        own["conv_v.bias"] = weights["conv_v.bias"]
        for h in range(1, max_length + 1):
            block = packed[height_offset(nh, embedding_size, h):
                           height_offset(nh, embedding_size, h + 1)]
            own[f"conv_h.{h - 1}.weight"] = block.reshape(nh, 1, h, embedding_size)
            own[f"conv_h.{h - 1}.bias"] = weights["conv_h.bias"][h - 1]
        model.load_state_dict(own)
        return model

    def forward(self, items, users):
        """The representation [B, E] of whole windows [B, L] for their users [B]."""
        length = self.conv_v.kernel_size[0]
        if items.shape[1] != length:
            raise ValueError(f"windows of {items.shape[1]} items, but the convolutions span "
                             f"{length}: pass --max-len {length}")
        x = self.item_embedding(items).unsqueeze(1)  # [B, 1, L, E]
        out_v = self.conv_v(x).view(-1, self.nv * x.shape[3])
        out_h = []
        for conv in self.conv_h:
            conv_out = F.relu(conv(x).squeeze(3))  # [B, nh, L - h + 1]
            out_h.append(F.max_pool1d(conv_out, conv_out.size(2)).squeeze(2))
        out = self.dropout(torch.cat([out_v, torch.cat(out_h, 1)], 1))
        z = F.relu(self.fc1(out))
        return F.relu(self.fc2(torch.cat([z, self.user_embedding(users)], 1)))

    def regularization(self):
        """The sum of the unsquared Frobenius norms RecBole's Caser weights by reg_weight."""
        whole = [self.user_embedding.weight, self.item_embedding.weight, self.conv_v.weight,
                 self.fc1.weight, self.fc2.weight]
        return sum(w.norm(2) for w in whole) + sum(conv.weight.norm(2) for conv in self.conv_h)

    def training_loss(self, batch):
        """The cross-entropy of the item after each window plus reg_weight times the norms, and
        the representation."""
        h = self(batch["items"], batch["users"])
        ce = F.cross_entropy(h @ self.item_embedding.weight.t(), batch["targets"])
        return ce + self.reg_weight * self.regularization(), h

    def ranking_scores(self, batch):
        """The scores of an evaluation batch: each window with its user, against the items."""
        return self(batch["items"], batch["users"]) @ self.item_embedding.weight.t()

    def exported_gradients(self):
        """The gradients under the export's names and shapes: the vertical filters' as [nv, L],
        the horizontal filters' packed height after height, their biases as [L, nh]."""
        return {
            "user_embedding.weight": self.user_embedding.weight.grad,
            "item_embedding.weight": self.item_embedding.weight.grad,
            "conv_v.weight": self.conv_v.weight.grad.reshape(self.nv, -1),
            "conv_v.bias": self.conv_v.bias.grad,
            "conv_h.weight": torch.cat([conv.weight.grad.reshape(-1) for conv in self.conv_h]),
            "conv_h.bias": torch.stack([conv.bias.grad for conv in self.conv_h]),
            **{f"{name}.{field}": getattr(linear, field).grad
               for name, linear in [("fc1", self.fc1), ("fc2", self.fc2)]
               for field in ["weight", "bias"]},
        }


def build(weights, config, dropout):
    """The torch model from the exported weights, dropout off or as `train`'s `--dropout` says."""
    return Caser.from_weights(weights, config, 0.0 if dropout is None else dropout.dropout)


def add_dropout_arguments(parser):
    parser.add_argument("--dropout", type=float, default=0.4,
                        help="dropout on the concatenated convolution outputs (RecBole's "
                             "dropout_prob; default 0.4)")


if __name__ == "__main__":
    run_cli(__doc__, build, add_dropout_arguments)
