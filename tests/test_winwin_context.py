"""Win-Win context tokens: pooled summaries of the whole image beside the windows."""
import math

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmwinwin  # noqa: F401
from mmwinwin.layers.winwin import context_grid, pool_context_tokens

P = 8


def _reference_pool(tokens, H, W, oh, ow):
    """Adaptive average pooling written out: cell i spans rows floor(i*H/oh) ..
    ceil((i+1)*H/oh) - 1 (the same for columns); token = mean of its members, position =
    mean (y, x) of its members."""
    grid = tokens.reshape(tokens.shape[0], H, W, -1)
    toks, pos = [], []
    for i in range(oh):
        y0, y1 = (i * H) // oh, math.ceil((i + 1) * H / oh)
        for j in range(ow):
            x0, x1 = (j * W) // ow, math.ceil((j + 1) * W / ow)
            toks.append(grid[:, y0:y1, x0:x1].mean((1, 2)))
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


def test_context_tokens_settings_are_checked():
    with pytest.raises(KeyError, match="'pool'"):
        _model(dict(pol=2))
    with pytest.raises(ValueError, match='positive int'):
        _model(dict(pool=0))
