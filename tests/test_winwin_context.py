"""Win-Win context tokens: pooled summaries of the whole image beside the windows."""
import math

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmwinwin  # noqa: F401
from mmwinwin.layers.winwin import ContextTokens, context_grid, pool_context_tokens

P = 8


def _reference_pool(tokens, H, W, oh, ow, reduce='mean'):
    """Adaptive pooling written out: cell i spans rows floor(i*H/oh) .. ceil((i+1)*H/oh) - 1
    (the same for columns); token = mean (or per-channel max) of its members, position =
    mean (y, x) of its members."""
    grid = tokens.reshape(tokens.shape[0], H, W, -1)
    toks, pos = [], []
    for i in range(oh):
        y0, y1 = (i * H) // oh, math.ceil((i + 1) * H / oh)
        for j in range(ow):
            x0, x1 = (j * W) // ow, math.ceil((j + 1) * W / ow)
            cell = grid[:, y0:y1, x0:x1].flatten(1, 2)
            toks.append(cell.mean(1) if reduce == 'mean' else cell.max(1).values)
            ys = [y for y in range(y0, y1) for _ in range(x0, x1)]
            xs = [x for _ in range(y0, y1) for x in range(x0, x1)]
            pos.append((sum(ys) / len(ys), sum(xs) / len(xs)))
    return torch.stack(toks, 1), torch.tensor(pos)


