"""Win-Win learns a relation *between* windows and keeps it on the whole image.

The paper's claim: tokens inside a window learn local interactions, tokens of different
windows learn global ones. Task (tokens, no images): one cue token somewhere in a 6x8 grid
carries a sign; every other token is an object whose label is that sign. Training sees two
windows of 2x2 tokens, the cue always inside the first, and is supervised on the *second*
window only, so the labels can only be learned through attention across windows. The
trained model then runs on the whole grid in one pass. A control run with attention cut
between the windows (each window alone) must stay at chance: the task needs the other window.
"""
import torch
import torch.nn as nn

from mmwinwin.layers import RoPEVisionTransformer
from mmwinwin.layers.winwin import sample_windows, window_positions

GH, GW, S = 6, 8, 2


def _sample(gen):
    """Two windows (cue inside the first), the cue's sign, per-token features."""
    wins = sample_windows((GH, GW), 2, S, generator=gen)
    t, l = wins[0][:2]
    cy = t + int(torch.randint(S, (1,), generator=gen))
    cx = l + int(torch.randint(S, (1,), generator=gen))
    sign = 1.0 if torch.rand(1, generator=gen).item() < 0.5 else -1.0
    feats = torch.zeros(GH, GW, 2)
    feats[..., 1] = 1.0  # object flag
    feats[cy, cx] = torch.tensor([sign, 0.0])
    return wins, feats, int(sign > 0), (cy, cx)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(2, 32)
        self.vit = RoPEVisionTransformer(arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                                   mlp_ratio=2.0),
                                         patch_size=16, out_indices=(1,))
        self.head = nn.Linear(32, 2)

    def forward(self, feats, pos, attn_mask=None):
        x = self.vit.prepare_tokens(self.embed(feats), pos)
        for i in range(self.vit.num_layers):
            x = self.vit.run_block(i, x, pos, attn_mask)
        return self.head(self.vit.output_tokens(self.vit.num_layers - 1, x))


def _train(cut_between_windows: bool, steps: int = 150, batch: int = 16) -> Net:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    n = S * S
    block = torch.block_diag(torch.ones(n, n), torch.ones(n, n)).bool()
    for _ in range(steps):
        xs, ps, ys = [], [], []
        for _ in range(batch):
            wins, feats, label, _ = _sample(gen)
            pos = window_positions(wins)
            xs.append(feats[pos[:, 0].long(), pos[:, 1].long()])
            ps.append(pos)
            ys.append(label)
        logits = net(torch.stack(xs), torch.stack(ps), block if cut_between_windows else None)
        target = torch.tensor(ys)[:, None].expand(-1, n)
        loss = nn.functional.cross_entropy(logits[:, n:].reshape(-1, 2), target.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def _whole_image_accuracy(net: Net, count: int = 64) -> float:
    gen = torch.Generator().manual_seed(123)
    yy, xx = torch.meshgrid(torch.arange(GH), torch.arange(GW), indexing='ij')
    pos = torch.stack([yy.reshape(-1), xx.reshape(-1)], -1).float()
    right = total = 0
    with torch.no_grad():
        for _ in range(count):
            _, feats, label, (cy, cx) = _sample(gen)
            pred = net(feats.reshape(1, -1, 2), pos[None])[0].argmax(-1)
            keep = torch.ones(GH * GW, dtype=torch.bool)
            keep[cy * GW + cx] = False
            right += int((pred[keep] == label).sum())
            total += int(keep.sum())
    return right / total


def test_winwin_learns_the_cue_across_windows_and_keeps_it_on_the_whole_image():
    acc = _whole_image_accuracy(_train(cut_between_windows=False))
    assert acc >= 0.95, f'Win-Win did not learn the cross-window cue: whole-image acc {acc:.3f}'


def test_control_without_attention_between_windows_stays_at_chance():
    acc = _whole_image_accuracy(_train(cut_between_windows=True))
    assert 0.3 <= acc <= 0.7, f'control should be at chance, got {acc:.3f}'
