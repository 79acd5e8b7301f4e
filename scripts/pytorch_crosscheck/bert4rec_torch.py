"""BERT4Rec in PyTorch, built from torch.nn modules as RecBole 1.2's BERT4Rec is specified, to check
the WebGPU implementation against an independent one on the same weights and the same masked batch.

    python bert4rec_torch.py gradients DIR   # one masked batch: loss and every gradient,
                                             # f64 and f32
    python bert4rec_torch.py train DIR [--seconds S] [--hidden-dropout P] [--attn-dropout Q]
                                             # RecBole's protocol from the same initial weights

DIR is what `deno run -A scripts/pytorch_crosscheck/export.ts --model bert4rec --out DIR` wrote:
the windows, the same windows masked as the project's training draws them for the first batch of
epoch 0, and the positions and items that enter the project's loss. The sizes (items, hidden,
inner, layers, position rows) are read from the exported weights, whose names are the torch
module's own, so they load with `load_state_dict`; the head count, the LayerNorm epsilon, the
mask ratio and the fine-tune ratio from the exported model configuration. `gradients` exits with
status 1 when the float64 loss or a float64 gradient differs by more than the limits of
`crosscheck_common.py`, and fails when the loss positions it derives differ from the exported
ones.

The model: item_embedding (n_items + 1 rows, padding_idx=0; the last row is the mask token,
id n_items) of the masked window + position_embedding(0 … L − 1) -> LayerNorm -> Dropout(P) ->
post-LN Transformer layers (SASRec's, see sasrec_torch.py) attending in both directions, the
additive mask −10000 on PAD keys only -> output_ffn -> exact GELU -> output_ln, at every position.

The loss, as RecBole's: the masked positions of each row are the ones holding the mask token;
MaskItemSequence keeps the last int(mask_ratio · L) of them (`[0] * pad + seq`, cut to the last
entries), giving masked_index and pos_items [B, int(mask_ratio · L)]; the outputs gathered there
are scored against E[:n_items] (PAD included, the mask row not) plus output_bias, and the loss is
Σ CE · t / Σ t with t = (masked_index > 0), so a masked position 0 does not count. In `gradients`
the masking draw itself (the branch, the masked positions) is the export's; `train` draws it from
torch's generator per batch: with probability ft_ratio each window's last item, else every real
position with probability mask_ratio, always replaced by the mask token. `train` ranks as RecBole's
`reconstruct_test_data` builds the evaluation input: a 0 column appended, the mask token at index
length, the first column dropped, the representation at length - 1. Fresh weights are initialised
as specified (N(0, 0.02) on every Linear and Embedding weight, PAD and mask rows included, biases
0, LayerNorm 1 and 0, output_bias 0), though both subcommands load the exported ones.
"""
from crosscheck_common import F, Module, nn, run_cli, torch
from sasrec_torch import (MASKED_SCORE, TransformerEncoder, add_transformer_dropout_arguments,
                          build_transformer, encoder_sizes, init_transformer_weights)


def bidirectional_mask(items, dtype):
    """The additive mask [B, 1, 1, L]: 0 for a key holding an item or the mask token,
    MASKED_SCORE for a PAD key; no causal part."""
    mask = torch.zeros(items.shape[0], 1, 1, items.shape[1], dtype=dtype, device=items.device)
    return mask.masked_fill((items == 0)[:, None, None, :], MASKED_SCORE)


def loss_slots(items, masked_items, mask_token, mask_item_length):
    """RecBole's masked_index and pos_items [B, mask_item_length]: each row's positions holding
    the mask token in `masked_items` and the items of `items` there, left-padded with 0 and cut to
    the last mask_item_length of them."""
    masked = masked_items == mask_token
    # Masked positions after each one in its row: the last mask_item_length have fewer than that.
    after = masked.flip(1).long().cumsum(1).flip(1) - masked.long()
    keep = masked & (after < mask_item_length)
    rows, positions = keep.nonzero(as_tuple=True)
    slots = mask_item_length - 1 - after[rows, positions]
    masked_index = torch.zeros(items.shape[0], mask_item_length, dtype=torch.long,
                               device=items.device)
    pos_items = torch.zeros_like(masked_index)
    masked_index[rows, slots] = positions
    pos_items[rows, slots] = items[rows, positions]
    return masked_index, pos_items