@pytest.mark.parametrize('H, W, pool', [(12, 24, 4), (7, 10, 3), (5, 5, 5), (6, 9, 1)])
def test_context_tokens_pool_members_at_their_mean_positions(H, W, pool):
    torch.manual_seed(0)
    tokens = torch.randn(2, H * W, 6)
    ctx, pos = pool_context_tokens(tokens, (H, W), pool)
    oh, ow = math.ceil(H / pool), math.ceil(W / pool)
    assert context_grid((H, W), pool) == (oh, ow)
    assert ctx.shape == (2, oh * ow, 6) and pos.shape == (oh * ow, 2)
    ref_tok, ref_pos = _reference_pool(tokens, H, W, oh, ow)
    torch.testing.assert_close(ctx, ref_tok, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(pos, ref_pos.float(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('H, W, grid, reduce', [
    (12, 24, (3, 6), 'max'), (12, 24, (3, 6), 'mean'), (16, 32, (3, 6), 'max'),
    (7, 10, (3, 4), 'max'), (2, 9, (3, 6), 'mean'), (2, 9, (3, 6), 'max')])
def test_context_tokens_on_a_fixed_grid(H, W, grid, reduce):
    """grid=(rows, cols) gives that many cells at any image size (capped at the token grid: a
    2-row image gets 2 rows), each the mean or the per-channel max of its members."""
    torch.manual_seed(0)
    tokens = torch.randn(2, H * W, 6)
    spec = ContextTokens.build(dict(grid=grid, reduce=reduce))
    oh, ow = min(grid[0], H), min(grid[1], W)
    assert spec.shape((H, W)) == (oh, ow)
    ctx, pos = spec(tokens, (H, W))
    ref_tok, ref_pos = _reference_pool(tokens, H, W, oh, ow, reduce)
    torch.testing.assert_close(ctx, ref_tok, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(pos, ref_pos.float(), rtol=1e-6, atol=1e-6)


def test_max_pooled_context_keeps_a_one_token_cue():
    """The point of reduce='max': one distinct token in a 4x4 cell of zeros comes out whole
    (the mean divides it by 16)."""
    tokens = torch.zeros(1, 12 * 24, 3)
    tokens[0, 5 * 24 + 17] = torch.tensor([8.0, 0.0, 4.0])  # row 5, col 17: cell (1, 4)
    for reduce, expect in (('max', [8.0, 0.0, 4.0]), ('mean', [0.5, 0.0, 0.25])):
        ctx, _ = ContextTokens.build(dict(grid=(3, 6), reduce=reduce))(tokens, (12, 24))
        torch.testing.assert_close(ctx[0, 1 * 6 + 4], torch.tensor(expect))
        assert ctx.abs().sum() == sum(expect)


@pytest.mark.parametrize('setting, error, match', [
    (dict(pool=2, grid=(3, 6)), ValueError, 'exactly one of pool'),
    (dict(grid=(3,)), ValueError, 'two positive ints'),
    (dict(grid=(0, 6)), ValueError, 'two positive ints'),
    (dict(grid=(3.0, 6)), ValueError, 'two positive ints'),
    (dict(grid=(3, 6), reduce='median'), ValueError, "'mean'.*'max'"),
    (dict(grid=(3, 6), reduse='max'), KeyError, "Did you mean 'reduce'"),
    ([3, 6], TypeError, 'dict'),
])
def test_context_tokens_setting_errors_name_the_fix(setting, error, match):
    with pytest.raises(error, match=match):
        ContextTokens.build(setting)


def test_context_tokens_default_and_list_grid():
    """dict() keeps the historical pool=4; a grid read from a config file as a list works."""
    assert ContextTokens.build(dict()) == ContextTokens(pool=4)
    assert ContextTokens.build(dict(grid=[3, 6])).shape((45, 80)) == (3, 6)
    assert ContextTokens.build(None) is None


@pytest.mark.parametrize('pool', [0, -1, True, 2.5])
def test_context_pool_must_be_a_positive_int(pool):
    with pytest.raises(ValueError, match='positive int'):
        context_grid((4, 4), pool)


def _model(context_tokens=None):
    return MODELS.build(ConfigDict(
        type='WinWinEncoderDecoder', context_tokens=context_tokens,
        backbone=dict(type='RoPEViT', arch=dict(embed_dims=32, num_layers=2, num_heads=2),
                      patch_size=P, out_indices=(1,)),
        decode_head=dict(type='FCNHead', in_channels=32, in_index=-1, channels=16, num_convs=1,
                         num_classes=5, norm_cfg=None,
                         loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        train_cfg=dict(), test_cfg=dict(mode='whole')))


def _embed(model, img):
    proj = model.backbone.patch_embed.proj
    return torch.nn.functional.conv2d(img, proj.weight, proj.bias, stride=P)


def test_window_training_sees_windows_and_context_tokens():
    torch.manual_seed(0)
    model = _model(dict(pool=2))
    H, W = 32, 48
    wins = [(0, 0, 2, 2), (2, 3, 2, 2)]
    img = torch.randn(1, 3, H, W)
    s = SegDataSample()
    s.set_metainfo(dict(img_shape=(H, W), pad_shape=(H, W), ori_shape=(H, W),
                        winwin_windows=wins))
    s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, H, W)))
    captured = {}

    def capture(feats, data_samples):
        captured['feats'] = feats
        return {'loss_x': feats[-1].sum() * 0}

    model._decode_head_forward_train = capture
    model.loss(img, [s])
    # reference: window tokens by slicing + conv, then the whole image's embedding pooled
    # 2x2 by hand (4x6 grid -> 2x3 cells, positions at the cell centres), all through the blocks
    toks, pos = [], []
    for t, l, h, w in wins:
        emb = _embed(model, img[:, :, t * P:(t + h) * P, l * P:(l + w) * P])[0]
        toks.append(emb.reshape(32, -1).T)
        pos += [(t + i, l + j) for i in range(h) for j in range(w)]
    full = _embed(model, img)[0]  # (32, 4, 6)
    for i in range(2):
        for j in range(3):
            toks.append(full[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean((1, 2))[None])
            pos.append((2 * i + 0.5, 2 * j + 0.5))
    ref = model.backbone.forward_tokens(torch.cat(toks)[None], torch.tensor(pos)[None],
                                        (H // P, W // P))[-1]
    feats = captured['feats'][-1]
    assert feats.shape == (2, 32, 2, 2)  # the context outputs do not reach the head
    for k in range(2):
        torch.testing.assert_close(feats[k], ref[0, 4 * k:4 * k + 4].T.reshape(32, 2, 2),
                                   rtol=1e-5, atol=1e-5)


def test_whole_image_inference_with_and_without_context_tokens():
    torch.manual_seed(0)
    plain = _model()
    img = torch.randn(1, 3, 24, 40)
    # without context tokens: exactly the host's whole-image features
    torch.testing.assert_close(plain.extract_feat(img)[-1], plain.backbone(img)[-1])
    model = _model(dict(pool=3))
    model.load_state_dict(plain.state_dict())
    # (32, 3, 5) grid, pool 3 -> 1 x 2 near-equal cells: columns [0, 3) and [2, 5)
    full = _embed(model, img)[0]
    ctx = torch.stack([full[:, :, :3].mean((1, 2)), full[:, :, 2:].mean((1, 2))])
    toks = torch.cat([full.reshape(32, -1).T, ctx])[None]
    pos = [(y, x) for y in range(3) for x in range(5)] + [(1.0, 1.0), (1.0, 3.0)]
    ref = model.backbone.forward_tokens(toks, torch.tensor(pos, dtype=torch.float32)[None],
                                        (3, 5))[-1][:, :15]
    out = model.extract_feat(img)[-1]
    torch.testing.assert_close(out, ref.transpose(1, 2).reshape(1, 32, 3, 5), rtol=1e-5,
                               atol=1e-5)
    assert not torch.allclose(out, plain.extract_feat(img)[-1])  # the context is seen


def test_whole_image_inference_with_max_pooled_context_on_a_grid():
    """context_tokens=dict(grid=(1, 2), reduce='max') on a 3x5 grid: two cells, columns
    [0, 3) and [2, 5), each the per-channel max of its tokens, at its members' mean position."""
    torch.manual_seed(0)
    model = _model(dict(grid=(1, 2), reduce='max'))
    img = torch.randn(1, 3, 24, 40)
    full = _embed(model, img)[0]
    ctx = torch.stack([full[:, :, :3].amax((1, 2)), full[:, :, 2:].amax((1, 2))])
    toks = torch.cat([full.reshape(32, -1).T, ctx])[None]
    pos = [(y, x) for y in range(3) for x in range(5)] + [(1.0, 1.0), (1.0, 3.0)]
    ref = model.backbone.forward_tokens(toks, torch.tensor(pos, dtype=torch.float32)[None],
                                        (3, 5))[-1][:, :15]
    torch.testing.assert_close(model.extract_feat(img)[-1],
                               ref.transpose(1, 2).reshape(1, 32, 3, 5), rtol=1e-5, atol=1e-5)


def test_context_tokens_settings_are_checked():
    with pytest.raises(KeyError, match="'pool'"):
        _model(dict(pol=2))
    with pytest.raises(ValueError, match='positive int'):
        _model(dict(pool=0))
