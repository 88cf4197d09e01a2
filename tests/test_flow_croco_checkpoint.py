"""CroCo / CroCo-v2 checkpoints (encoder + decoder) into CroCoFlowNet (CPU, tiny, seeded).

The reference below is written from the semantics of naver/croco (``models/blocks.py``,
``models/croco.py``, ``curope/kernels.cu``), independently of mmwinwin's modules: separate
``projq`` / ``projk`` / ``projv``, RoPE as a complex rotation of the kernel's
``[u_y, v_y, u_x, v_x]`` quarters, attention softmax written out.
"""
import argparse
import math
import os.path as osp
import warnings

import pytest
import torch
import torch.nn.functional as F

from mmwinwin.layers.flow.croco_checkpoint import (convert_croco_state_dict, croco_kwargs_of,
                                              load_croco_state_dict)
from mmwinwin.layers.flow.croco import CroCoFlowNet
from mmwinwin.layers.vit.rope import grid_positions
from mmwinwin.layers.vit.checkpoint import CheckpointMismatchError, load_vit_state_dict

PATCH = 8
ENC = dict(dim=64, depth=2, heads=2)    # head_dim 32
DEC = dict(dim=48, depth=3, heads=2)    # head_dim 24
MLP = 2


def net_cfg(enc_dim=ENC['dim'], enc_depth=ENC['depth'], enc_heads=ENC['heads'],
            dec_dim=DEC['dim'], dec_depth=DEC['depth'], dec_heads=DEC['heads'], **kw):
    return dict(encoder=dict(arch=dict(embed_dims=enc_dim, num_layers=enc_depth,
                                       num_heads=enc_heads, mlp_ratio=MLP), patch_size=PATCH),
                dec_embed_dims=dec_dim, dec_num_layers=dec_depth, dec_num_heads=dec_heads,
                dec_mlp_ratio=MLP, head_features=16, head_layer_dims=(8, 16, 32, 32), **kw)


def croco_kwargs(**over):
    kw = dict(enc_embed_dim=ENC['dim'], enc_depth=ENC['depth'], enc_num_heads=ENC['heads'],
              dec_embed_dim=DEC['dim'], dec_depth=DEC['depth'], dec_num_heads=DEC['heads'],
              mlp_ratio=MLP, patch_size=PATCH, pos_embed='RoPE100')
    kw.update(over)
    return kw


def croco_state_dict(enc_dim=ENC['dim'], enc_depth=ENC['depth'], dec_dim=DEC['dim'],
                     dec_depth=DEC['depth'], seed=0, cosine=False):
    """Random weights under the official CroCoNet key names (pre-training extras included)."""
    g = torch.Generator().manual_seed(seed)

    def lin(prefix, n_out, n_in):
        return {f'{prefix}.weight': torch.randn(n_out, n_in, generator=g) / math.sqrt(n_in),
                f'{prefix}.bias': 0.1 * torch.randn(n_out, generator=g)}

    def norm(prefix, n):
        return {f'{prefix}.weight': 1 + 0.1 * torch.randn(n, generator=g),
                f'{prefix}.bias': 0.1 * torch.randn(n, generator=g)}

    sd = {'patch_embed.proj.weight': torch.randn(enc_dim, 3, PATCH, PATCH, generator=g) / 8,
          'patch_embed.proj.bias': 0.1 * torch.randn(enc_dim, generator=g)}
    add = lambda *parts: [sd.update(part) for part in parts]
    for i in range(enc_depth):
        p = f'enc_blocks.{i}'
        add(norm(f'{p}.norm1', enc_dim), lin(f'{p}.attn.qkv', 3 * enc_dim, enc_dim),
                  lin(f'{p}.attn.proj', enc_dim, enc_dim), norm(f'{p}.norm2', enc_dim),
                  lin(f'{p}.mlp.fc1', MLP * enc_dim, enc_dim),
                  lin(f'{p}.mlp.fc2', enc_dim, MLP * enc_dim))
    sd.update(norm('enc_norm', enc_dim))
    sd['mask_token'] = torch.randn(1, 1, dec_dim, generator=g)
    sd.update(lin('decoder_embed', dec_dim, enc_dim))
    for i in range(dec_depth):
        p = f'dec_blocks.{i}'
        add(norm(f'{p}.norm1', dec_dim), lin(f'{p}.attn.qkv', 3 * dec_dim, dec_dim),
                  lin(f'{p}.attn.proj', dec_dim, dec_dim),
                  lin(f'{p}.cross_attn.projq', dec_dim, dec_dim),
                  lin(f'{p}.cross_attn.projk', dec_dim, dec_dim),
                  lin(f'{p}.cross_attn.projv', dec_dim, dec_dim),
                  lin(f'{p}.cross_attn.proj', dec_dim, dec_dim), norm(f'{p}.norm2', dec_dim),
                  norm(f'{p}.norm3', dec_dim), norm(f'{p}.norm_y', dec_dim),
                  lin(f'{p}.mlp.fc1', MLP * dec_dim, dec_dim),
                  lin(f'{p}.mlp.fc2', dec_dim, MLP * dec_dim))
    sd.update(norm('dec_norm', dec_dim))
    sd.update(lin('prediction_head', PATCH * PATCH * 3, dec_dim))
    if cosine:  # CroCo v1: fixed cosine position buffers (4 x 4 pre-training grid)
        sd['enc_pos_embed'] = torch.randn(16, enc_dim, generator=g)
        sd['dec_pos_embed'] = torch.randn(16, dec_dim, generator=g)
    return sd


