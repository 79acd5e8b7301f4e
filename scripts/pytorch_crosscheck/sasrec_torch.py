"""SASRec in PyTorch, built from torch.nn modules as RecBole 1.2's SASRec is specified, to check the
WebGPU implementation against an independent one on the same weights and data.

    python sasrec_torch.py gradients DIR   # one batch: loss and every gradient, f64 and f32
    python sasrec_torch.py gradients DIR --numpy-loss
                                           # one batch's loss from a float64 NumPy forward
    python sasrec_torch.py train DIR [--seconds S] [--hidden-dropout P] [--attn-dropout Q]
                                           # RecBole's protocol from the same initial weights

DIR is what `deno run -A scripts/pytorch_crosscheck/export.ts --model sasrec --out DIR` wrote. The
sizes (items, hidden, inner, layers, position rows) are read from the exported weights, whose names
are the torch module's own, so they load with `load_state_dict`; the head count and the LayerNorm
epsilon from the exported model configuration. `gradients` exits with status 1 when the float64
loss or a float64 gradient differs by more than the limits of `crosscheck_common.py`.

The model: item_embedding(seq) (padding_idx=0) + position_embedding(0 … L − 1), neither scaled ->
LayerNorm -> Dropout(P) -> post-LN Transformer layers -> the last layer's output at length - 1 ->
scores against the tied item embedding (PAD row included), F.cross_entropy. Each layer: Q, K, V =
Linear(H, H); per head softmax(Q·Kᵀ / √(H / heads) + mask) -> Dropout(Q) -> ·V, the heads
concatenated -> dense -> Dropout(P) -> LayerNorm(· + input); then dense_1 -> exact (erf) GELU ->
dense_2 -> Dropout(P) -> LayerNorm(· + input). The mask is additive: 0 where key j ≤ query i and
key j is an item, −10000 elsewhere (a PAD key or a later one). Every LayerNorm has the exported
epsilon (1e-12). Fresh weights are initialised as specified (N(0, 0.02) on every Linear and
Embedding weight, PAD row included, biases 0, LayerNorm 1 and 0), though both subcommands load the
exported ones.
"""
import math

import numpy as np

from crosscheck_common import F, Module, nn, run_cli, torch

MASKED_SCORE = -10000.0
"""What the additive attention mask adds to the score of a PAD or later key (RecBole's value)."""


def attention_mask(items, dtype):
    """The additive mask [B, 1, L, L]: 0 where query i may attend key j (j ≤ i and key j is an
    item), MASKED_SCORE elsewhere."""
    length = items.shape[1]
    causal = torch.tril(torch.ones(length, length, dtype=torch.bool, device=items.device))
    allowed = (items != 0)[:, None, None, :] & causal
    mask = torch.zeros(allowed.shape, dtype=dtype, device=items.device)
    return mask.masked_fill(~allowed, MASKED_SCORE)


class MultiHeadAttention(Module):
    """Q, K, V projections, scaled dot-product attention per head under the additive mask,
    the output projection, dropout, and the post-LN residual."""

    def __init__(self, hidden_size, num_heads, hidden_dropout, attn_dropout, eps):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"{num_heads} heads do not divide the hidden size {hidden_size}")
        self.num_heads, self.head_size = num_heads, hidden_size // num_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.attn_dropout = nn.Dropout(attn_dropout)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.out_dropout = nn.Dropout(hidden_dropout)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)

    def forward(self, x, mask):
        batch, length, hidden = x.shape

        def heads(t):  # [B, L, H] -> [B, heads, L, head_size]
            return t.view(batch, length, self.num_heads, self.head_size).transpose(1, 2)

        scores = heads(self.query(x)) @ heads(self.key(x)).transpose(-1, -2)
        probs = torch.softmax(scores / math.sqrt(self.head_size) + mask, dim=-1)
        context = self.attn_dropout(probs) @ heads(self.value(x))
        context = context.transpose(1, 2).reshape(batch, length, hidden)
        return self.LayerNorm(self.out_dropout(self.dense(context)) + x)