class BERT4Rec(Module):
    """Item plus position embedding, LayerNorm and dropout, the bidirectional Transformer
    encoder, the output head at every position; scores against E[:n_items] plus output_bias."""

    def __init__(self, num_items, max_length=50, hidden_size=64, num_layers=2, num_heads=2,
                 inner_size=256, hidden_dropout=0.2, attn_dropout=0.2, eps=1e-12,
                 mask_ratio=0.2, ft_ratio=0.5):
        super().__init__()
        self.num_items, self.mask_token = num_items, num_items
        self.mask_ratio, self.ft_ratio = mask_ratio, ft_ratio
        self.mask_item_length = int(mask_ratio * max_length)
        self.item_embedding = nn.Embedding(num_items + 1, hidden_size, padding_idx=0)
        self.position_embedding = nn.Embedding(max_length, hidden_size)
        self.trm_encoder = TransformerEncoder(num_layers, hidden_size, num_heads, inner_size,
                                              hidden_dropout, attn_dropout, eps)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = nn.Dropout(hidden_dropout)
        self.output_ffn = nn.Linear(hidden_size, hidden_size)
        self.output_gelu = nn.GELU()
        self.output_ln = nn.LayerNorm(hidden_size, eps=eps)
        self.output_bias = nn.Parameter(torch.zeros(num_items))
        init_transformer_weights(self)

    @classmethod
    def from_weights(cls, weights, config, hidden_dropout, attn_dropout):
        """The model sized by the exported weights (heads, epsilon and the masking ratios from
        `config`), holding them."""
        num_items = weights["output_bias"].shape[0]
        rows, hidden_size = weights["item_embedding.weight"].shape
        if rows != num_items + 1:
            raise ValueError(f"item_embedding.weight has {rows} rows, but output_bias scores "
                             f"{num_items} items: the embedding must have one row more, the "
                             f"mask token's")
        max_length, inner_size, num_layers = encoder_sizes(weights)
        model = cls(num_items, max_length, hidden_size, num_layers, config["numHeads"],
                    inner_size, hidden_dropout, attn_dropout, config["layerNormEps"],
                    config["maskRatio"], config["ftRatio"])
        model.load_state_dict(weights)
        return model

    def forward(self, items):
        """The output head at every position of the (masked) windows, [B, L, H]."""
        length = items.shape[1]
        rows = self.position_embedding.num_embeddings
        if length > rows:
            raise ValueError(f"windows of {length} items are longer than the position embedding "
                             f"({rows} rows)")
        positions = torch.arange(length, device=items.device)
        x = self.item_embedding(items) + self.position_embedding(positions)
        x = self.dropout(self.LayerNorm(x))
        x = self.trm_encoder(x, bidirectional_mask(items, x.dtype))
        return self.output_ln(self.output_gelu(self.output_ffn(x)))

    def scores(self, h):
        """h · E[:n_items]ᵀ + output_bias: every item, PAD included, not the mask token."""
        return h @ self.item_embedding.weight[:self.num_items].t() + self.output_bias

    def mask_batch(self, items, lengths):
        """A training batch masked as RecBole's MaskItemSequence masks it, drawn from torch's
        generator (see the module doc)."""
        positions = torch.arange(items.shape[1], device=items.device)[None, :]
        if torch.rand(()).item() < self.ft_ratio:
            chosen = positions == (lengths - 1)[:, None]
        else:
            real = positions < lengths[:, None]
            chosen = real & (torch.rand(items.shape, device=items.device) < self.mask_ratio)
        return torch.where(chosen, torch.full_like(items, self.mask_token), items)

    def training_loss(self, batch):
        """RecBole's masked-item loss (see the module doc) on the exported masked batch, or on a
        training batch masked by `mask_batch`, and the representation as the export records it:
        [h | 1] (the column that meets output_bias) at the counted positions, by row and then
        position. On the exported batch, fails when the loss positions derived here differ from
        the exported ones."""
        items = batch["items"]
        if "masked_items" in batch:
            masked_items = batch["masked_items"].view_as(items)
        else:
            masked_items = self.mask_batch(items, batch["lengths"])
        out = self(masked_items)
        masked_index, pos_items = loss_slots(items, masked_items, self.mask_token,
                                             self.mask_item_length)
        counted = masked_index > 0
        if "loss_positions" in batch:
            self.check_loss_positions(masked_index, pos_items, counted, batch)
        gathered = out.gather(1, masked_index[:, :, None].expand(-1, -1, out.shape[2]))
        ce = F.cross_entropy(self.scores(gathered).reshape(-1, self.num_items),
                             pos_items.reshape(-1), reduction="none")
        weight = counted.reshape(-1).to(ce.dtype)
        loss = (ce * weight).sum() / weight.sum()
        h = gathered[counted]
        return loss, torch.cat([h, h.new_ones(h.shape[0], 1)], dim=1)

    def ranking_scores(self, batch):
        """The scores of an evaluation batch, as RecBole's full_sort_predict: the window
        rebuilt by reconstruct_test_data (see the module doc), the output at length - 1."""
        items, lengths = batch["items"], batch["lengths"]
        rows = torch.arange(items.shape[0], device=items.device)
        window = torch.cat([items, items.new_zeros(items.shape[0], 1)], dim=1)
        window[rows, lengths] = self.mask_token
        return self.scores(self(window[:, 1:])[rows, lengths - 1])

    @staticmethod
    def check_loss_positions(masked_index, pos_items, counted, batch):
        """Fails unless the counted slots are the exported loss positions and targets (flat
        b·L + t, by row then position)."""
        length = batch["items"].shape[1]
        rows = torch.arange(masked_index.shape[0], device=masked_index.device)[:, None]
        flat = (rows * length + masked_index)[counted]
        order = torch.argsort(flat)
        derived, targets = flat[order], pos_items[counted][order]
        exported = batch["loss_positions"]
        if not (torch.equal(derived, exported) and torch.equal(targets, batch["loss_targets"])):
            raise ValueError(f"the loss positions derived from the masked windows ({len(derived)}) "
                             f"differ from the exported ones ({len(exported)}) or their targets "
                             f"do: the export's loss does not count the positions RecBole's does")


def build(weights, config, dropout):
    """The torch model from the exported weights, dropout off or as `train`'s options say."""
    return build_transformer(BERT4Rec, weights, config, dropout)


def add_dropout_arguments(parser):
    add_transformer_dropout_arguments(parser, 0.2)


if __name__ == "__main__":
    run_cli(__doc__, build, add_dropout_arguments)