def croco_checkpoint(**kw):
    return {'model': croco_state_dict(), 'croco_kwargs': croco_kwargs(**kw)}


# ----------------------------------------------------------------- independent reference
def ref_rope(t, pos, base=100.0):
    """t: (B, H, N, D); pos: (B, N, 2) (y, x). Quarters [u_y, v_y, u_x, v_x] of each head,
    (u + i v) turned by exp(i * p * base ** (-j / (D / 4)))."""
    D = t.shape[-1]
    Q = D // 4
    out = []
    for axis in (0, 1):
        u = t[..., 2 * axis * Q:2 * axis * Q + Q].double()
        v = t[..., 2 * axis * Q + Q:2 * axis * Q + 2 * Q].double()
        freq = base ** (-torch.arange(Q, dtype=torch.float64) / Q)
        angle = pos[:, None, :, axis, None].double() * freq  # (B, 1, N, Q)
        z = torch.complex(u, v) * torch.exp(1j * angle)
        out += [z.real, z.imag]
    return torch.cat(out, -1)


def ref_attention(q, k, v, proj_w, proj_b, heads, qpos, kpos):
    B, N, C = q.shape
    split = lambda t: t.reshape(B, t.shape[1], heads, C // heads).transpose(1, 2).double()
    q, k, v = ref_rope(split(q), qpos), ref_rope(split(k), kpos), split(v)
    logits = q @ k.transpose(-1, -2) / math.sqrt(C // heads)
    weights = torch.exp(logits - logits.amax(-1, keepdim=True))
    weights = weights / weights.sum(-1, keepdim=True)
    out = (weights @ v).transpose(1, 2).reshape(B, N, C)
    return out @ proj_w.double().T + proj_b.double()


def _lin(x, sd, p):
    return x @ sd[p + '.weight'].double().T + sd[p + '.bias'].double()


def _ln(x, sd, p):
    return F.layer_norm(x, x.shape[-1:], sd[p + '.weight'].double(), sd[p + '.bias'].double(),
                        eps=1e-6)


def _mlp(x, sd, p):
    return _lin(F.gelu(_lin(x, sd, p + '.fc1')), sd, p + '.fc2')


def ref_self_attention(x, sd, p, heads, pos):
    C = x.shape[-1]
    qkv = _lin(x, sd, p + '.qkv')
    q, k, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]
    return ref_attention(q, k, v, sd[p + '.proj.weight'], sd[p + '.proj.bias'], heads, pos, pos)


def ref_encoder(sd, tokens, pos, heads=ENC['heads']):
    x = tokens.double()
    for i in range(ENC['depth']):
        p = f'enc_blocks.{i}'
        x = x + ref_self_attention(_ln(x, sd, p + '.norm1'), sd, p + '.attn', heads, pos)
        x = x + _mlp(_ln(x, sd, p + '.norm2'), sd, p + '.mlp')
    return _ln(x, sd, 'enc_norm')


def ref_decoder(sd, f1, f2, pos1, pos2, heads=DEC['heads']):
    """CroCo's DecoderBlock: x += attn(norm1 x); y_ = norm_y(y); x += cross(norm2 x, y_);
    x += mlp(norm3 x); y passes through unchanged. Returns every block's output, the last
    through dec_norm."""
    x, y = _lin(f1.double(), sd, 'decoder_embed'), _lin(f2.double(), sd, 'decoder_embed')
    outs = []
    for i in range(DEC['depth']):
        p = f'dec_blocks.{i}'
        x = x + ref_self_attention(_ln(x, sd, p + '.norm1'), sd, p + '.attn', heads, pos1)
        y_ = _ln(y, sd, p + '.norm_y')
        c = p + '.cross_attn'
        x = x + ref_attention(_lin(_ln(x, sd, p + '.norm2'), sd, c + '.projq'),
                              _lin(y_, sd, c + '.projk'), _lin(y_, sd, c + '.projv'),
                              sd[c + '.proj.weight'], sd[c + '.proj.bias'], heads, pos1, pos2)
        x = x + _mlp(_ln(x, sd, p + '.norm3'), sd, p + '.mlp')
        outs.append(x)
    outs[-1] = _ln(outs[-1], sd, 'dec_norm')
    return outs


def _tokens(sd, img):
    x = F.conv2d(img, sd['patch_embed.proj.weight'], sd['patch_embed.proj.bias'], stride=PATCH)
    return x.flatten(2).transpose(1, 2)


# ----------------------------------------------------------------- tests
def test_rope_reference_is_croco_rotate_half():
    """The complex-number reference equals CroCo's pytorch RoPE2D formulation (rotate-half
    on each of the y / x halves, inv_freq = base ** (-arange(0, d, 2) / d), d = D / 2)."""
    torch.manual_seed(0)
    t, pos = torch.randn(2, 3, 5, 16).double(), torch.randint(0, 9, (2, 5, 2))
    halves = []
    for axis, part in enumerate(t.chunk(2, -1)):
        d = part.shape[-1]
        inv = 100.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
        ang = pos[:, None, :, axis, None].double() * inv
        cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
        a, b = part.chunk(2, -1)
        halves.append(part * cos + torch.cat([-b, a], -1) * sin)
    torch.testing.assert_close(ref_rope(t, pos), torch.cat(halves, -1))


def test_encoder_and_decoder_match_croco_reference():
    torch.manual_seed(0)
    net = CroCoFlowNet(**net_cfg()).eval()
    head_before = {k: v.clone() for k, v in net.state_dict().items() if k.startswith('head.')}
    ckpt = croco_checkpoint()
    sd = ckpt['model']
    report = load_croco_state_dict(net, ckpt)
    assert report['heads_verified'] and report['dropped'] == [
        'mask_token', 'prediction_head.bias', 'prediction_head.weight']
    assert report['kept_init'] == sorted(head_before)

    img1, img2 = torch.randn(2, 3, 32, 40), torch.randn(2, 3, 32, 40)
    t1, t2 = _tokens(sd, img1), _tokens(sd, img2)
    pos1 = grid_positions(4, 5).expand(2, -1, -1)
    # frame 2: other tokens at other positions, so q / k positions must not be mixed up
    perm = torch.randperm(20)[:14]
    t2, pos2 = t2[:, perm], pos1[:, perm] + torch.tensor([1.0, 2.0])
    with torch.no_grad():
        got = net.forward_tokens(t1, pos1, t2, pos2)  # hooks (0, 1, 2, 3)
    enc1, enc2 = ref_encoder(sd, t1, pos1), ref_encoder(sd, t2, pos2)
    want = [enc1] + ref_decoder(sd, enc1, enc2, pos1, pos2)
    assert net.head_hooks == (0, 1, 2, 3)
    for g, w in zip(got, want):
        torch.testing.assert_close(g.double(), w, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # same tokens through the public image path
        tok, _, _ = net.encoder.embed_image(img1)
    torch.testing.assert_close(tok, t1, atol=1e-5, rtol=1e-5)

    state = net.state_dict()
    for k, v in head_before.items():
        assert torch.equal(state[k], v), k
    for i in range(DEC['depth']):
        p, c = f'dec_blocks.{i}', f'dec_blocks.{i}.cross_attn'
        for param in ('weight', 'bias'):
            assert torch.equal(state[f'{c}.q.{param}'], sd[f'{c}.projq.{param}'])
            assert torch.equal(state[f'{c}.kv.{param}'][:DEC['dim']], sd[f'{c}.projk.{param}'])
            assert torch.equal(state[f'{c}.kv.{param}'][DEC['dim']:], sd[f'{c}.projv.{param}'])
            for name in ('norm1', 'norm2', 'norm3', 'norm_y', 'attn.qkv', 'attn.proj',
                         'cross_attn.proj', 'mlp.fc1', 'mlp.fc2'):
                assert torch.equal(state[f'{p}.{name}.{param}'], sd[f'{p}.{name}.{param}'])
    for k, v in sd.items():  # every encoder tensor was taken over unchanged
        if k.startswith(('enc_blocks.', 'enc_norm.', 'patch_embed.')):
            ours = 'encoder.' + k.replace('enc_blocks.', 'blocks.').replace('enc_norm.', 'norm.')
            assert torch.equal(state[ours], v), k
    for k in ('decoder_embed.weight', 'decoder_embed.bias', 'dec_norm.weight', 'dec_norm.bias'):
        assert torch.equal(state[k], sd[k])
    # every model tensor outside the head came from the checkpoint
    assert sorted(report['loaded']) == sorted(k for k in state if not k.startswith('head.'))


def test_offset_readout_keeps_its_init_and_module_prefix_is_stripped():
    torch.manual_seed(0)
    net = CroCoFlowNet(**net_cfg(dec_offset_readout=True))
    before = {k: v.clone() for k, v in net.state_dict().items() if 'offset_proj' in k}
    ckpt = {'model': {'module.' + k: v for k, v in croco_state_dict().items()},
            'croco_kwargs': croco_kwargs()}
    report = load_croco_state_dict(net, ckpt)
    assert set(before) <= set(report['kept_init'])
    for k, v in before.items():
        assert torch.equal(net.state_dict()[k], v)
    assert torch.equal(net.dec_blocks[0].cross_attn.q.weight,
                       croco_state_dict()['dec_blocks.0.cross_attn.projq.weight'])


def _mismatch(cfg, ckpt):
    net = CroCoFlowNet(**cfg)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as err:
        load_croco_state_dict(net, ckpt)
    for k, v in net.state_dict().items():  # nothing half-loaded
        assert torch.equal(v, before[k]), k
    return str(err.value)


def test_wrong_decoder_width_names_keys_and_the_config_fix():
    msg = _mismatch(net_cfg(dec_dim=64), croco_checkpoint())
    assert 'decoder_embed.weight: checkpoint (48, 64) vs model (64, 64)' in msg
    assert 'dec_blocks.0.attn.qkv.weight: checkpoint (144, 48) vs model (192, 64)' in msg
    assert 'dec_embed_dims=48' in msg


def test_wrong_decoder_depth_names_keys_and_the_config_fix():
    msg = _mismatch(net_cfg(dec_depth=2), croco_checkpoint())  # 3 blocks into 2
    assert 'unexpected in checkpoint' in msg and 'dec_blocks.2.attn.qkv.weight' in msg
    assert 'dec_num_layers=3' in msg
    msg = _mismatch(net_cfg(dec_depth=4), croco_checkpoint())  # 3 blocks into 4
    assert 'missing in checkpoint' in msg and 'dec_blocks.3.' in msg


def test_wider_encoder_checkpoint_into_smaller_encoder():
    """The ViT-L-into-ViT-B case, small: a 96-wide encoder into a 64-wide one."""
    ckpt = {'model': croco_state_dict(enc_dim=96),
            'croco_kwargs': croco_kwargs(enc_embed_dim=96, enc_num_heads=2)}
    msg = _mismatch(net_cfg(), ckpt)
    assert 'encoder.blocks.0.attn.qkv.weight: checkpoint (288, 96) vs model (192, 64)' in msg
    assert 'encoder 96 wide x 2 blocks' in msg and 'embed_dims=96' in msg


def test_head_count_and_rope_base_checked_from_croco_kwargs():
    msg = _mismatch(net_cfg(), croco_checkpoint(enc_num_heads=4, dec_num_heads=3))
    assert 'enc_num_heads=4' in msg and 'dec_num_heads=3' in msg
    msg = _mismatch(net_cfg(), croco_checkpoint(pos_embed='RoPE10000'))
    assert 'RoPE10000' in msg and 'rope_base=10000' in msg
    # a bare state dict cannot tell its head counts: loaded, with a warning
    with pytest.warns(UserWarning, match='head counts could not be checked'):
        report = load_croco_state_dict(CroCoFlowNet(**net_cfg()), croco_state_dict())
    assert not report['heads_verified']


def test_kwargs_from_pretraining_args_are_parsed_not_evaluated():
    args = argparse.Namespace(model="CroCoNet(enc_embed_dim=64, enc_num_heads=2, "
                                    "dec_embed_dim=48, dec_num_heads=2, pos_embed='RoPE100')")
    kw = croco_kwargs_of({'model': {}, 'args': args})
    assert kw['enc_num_heads'] == 2 and kw['pos_embed'] == 'RoPE100' and kw['mlp_ratio'] == 4
    evil = argparse.Namespace(model="CroCoNet(x=__import__('os').getcwd())")
    assert croco_kwargs_of({'model': {}, 'args': evil}) is None
    assert croco_kwargs_of({'model': {}}) is None


def test_cosine_croco_v1_loads_with_warning_and_not_croco_is_rejected():
    ckpt = {'model': croco_state_dict(cosine=True), 'croco_kwargs': croco_kwargs()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        state, dropped = convert_croco_state_dict(ckpt, CroCoFlowNet(**net_cfg()),
                                                  return_dropped=True)
    text = ' '.join(str(w.message) for w in caught)
    assert 'cosine' in text and 'RoPE only' in text
    assert {'enc_pos_embed', 'dec_pos_embed'} <= set(dropped)
    assert not any('pos_embed' in k for k in state)
    timm = {'blocks.0.attn.qkv.weight': torch.zeros(3, 1), 'norm.weight': torch.zeros(1)}
    with pytest.raises(CheckpointMismatchError, match='pretrained_encoder'):
        convert_croco_state_dict(timm)


def test_encoder_only_path_reads_croco_keys():
    """pretrained_encoder with a CroCo file: enc_blocks / enc_norm are mapped, the decoder
    and pre-training keys are dropped."""
    net = CroCoFlowNet(**net_cfg())
    sd = croco_state_dict()
    load_vit_state_dict(net.encoder, {'model': sd})
    assert torch.equal(net.encoder.blocks[1].mlp.fc2.weight, sd['enc_blocks.1.mlp.fc2.weight'])
    assert torch.equal(net.encoder.norm.bias, sd['enc_norm.bias'])


# ----------------------------------------------------------------- estimator and CLI
def _estimator_cfg(**model):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(osp.dirname(__file__), '..', 'configs', '_base_', 'models',
                                   'crocoflow_rope-vit-b16.py'))
    assert 'pretrained' in cfg.model and cfg.model.pretrained is None
    cfg.model.net = net_cfg()
    cfg.model.update(model)
    return cfg.model


def test_estimator_loads_pretrained_in_init_weights(tmp_path):
    from mmwinwin.registry import MODELS
    path = str(tmp_path / 'CroCo_V2_tiny.pth')
    ckpt = croco_checkpoint()
    ckpt['args'] = argparse.Namespace(model='CroCoNet()', lr=1e-4)  # as saved by pretrain.py
    torch.save(ckpt, path)
    model = MODELS.build(_estimator_cfg(pretrained=path))
    head = model.net.head.project[0].weight.clone()
    assert not torch.equal(model.net.dec_blocks[2].mlp.fc1.weight,
                           ckpt['model']['dec_blocks.2.mlp.fc1.weight'])
    model.init_weights()
    assert torch.equal(model.net.dec_blocks[2].mlp.fc1.weight,
                       ckpt['model']['dec_blocks.2.mlp.fc1.weight'])
    assert torch.equal(model.net.encoder.blocks[0].attn.qkv.bias,
                       ckpt['model']['enc_blocks.0.attn.qkv.bias'])
    assert torch.equal(model.net.head.project[0].weight, head)
    with pytest.raises(ValueError, match='not both'):
        MODELS.build(_estimator_cfg(pretrained=path, pretrained_encoder=path))


def test_converter_cli_round_trip(tmp_path):
    from conftest import run_tool
    from mmengine.runner import load_checkpoint
    src, dst = tmp_path / 'croco.pth', tmp_path / 'converted.pth'
    ckpt = croco_checkpoint()
    torch.save(ckpt, src)
    out = run_tool(['tools/model_converters/croco2mmwinwin.py', str(src), str(dst)])
    assert 'dropped' in out and 'mask_token' in out
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert all(k.startswith('net.') for k in saved['state_dict'])
    assert saved['meta']['croco_kwargs']['dec_num_heads'] == DEC['heads']

    from mmwinwin.models.flow import WinWinFlowEstimator
    torch.manual_seed(0)
    a = WinWinFlowEstimator(net=net_cfg())
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        load_checkpoint(a, str(dst), map_location='cpu', strict=False)
    b = CroCoFlowNet(**net_cfg())
    load_croco_state_dict(b, ckpt)
    b_state = b.state_dict()
    for k, v in a.net.state_dict().items():
        if not k.startswith('head.'):
            assert torch.equal(v, b_state[k]), k