class FeedForward(Module):
    """dense_1, exact GELU, dense_2, dropout, and the post-LN residual."""

    def __init__(self, hidden_size, inner_size, hidden_dropout, eps):
        super().__init__()
        self.dense_1 = nn.Linear(hidden_size, inner_size)
        self.dense_2 = nn.Linear(inner_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = nn.Dropout(hidden_dropout)

    def forward(self, x):
        return self.LayerNorm(self.dropout(self.dense_2(F.gelu(self.dense_1(x)))) + x)


class TransformerLayer(Module):
    def __init__(self, hidden_size, num_heads, inner_size, hidden_dropout, attn_dropout, eps):
        super().__init__()
        self.multi_head_attention = MultiHeadAttention(hidden_size, num_heads, hidden_dropout,
                                                       attn_dropout, eps)
        self.feed_forward = FeedForward(hidden_size, inner_size, hidden_dropout, eps)

    def forward(self, x, mask):
        return self.feed_forward(self.multi_head_attention(x, mask))


class TransformerEncoder(Module):
    def __init__(self, num_layers, *layer_args):
        super().__init__()
        self.layer = nn.ModuleList(TransformerLayer(*layer_args) for _ in range(num_layers))

    def forward(self, x, mask):
        for layer in self.layer:
            x = layer(x, mask)
        return x


def init_transformer_weights(model):
    """RecBole's initialisation of its Transformer models: N(0, 0.02) on every Linear and
    Embedding weight (PAD row included), Linear biases 0, LayerNorms left at 1 and 0."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)


def encoder_sizes(weights):
    """The position rows, the feed-forward inner width and the layer count of exported
    Transformer weights."""
    max_length = weights["position_embedding.weight"].shape[0]
    inner_size = weights["trm_encoder.layer.0.feed_forward.dense_1.weight"].shape[0]
    num_layers = sum(1 for name in weights
                     if name.startswith("trm_encoder.layer.") and name.endswith("query.weight"))
    return max_length, inner_size, num_layers


def build_transformer(cls, weights, config, dropout):
    """`cls.from_weights` on the exported weights, dropout off (`dropout` None) or as `train`'s
    options say."""
    if dropout is None:
        return cls.from_weights(weights, config, 0.0, 0.0)
    return cls.from_weights(weights, config, dropout.hidden_dropout, dropout.attn_dropout)


def add_transformer_dropout_arguments(parser, default):
    """`train`'s dropout options of a Transformer model, both `default` unless given."""
    parser.add_argument("--hidden-dropout", type=float, default=default,
                        help="dropout on the embeddings and after each projection and "
                             f"feed-forward (RecBole's hidden_dropout_prob; default {default})")
    parser.add_argument("--attn-dropout", type=float, default=default,
                        help="dropout on the attention probabilities (attn_dropout_prob; "
                             f"default {default})")


class SASRec(Module):
    """Item plus position embedding, LayerNorm and dropout, the Transformer encoder, the output at
    each sequence's last item, the tied item embedding as output."""

    def __init__(self, num_items, max_length=50, hidden_size=64, num_layers=2, num_heads=2,
                 inner_size=256, hidden_dropout=0.5, attn_dropout=0.5, eps=1e-12):
        super().__init__()
        self.item_embedding = nn.Embedding(num_items, hidden_size, padding_idx=0)
        self.position_embedding = nn.Embedding(max_length, hidden_size)
        self.trm_encoder = TransformerEncoder(num_layers, hidden_size, num_heads, inner_size,
                                              hidden_dropout, attn_dropout, eps)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = nn.Dropout(hidden_dropout)
        init_transformer_weights(self)

    @classmethod
    def from_weights(cls, weights, config, hidden_dropout, attn_dropout):
        """The model sized by the exported weights (heads and epsilon from `config`), holding
        them."""
        num_items, hidden_size = weights["item_embedding.weight"].shape
        max_length, inner_size, num_layers = encoder_sizes(weights)
        model = cls(num_items, max_length, hidden_size, num_layers, config["numHeads"],
                    inner_size, hidden_dropout, attn_dropout, config["layerNormEps"])
        model.load_state_dict(weights)
        return model

    def forward(self, items, lengths):
        length = items.shape[1]
        rows = self.position_embedding.num_embeddings
        if length > rows:
            raise ValueError(f"windows of {length} items are longer than the position embedding "
                             f"({rows} rows); pass --max-len {rows} or less")
        positions = torch.arange(length, device=items.device)
        x = self.item_embedding(items) + self.position_embedding(positions)
        x = self.dropout(self.LayerNorm(x))
        x = self.trm_encoder(x, attention_mask(items, x.dtype))
        return x[torch.arange(len(lengths), device=x.device), lengths - 1]


def build(weights, config, dropout):
    """The torch model from the exported weights, dropout off or as `train`'s options say."""
    return build_transformer(SASRec, weights, config, dropout)


def add_dropout_arguments(parser):
    add_transformer_dropout_arguments(parser, 0.5)


def numpy_layer_norm(x, weight, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * weight + bias


def numpy_gelu(x):
    """Exact GELU, x · Φ(x) with the error function."""
    erf = np.frompyfunc(math.erf, 1, 1)(x / math.sqrt(2.0)).astype(np.float64)
    return x * 0.5 * (1.0 + erf)


def numpy_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def numpy_representation(weights, config, items, lengths):
    """SASRec's representation [B, H] in float64 NumPy, dropout off."""
    w = weights
    eps, heads = config["layerNormEps"], config["numHeads"]
    batch, length = items.shape
    linear = lambda x, name: x @ w[f"{name}.weight"].T + w[f"{name}.bias"]
    norm = lambda x, name: numpy_layer_norm(x, w[f"{name}.weight"], w[f"{name}.bias"], eps)
    x = norm(w["item_embedding.weight"][items] + w["position_embedding.weight"][:length],
             "LayerNorm")
    hidden = x.shape[-1]
    size = hidden // heads
    allowed = (items != 0)[:, None, None, :] & np.tri(length, dtype=bool)
    mask = np.where(allowed, 0.0, MASKED_SCORE)
    split = lambda t: t.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)
    for i in range(config["numLayers"]):
        attn = f"trm_encoder.layer.{i}.multi_head_attention"
        ffn = f"trm_encoder.layer.{i}.feed_forward"
        q, k, v = (split(linear(x, f"{attn}.{p}")) for p in ["query", "key", "value"])
        probs = numpy_softmax(q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + mask)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        a = norm(linear(context, f"{attn}.dense") + x, f"{attn}.LayerNorm")
        f = linear(numpy_gelu(linear(a, f"{ffn}.dense_1")), f"{ffn}.dense_2")
        x = norm(f + a, f"{ffn}.LayerNorm")
    return x[np.arange(batch), lengths - 1]


if __name__ == "__main__":
    run_cli(__doc__, build, add_dropout_arguments, numpy_representation)
