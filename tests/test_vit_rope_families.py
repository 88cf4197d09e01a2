"""Pretrained RoPE ViT families (layers/vit/rope_families.py): DINOv3's RoPE convention,
register tokens and layer scale, checked against timm's independent implementation
(``timm.models.eva``, a test dependency only), its checkpoints in timm's and the upstream
release layout, Win-Win window positions and Expedite cluster positions, and the errors
for checkpoints of another size, family or RoPE convention."""
import math

import pytest
import torch
from mmengine.registry import DefaultScope

import mmwinwin  # noqa: F401
from mmwinwin.layers import CheckpointMismatchError, RoPEVisionTransformer, load_vit_state_dict
from mmwinwin.layers.vit.rope_families import DINOv3RoPE, FAMILY_PRESETS, dinov3_coordinates

try:
    import timm
except ImportError:  # the tests that compare against timm skip; the others run
    timm = None
needs_timm = pytest.mark.skipif(
    timm is None, reason='timm (a test dependency: pip install -e .[tests]) is the independent '
    'reference for the pretrained families')

SMALL = dict(embed_dims=64, num_layers=3, num_heads=4)
DINOV3_OPTS = dict(rope_type='dinov3', num_reg_tokens=4, with_cls_token=True,
                   layer_scale_init=1e-5, mask_k_bias=True, norm_eps=1e-5)
EVA02_OPTS = dict(patch_size=14, rope_type='eva02', rope_base=10000.0, rope_ref_grid=(16, 16),
                  with_cls_token=True, use_abs_pos_embed=True, img_size=224,
                  pos_embed_antialias=True, mask_k_bias=True)
EVA02_SMALL = dict(SMALL, mlp_ratio=4 * 2 / 3)


def _timm_dinov3(qkv_bias: bool = True, seed: int = 0, swiglu: bool = False, **kwargs):
    """timm's DINOv3 S/16 (S+/16 with SwiGLU) shrunk to SMALL, with every 1-D parameter
    (layer scale, biases, norms, tokens) randomised so that each of them shows."""
    torch.manual_seed(seed)
    name = 'vit_small_plus_patch16_dinov3' if swiglu else 'vit_small_patch16_dinov3'
    name += '_qkvb' if qkv_bias else ''
    args = dict(embed_dim=SMALL['embed_dims'], depth=SMALL['num_layers'],
                num_heads=SMALL['num_heads'], num_classes=0)
    args.update(kwargs)
    model = timm.create_model(name, pretrained=False, **args).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() < 2 or p.shape[0] == 1:
                p.normal_(0.0, 0.3)
    return model


def _upstream_layout(timm_state: dict, head_dim: int, base: float = 100.0) -> dict:
    """timm's DINOv3 keys written back in the upstream release layout (hub files):
    ``storage_tokens``, ``ls1/ls2.gamma``, one ``qkv.bias`` whose key third is masked
    by ``bias_mask`` (filled with noise here: it must not count), ``rope_embed.periods``
    and the pre-training ``mask_token``."""
    out = {}
    for k, v in timm_state.items():
        if k.endswith('.attn.k_bias') or k.endswith('.attn.v_bias'):
            continue
        if k.endswith('.attn.q_bias'):
            v_bias = timm_state[k.replace('q_bias', 'v_bias')]
            out[k.replace('q_bias', 'qkv.bias')] = torch.cat([v, torch.randn_like(v), v_bias])
            mask = torch.ones(3 * v.numel())
            mask[v.numel():2 * v.numel()] = 0
            out[k.replace('q_bias', 'qkv.bias_mask')] = mask
            continue
        k = k.replace('reg_token', 'storage_tokens').replace('gamma_1', 'ls1.gamma')
        k = k.replace('mlp.fc1_g.', 'mlp.w1.').replace('mlp.fc1_x.', 'mlp.w2.')
        if 'mlp.w1.' in k or 'mlp.w2.' in k or k.replace('fc2', 'fc1_g') in timm_state:
            k = k.replace('mlp.fc2.', 'mlp.w3.')  # upstream SwiGLUFFN: w1 gate, w2, w3 out
        out[k.replace('gamma_2', 'ls2.gamma')] = v
    j = torch.arange(head_dim // 4, dtype=torch.float32)
    out['rope_embed.periods'] = (base ** (4 * j / head_dim)).to(torch.bfloat16)
    out['mask_token'] = torch.zeros(1, timm_state['cls_token'].shape[-1])
    return out


def _timm_features(model, img: torch.Tensor, blocks) -> dict:
    """timm's patch tokens after ``blocks`` (no norm) and after the final norm ('last'),
    each as (B, C, h, w)."""
    got = {}
    hooks = [model.blocks[i].register_forward_hook(
        lambda mod, inp, out, i=i: got.__setitem__(i, out)) for i in blocks]
    try:
        got['last'] = model.forward_features(img)
    finally:
        for h in hooks:
            h.remove()
    h, w = img.shape[2] // 16, img.shape[3] // 16
    n = model.num_prefix_tokens
    return {k: v[:, n:].transpose(1, 2).reshape(v.shape[0], -1, h, w) for k, v in got.items()}


def _build_registered(path: str, **kwargs):
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(dict(type='RoPEViT', arch=SMALL, out_indices=(0, 1, 2),
                                  init_cfg=dict(type='Pretrained', checkpoint=path),
                                  **DINOV3_OPTS, **kwargs))
    model.init_weights()
    return model.eval()


# ------------------------------------------------------------------ the RoPE convention
def test_dinov3_rope_rotates_as_written_in_the_paper():
    """Independent formula: channel k pairs with k + D/2 as a complex number, turned by
    2 pi c / base**(4 j / D), j = k for y (k < D/4) and k - D/4 for x."""
    torch.manual_seed(0)
    D, base = 16, 100.0
    rope = DINOv3RoPE(D, base)
    pos = torch.tensor([[0., 0.], [2., 5.], [3.25, 1.5]])
    grid = (4, 6)
    coords = torch.stack([(pos[:, 0] + 0.5) / grid[0] * 2 - 1,
                          (pos[:, 1] + 0.5) / grid[1] * 2 - 1], -1)
    torch.testing.assert_close(dinov3_coordinates(pos, grid), coords)
    x = torch.randn(1, 2, 3, D)
    out = rope(x, coords)
    z = torch.complex(x[..., :D // 2].double(), x[..., D // 2:].double())
    angle = torch.zeros(3, D // 2, dtype=torch.float64)
    for k in range(D // 2):
        axis, j = (0, k) if k < D // 4 else (1, k - D // 4)
        angle[:, k] = 2 * math.pi * coords[:, axis].double() / base ** (4 * j / D)
    ref = z * torch.polar(torch.ones_like(angle), angle)
    torch.testing.assert_close(out, torch.cat([ref.real, ref.imag], -1).float(),
                               atol=1e-5, rtol=1e-5)


def test_dinov3_forward_tokens_needs_the_full_grid():
    model = RoPEVisionTransformer(arch=SMALL, **DINOV3_OPTS)
    with pytest.raises(ValueError, match='grid_size'):
        model.forward_tokens(torch.randn(1, 4, 64), torch.zeros(4, 2))


# ----------------------------------------------------------------- equality with timm
@needs_timm
@pytest.mark.parametrize('layout', ['timm', 'timm-no-qkv-bias', 'upstream', 'timm-swiglu',
                                    'upstream-swiglu'])
def test_dinov3_matches_timm(tmp_path, layout):
    """A checkpoint of timm's DINOv3 (random weights; S/16 or, -swiglu, S+/16), written
    in timm's or the upstream layout and read back through init_cfg, gives timm's patch
    tokens of every block (the last one normed) at square and non-square sizes, and the
    same gradients."""
    swiglu = layout.endswith('-swiglu')
    ref = _timm_dinov3(qkv_bias=layout != 'timm-no-qkv-bias', swiglu=swiglu)
    state = ref.state_dict()
    if layout.startswith('upstream'):
        state = _upstream_layout(state, SMALL['embed_dims'] // SMALL['num_heads'])
    path = str(tmp_path / f'dinov3_{layout}.pth')
    torch.save({'model': state} if layout.startswith('timm') else state, path)
    model = _build_registered(path, **(dict(mlp_type='swiglu', swiglu_align_to=8)
                                       if swiglu else {}))
    for hw in [(64, 64), (48, 80), (96, 32)]:
        img = torch.randn(2, 3, *hw)
        want = _timm_features(ref, img, blocks=(0, 1))
        got = model(img)
        for k, out in zip((0, 1, 'last'), got):
            torch.testing.assert_close(out, want[k], atol=1e-5, rtol=1e-5,
                                       msg=lambda m: f'{layout} {hw} block {k}: {m}')
    # gradients: of the input and of the first block's qkv weight
    img = torch.randn(1, 3, 48, 80)
    weight = torch.randn(1, SMALL['embed_dims'], 3, 5)
    grads = []
    for net, feats in ((ref, lambda x: _timm_features(ref, x, ())['last']),
                       (model, lambda x: model(x)[-1])):
        net.zero_grad()
        x = img.clone().requires_grad_(True)
        (feats(x) * weight).sum().backward()
        grads.append((x.grad, net.blocks[0].attn.qkv.weight.grad))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@needs_timm
def test_dinov3_presets_are_the_released_shapes():
    """Each preset takes timm's full-size model's state dict with no missing or
    unexpected key (S/16 also runs and matches)."""
    for name, timm_name in (('dinov3-vits16', 'vit_small_patch16_dinov3_qkvb'),
                            ('dinov3-vitb16', 'vit_base_patch16_dinov3'),
                            ('dinov3-vitl16', 'vit_large_patch16_dinov3'),
                            ('dinov3-vits16plus', 'vit_small_plus_patch16_dinov3'),
                            ('dinov3-vith16plus', 'vit_huge_plus_patch16_dinov3_qkvb')):
        assert name in FAMILY_PRESETS
        device = 'cpu' if name == 'dinov3-vits16' else 'meta'  # B / L: shapes only, fast
        with torch.device(device):
            ref = timm.create_model(timm_name, pretrained=False, num_classes=0).eval()
            model = RoPEVisionTransformer(arch=name).eval()
        assert model.patch_size == 16 and model.num_prefix_tokens == 5
        assert load_vit_state_dict(model, ref.state_dict()) == dict(missing=[], unexpected=[])
        if name == 'dinov3-vits16':
            img = torch.randn(1, 3, 32, 48)
            torch.testing.assert_close(model(img)[0], _timm_features(ref, img, ())['last'],
                                       atol=1e-5, rtol=1e-5)
        del ref, model


def test_preset_rejects_a_conflicting_family_option():
    with pytest.raises(ValueError, match="patch_size=16.*patch_size=14"):
        RoPEVisionTransformer(arch='dinov3-vits16', patch_size=14)
    # an option that agrees with the preset is fine
    assert RoPEVisionTransformer(arch='dinov3-vits16', rope_type='dinov3').rope_type == 'dinov3'


# ------------------------------------------------------- Win-Win windows and Expedite
def test_winwin_window_tokens_keep_full_image_angles():
    """A Win-Win window's tokens, embedded and run alone, are rotated by the same
    angles as the same tokens inside the full image (coordinates normalised by the
    full image, not the window)."""
    from mmwinwin.layers.winwin.windows import embed_windows
    torch.manual_seed(0)
    model = RoPEVisionTransformer(arch=SMALL, **DINOV3_OPTS).eval()
    img = torch.randn(1, 3, 96, 128)
    grid = (6, 8)
    win = (1, 2, 3, 3)  # (y, x, h, w) in tokens
    _, wpos = embed_windows(model.patch_embed, img, [[win]], 16)
    full_pos = model.embed_image(img)[1]
    index = [(win[0] + i) * grid[1] + win[1] + j for i in range(win[2]) for j in range(win[3])]
    q_full = torch.randn(1, 4, grid[0] * grid[1], 16)
    rot_full = model.rope(q_full, model.rope_positions(full_pos, grid))[:, :, index]
    rot_win = model.rope(q_full[:, :, index], model.rope_positions(wpos, grid))
    torch.testing.assert_close(rot_win, rot_full, atol=1e-6, rtol=1e-6)
    # normalising by the window instead would be a different rotation
    rot_wrong = model.rope(q_full[:, :, index], model.rope_positions(wpos - wpos.amin(1),
                                                                     win[2:]))
    assert (rot_wrong - rot_full).abs().max() > 1e-2
    # and the registered Win-Win path hands forward_tokens the full grid
    tok, pos = embed_windows(model.patch_embed, img, [[win]], 16)
    out = model.forward_tokens(tok, pos, grid)[-1]
    assert out.shape == (1, 9, SMALL['embed_dims'])


def test_expedite_clusters_carry_weighted_mean_coordinates():
    """Clustering the DINOv3 coordinates gives the coordinates of the clusters' mean
    token positions (the map is affine), and an expedited forward that clusters after
    the last block equals the plain forward."""
    from mmwinwin.layers.expedite import ExpediteSettings, cluster_sequence, \
        expedited_forward_tokens
    torch.manual_seed(0)
    model = RoPEVisionTransformer(arch=SMALL, **DINOV3_OPTS).eval()
    tokens, pos, grid = model.embed_image(torch.randn(1, 3, 128, 128))
    x = model.prepare_tokens(tokens, pos, grid)
    settings = ExpediteSettings(alpha=1, cluster_grid=(4, 4), k=4)
    _, cpos, _, _ = cluster_sequence(x, model.num_prefix_tokens, grid, settings, pos=pos)
    _, ccoords, _, _ = cluster_sequence(x, model.num_prefix_tokens, grid, settings,
                                        pos=model.rope_positions(pos, grid))
    torch.testing.assert_close(ccoords, dinov3_coordinates(cpos, grid), atol=1e-5, rtol=1e-5)
    late = ExpediteSettings(alpha=SMALL['num_layers'], cluster_grid=(4, 4), k=4)
    outs, _ = expedited_forward_tokens(model, tokens, pos, grid, late)
    torch.testing.assert_close(outs[-1], model.forward_tokens(tokens, pos, grid)[-1])
    outs, _ = expedited_forward_tokens(model, tokens, pos, grid, settings)
    assert outs[-1].shape == (1, 64, SMALL['embed_dims']) and torch.isfinite(outs[-1]).all()


# ------------------------------------------------------------------------- errors
@needs_timm
def test_wrong_size_names_the_preset():
    ref = _timm_dinov3()
    model = RoPEVisionTransformer(arch=dict(embed_dims=128, num_layers=3, num_heads=4),
                                  **DINOV3_OPTS)
    with pytest.raises(CheckpointMismatchError, match='width 64, depth 3'):
        load_vit_state_dict(model, ref.state_dict())
    with torch.device('meta'):  # shapes only
        small = timm.create_model('vit_small_patch16_dinov3', pretrained=False, num_classes=0)
        base = RoPEVisionTransformer(arch='dinov3-vitb16')
    with pytest.raises(CheckpointMismatchError, match="arch='dinov3-vits16'"):
        load_vit_state_dict(base, small.state_dict())


@needs_timm
def test_wrong_family_is_named():
    ref = _timm_dinov3()
    with pytest.raises(CheckpointMismatchError, match='Wrong family.*DINOv3'):
        load_vit_state_dict(RoPEVisionTransformer(arch=SMALL), ref.state_dict())
    plain = timm.create_model('vit_small_patch16_224', pretrained=False, num_classes=0,
                              embed_dim=64, depth=3, num_heads=4)
    model = RoPEVisionTransformer(arch=SMALL, **DINOV3_OPTS)
    with pytest.raises(CheckpointMismatchError, match='Wrong family.*without register'):
        load_vit_state_dict(model, plain.state_dict())


@needs_timm
def test_wrong_rope_convention_is_named():
    ref = _timm_dinov3()
    state = _upstream_layout(ref.state_dict(), 16, base=10000.0)
    model = RoPEVisionTransformer(arch=SMALL, **DINOV3_OPTS)
    with pytest.raises(CheckpointMismatchError, match='Wrong RoPE convention.*rope_base'):
        load_vit_state_dict(model, state)


def _run_converter(monkeypatch, *args):
    """tools/model_converters/rope_family2mmwinwin.py's main(), in this process (fast)."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).parents[1] / 'tools/model_converters/rope_family2mmwinwin.py'
    spec = importlib.util.spec_from_file_location('rope_family2mmwinwin', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr('sys.argv', ['rope_family2mmwinwin.py', *map(str, args)])
    tool.main()


@needs_timm
def test_converter_tool_reads_upstream_release_layout(tmp_path, monkeypatch, capsys):
    """tools/model_converters/rope_family2mmwinwin.py: an upstream-layout ViT-S/16 file becomes
    a checkpoint that the registered dinov3-vits16 backbone reads, giving timm's tokens;
    a file of another family stops with the reason."""
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    ref = timm.create_model('vit_small_patch16_dinov3_qkvb', pretrained=False,
                            num_classes=0).eval()
    with torch.no_grad():
        for p in ref.parameters():
            if p.dim() < 2 or p.shape[0] == 1:
                p.normal_(0.0, 0.3)
    src, dst = tmp_path / 'dinov3_vits16_pretrain.pth', tmp_path / 'converted.pth'
    torch.save(_upstream_layout(ref.state_dict(), 64), src)
    _run_converter(monkeypatch, src, dst)
    assert 'arch dinov3-vits16' in capsys.readouterr().out
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert saved['meta']['arch'] == 'dinov3-vits16'
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(dict(type='RoPEViT', arch='dinov3-vits16',
                                  init_cfg=dict(type='Pretrained', checkpoint=str(dst))))
    model.init_weights()
    img = torch.randn(1, 3, 32, 48)
    torch.testing.assert_close(model.eval()(img)[0], _timm_features(ref, img, ())['last'],
                               atol=1e-5, rtol=1e-5)
    plain = tmp_path / 'plain.pth'
    torch.save(timm.create_model('vit_tiny_patch16_224', pretrained=False).state_dict(), plain)
    with pytest.raises(SystemExit, match='not DINOv3, EVA-02'):
        _run_converter(monkeypatch, plain, tmp_path / 'x.pth')
    # an EVA-02 S/14 in the upstream layout: the tiny preset is told apart by width
    torch.manual_seed(0)
    eva = timm.create_model('eva02_tiny_patch14_224', pretrained=False, num_classes=0).eval()
    src = tmp_path / 'eva02_Ti_pt_in21k_p14.pt'
    torch.save({'module': _eva02_upstream_layout(eva.state_dict())}, src)
    capsys.readouterr()
    _run_converter(monkeypatch, src, dst)
    assert 'arch eva02-vitt14' in capsys.readouterr().out
    model = RoPEVisionTransformer(arch='eva02-vitt14').eval()
    load_vit_state_dict(model, torch.load(dst, map_location='cpu', weights_only=True))
    img = torch.randn(1, 3, 98, 70)
    want = eva.fc_norm(eva.forward_features(torch.nn.functional.interpolate(img, (224, 224))))
    torch.testing.assert_close(model(torch.nn.functional.interpolate(img, (224, 224)))[0],
                               want[:, 1:].transpose(1, 2).reshape(1, -1, 16, 16),
                               atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------- training set-up, configs
def test_layer_decay_treats_register_tokens_like_the_cls_token():
    """Register tokens are embeddings: the embedding layer's rate and no weight decay
    (lr 0.5 ** (3 + 1) for a 3-block backbone); layer scale is per block, not decayed."""
    from mmengine.optim import build_optim_wrapper

    class Segmentor(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = RoPEVisionTransformer(arch=SMALL, **DINOV3_OPTS)
            self.decode_head = torch.nn.Conv2d(64, 4, 1)

    model = Segmentor()
    with DefaultScope.overwrite_default_scope('mmseg'):
        wrapper = build_optim_wrapper(model, dict(
            type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
            constructor='ViTLayerDecayOptimizerConstructor', paramwise_cfg=dict(decay_rate=0.5)))
    names = {id(p): n for n, p in model.named_parameters()}
    got = {names[id(p)]: (g['lr'], g['weight_decay'])
           for g in wrapper.optimizer.param_groups for p in g['params']}
    assert got['backbone.reg_token'] == (0.5 ** 4, 0.0)
    assert got['backbone.cls_token'] == (0.5 ** 4, 0.0)
    assert got['backbone.blocks.1.ls1.gamma'] == (0.5 ** 2, 0.0)


@pytest.mark.parametrize('arch,window,crop', [('dinov3-vitb16', 12, 272),
                                               ('eva02-vitb14', 13, 252),
                                               ('naver-rope-mixed-vitb16', 12, 272),
                                               ('pe-spatial-vitb16', 12, 272)])
def test_pretrained_family_ade20k_configs_build(arch, window, crop):
    """The Win-Win config of each family's ViT-B and its two baselines build; the backbone
    is the family preset with a Pretrained init; Win-Win samples 2 windows of the named
    size with the family's patch size; the crop baseline crops to the named size."""
    import os.path as osp

    from mmengine.config import Config
    root = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'winwin')
    token = arch
    names = [f'winwin-2x{window}_upernet_{token}_8xb2-160k_ade20k-512x512.py',
             f'upernet_{token}_fullres_8xb2-160k_ade20k-512x512.py',
             f'upernet_{token}_crop{crop}_8xb2-160k_ade20k-512x512.py']
    for name in names:
        cfg = Config.fromfile(osp.join(root, name))
        bb = cfg.model.backbone
        assert bb.type == 'RoPEViT' and bb.arch == arch, name
        assert bb.init_cfg.type == 'Pretrained' and set(bb) >= {'out_indices'}
        assert cfg.optim_wrapper.constructor == 'ViTLayerDecayOptimizerConstructor'
        assert cfg.model.test_cfg.mode == 'whole'
    crop_cfg = Config.fromfile(osp.join(root, names[2]))
    assert crop_cfg.model.data_preprocessor.size == (crop, crop)
    assert crop_cfg.train_dataloader.dataset.pipeline[3].crop_size == (crop, crop)
    cfg = Config.fromfile(osp.join(root, names[0]))
    assert cfg.model.type == 'WinWinEncoderDecoder'
    windows = cfg.train_dataloader.dataset.pipeline[-2]
    preset = FAMILY_PRESETS[arch]
    assert (windows.type, windows.num_windows, windows.window_size) == \
        ('WinWinWindows', 2, window)
    assert windows.patch_size == FAMILY_PRESETS[arch]['patch_size']  # stated, the backbone's
    with torch.device('meta'):  # the whole ViT-B segmentor builds (shapes only)
        from mmseg.registry import MODELS
        with DefaultScope.overwrite_default_scope('mmseg'):
            model = MODELS.build(cfg.model)
    assert model.backbone.rope_type == preset['rope_type']
    assert model.backbone.patch_size == preset['patch_size']


@pytest.mark.parametrize('dataset,window,crop,sched', [('cityscapes-1024x2048', 32, 720, '80k'),
                                                        ('bdd100k-720x1280', 22, 496, '80k')])
def test_dinov3_driving_configs_are_the_rope_vit_recipe_with_dinov3(dataset, window, crop,
                                                                      sched):
    """Cityscapes / BDD100K: the DINOv3 ViT-B/16 Win-Win config and its full-resolution and
    crop baselines are the RoPE ViT-B/16 configs with only the backbone swapped (the shared
    DINOv3 backbone base); the Win-Win model builds with the DINOv3 preset."""
    import os.path as osp

    from mmengine.config import Config
    root = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'winwin')
    pairs = [(f'winwin-2x{window}_upernet_{a}_8xb2-{sched}_{dataset}.py')
             for a in ('dinov3-vitb16', 'rope-vit-b16')]
    pairs = [pairs] + [[f'upernet_{a}_{kind}_8xb2-{sched}_{dataset}.py'
                        for a in ('dinov3-vitb16', 'rope-vit-b16')]
                       for kind in ('fullres', f'crop{crop}')]
    for ours_name, theirs_name in pairs:
        ours = Config.fromfile(osp.join(root, ours_name)).to_dict()
        theirs = Config.fromfile(osp.join(root, theirs_name)).to_dict()
        bb = ours['model'].pop('backbone')
        theirs['model'].pop('backbone')
        assert bb['arch'] == 'dinov3-vitb16' and bb['init_cfg']['type'] == 'Pretrained'
        for key in ('model', 'train_dataloader', 'val_dataloader', 'optim_wrapper',
                    'param_scheduler', 'train_cfg'):
            assert ours[key] == theirs[key], (ours_name, key)
    cfg = Config.fromfile(osp.join(root, pairs[0][0]))
    assert cfg.model.type == 'WinWinEncoderDecoder'
    with torch.device('meta'):
        from mmseg.registry import MODELS
        with DefaultScope.overwrite_default_scope('mmseg'):
            model = MODELS.build(cfg.model)
    assert model.backbone.rope_type == 'dinov3' and model.backbone.num_reg_tokens == 4


@pytest.mark.parametrize('family', ['dinov3', 'eva02'])
def test_winwin_segmentor_trains_a_family_backbone_on_windows(family):
    """A Win-Win loss step on a tiny DINOv3 / EVA-02 backbone: the window features are
    the windows' patch tokens only (register / cls tokens are prefix tokens, never
    windowed), and the family's own parameters learn (DINOv3: register tokens, layer
    scale; EVA-02: the absolute position embedding, read at full-image positions)."""
    from mmengine.config import ConfigDict
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    if family == 'dinov3':
        backbone = dict(type='RoPEViT', arch=SMALL, out_indices=(2,), **DINOV3_OPTS)
    else:
        backbone = dict(type='RoPEViT', arch=EVA02_SMALL, out_indices=(2,), mlp_type='swiglu',
                        **EVA02_OPTS)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(ConfigDict(
            type='WinWinEncoderDecoder',
            backbone=backbone,
            decode_head=dict(type='FCNHead', in_channels=64, in_index=-1, channels=16,
                             num_convs=1, num_classes=5, norm_cfg=None,
                             loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
            train_cfg=dict(), test_cfg=dict(mode='whole')))
    p = model.backbone.patch_size
    H, W = 6 * p, 8 * p
    samples = []
    for wins in ([(0, 0, 3, 3), (3, 4, 3, 3)], [(2, 1, 3, 3), (0, 5, 3, 3)]):
        s = SegDataSample()
        s.set_metainfo(dict(img_shape=(H, W), pad_shape=(H, W), ori_shape=(H, W),
                            winwin_windows=wins))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, H, W)))
        samples.append(s)
    img = torch.randn(2, 3, H, W)
    feats = model._window_feats(img, [s.winwin_windows for s in samples])
    assert [tuple(f[0].shape) for f in feats[0]] == [(64, 3, 3), (64, 3, 3)]
    losses = model.loss(img, samples)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    if family == 'dinov3':
        assert model.backbone.reg_token.grad.abs().sum() > 0
        assert model.backbone.blocks[0].ls1.gamma.grad.abs().sum() > 0
    else:
        assert model.backbone.pos_embed.grad.abs().sum() > 0
        assert model.backbone.blocks[0].mlp.fc1_g.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        out = model.inference(img, [dict(img_shape=(H, W), ori_shape=(H, W),
                                         pad_shape=(H, W))] * 2)
    assert out.shape == (2, 5, H, W)


# --------------------------------------------------------------------------- EVA-02


def _timm_eva02(name: str, seed: int = 0):
    """timm's EVA-02 (S: fused qkv, packed SwiGLU; B: q/k/v projections, SwiGLU with a
    LayerNorm inside) shrunk to SMALL, any input size, 1-D parameters randomised."""
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, num_classes=0, embed_dim=64, depth=3,
                              num_heads=4, dynamic_img_size=True).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() < 2 or p.shape[0] == 1:
                p.normal_(0.0, 0.3)
    return model


def _eva02_upstream_layout(timm_state: dict) -> dict:
    """timm's EVA-02 keys in the upstream (BAAI) layout: q/k/v projections with q_bias /
    v_bias, SwiGLU w1 / w2 / ffn_ln / w3, the final norm as ``norm``, plus rope buffers
    and MIM leftovers that a loader must ignore."""
    out = {}
    for k, v in timm_state.items():
        if k.endswith('attn.qkv.weight'):
            q, kk, vv = v.chunk(3)
            for n, t in zip(('q_proj', 'k_proj', 'v_proj'), (q, kk, vv)):
                out[k.replace('qkv', n)] = t
            continue
        if k.endswith('attn.q_proj.bias') or k.endswith('attn.v_proj.bias'):
            out[k.replace('_proj.bias', '_bias')] = v
            continue
        if k.endswith('mlp.fc1.weight') or k.endswith('mlp.fc1.bias'):  # packed [gate | x]
            gate, x = v.chunk(2)
            out[k.replace('fc1', 'w1')], out[k.replace('fc1', 'w2')] = gate, x
            continue
        k = (k.replace('mlp.fc1_g', 'mlp.w1').replace('mlp.fc1_x', 'mlp.w2')
             .replace('mlp.norm', 'mlp.ffn_ln').replace('mlp.fc2', 'mlp.w3'))
        out[k.replace('fc_norm.', 'norm.')] = v
    out['rope.freqs_cos'] = torch.randn(256, 16)
    out['lm_head.weight'] = torch.randn(8, 64)
    out['mask_token'] = torch.randn(1, 1, 64)
    return out


@needs_timm
@pytest.mark.parametrize('name', ['eva02_small_patch14_224', 'eva02_base_patch14_224'])
@pytest.mark.parametrize('layout', ['timm', 'upstream'])
def test_eva02_matches_timm(tmp_path, name, layout):
    """timm's EVA-02 checkpoint (random weights), in timm's or the upstream layout, read
    back through init_cfg: the patch tokens of every block (the last normed by the
    checkpoint's final norm, which timm keeps as fc_norm) equal timm's at the pre-training
    size and at other sizes (RoPE rescaled to the 16x16 grid, position embedding resampled
    as timm does), and so do the gradients."""
    from mmseg.registry import MODELS
    ref = _timm_eva02(name)
    state = ref.state_dict()
    if layout == 'upstream':
        state = _eva02_upstream_layout(state)
    path = str(tmp_path / f'{name}_{layout}.pth')
    torch.save({'module': state}, path)
    mlp = 'swiglu' if 'small' in name else 'swiglu_norm'
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(dict(type='RoPEViT', arch=EVA02_SMALL, out_indices=(0, 1, 2),
                                  mlp_type=mlp, init_cfg=dict(type='Pretrained', checkpoint=path),
                                  **EVA02_OPTS))
    model.init_weights()
    model.eval()
    for hw in [(224, 224), (70, 98), (112, 56)]:
        img = torch.randn(1, 3, *hw)
        got = {}
        hooks = [ref.blocks[i].register_forward_hook(
            lambda mod, inp, out, i=i: got.__setitem__(i, out)) for i in (0, 1)]
        last = ref.fc_norm(ref.forward_features(img))
        for h in hooks:
            h.remove()
        gh, gw = hw[0] // 14, hw[1] // 14
        want = [t[:, 1:].transpose(1, 2).reshape(1, -1, gh, gw) for t in (got[0], got[1], last)]
        for i, (a, b) in enumerate(zip(model(img), want)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5,
                                       msg=lambda m: f'{name} {layout} {hw} block {i}: {m}')
    img = torch.randn(1, 3, 70, 98)
    grads = []
    for run in (lambda x: ref.fc_norm(ref.forward_features(x))[:, 1:],
                lambda x: model(x)[-1].flatten(2).transpose(1, 2)):
        x = img.clone().requires_grad_(True)
        (run(x) * torch.linspace(-1, 1, 64)).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


@needs_timm
def test_eva02_presets_are_the_released_shapes():
    for name, timm_name in (('eva02-vitt14', 'eva02_tiny_patch14_224'),
                            ('eva02-vits14', 'eva02_small_patch14_224'),
                            ('eva02-vitb14', 'eva02_base_patch14_224'),
                            ('eva02-vitl14', 'eva02_large_patch14_224')):
        with torch.device('meta'):  # shapes only
            ref = timm.create_model(timm_name, pretrained=False, num_classes=0)
            model = RoPEVisionTransformer(arch=name)
        assert model.patch_size == 14 and model.rope_ref_grid == (16, 16)
        assert load_vit_state_dict(model, ref.state_dict()) == dict(missing=[], unexpected=[])


def test_eva02_window_tokens_keep_full_image_coordinates():
    """EVA-02 rescales positions by the full grid: a Win-Win window's tokens get the
    coordinates (and rotations) they have inside the full image."""
    from mmwinwin.layers.winwin.windows import embed_windows
    torch.manual_seed(0)
    model = RoPEVisionTransformer(arch=EVA02_SMALL, mlp_type='swiglu', **EVA02_OPTS).eval()
    img = torch.randn(1, 3, 84, 112)
    grid, win = (6, 8), (2, 3, 3, 4)
    _, wpos = embed_windows(model.patch_embed, img, [[win]], 14)
    full_pos = model.embed_image(img)[1]
    index = [(win[0] + i) * grid[1] + win[1] + j for i in range(win[2]) for j in range(win[3])]
    coords = model.rope_positions(wpos, grid)[0]
    ref = torch.stack([full_pos[index, 0] * 16 / 6, full_pos[index, 1] * 16 / 8], -1)
    torch.testing.assert_close(coords, ref)
    q = torch.randn(1, 4, grid[0] * grid[1], 16)
    torch.testing.assert_close(model.rope(q[:, :, index], coords),
                               model.rope(q, model.rope_positions(full_pos, grid))[:, :, index])


@needs_timm
def test_eva02_wrong_family_is_named():
    ref = _timm_eva02('eva02_base_patch14_224')
    with pytest.raises(CheckpointMismatchError, match='Wrong family.*EVA-02'):
        load_vit_state_dict(RoPEVisionTransformer(arch=EVA02_SMALL, patch_size=14),
                            ref.state_dict())
    model = RoPEVisionTransformer(arch=EVA02_SMALL, mlp_type='swiglu_norm', **EVA02_OPTS)
    with pytest.raises(CheckpointMismatchError, match='Wrong family.*DINOv3'):
        load_vit_state_dict(model, _timm_dinov3().state_dict())


@pytest.mark.parametrize('opts', [dict(rope_type='dinov3', layer_scale_init=1.0),
                                  dict(rope_type='eva02', rope_ref_grid=(16, 16),
                                       mlp_type='swiglu_norm')])
def test_vitdet_uses_the_family_coordinates(opts):
    """A ViTDet-style ViT whose attention partition covers the whole grid is the plain ViT:
    its blocks must get the family's RoPE coordinates too (no prefix tokens here, as
    ViTDet has none), directly and through Expedite's partitioned forward."""
    from mmwinwin.layers import ViTDetVisionTransformer
    from mmwinwin.layers.expedite import ExpediteSettings
    from mmwinwin.layers.expedite.partitioned_plugin import expedited_partitioned_forward
    torch.manual_seed(0)
    plain = RoPEVisionTransformer(arch=SMALL, **opts).eval()
    det = ViTDetVisionTransformer(arch=SMALL, partition_size=8, global_indices=(2,), **opts).eval()
    det.load_state_dict(plain.state_dict())
    img = torch.randn(1, 3, 96, 128)
    torch.testing.assert_close(det(img)[0], plain(img)[0], atol=1e-5, rtol=1e-5)
    tokens, pos, hw = det.embed_image(img)
    late = ExpediteSettings(alpha=SMALL['num_layers'], cluster_grid=(2, 2), k=4)
    out = expedited_partitioned_forward(det, tokens, pos, hw, late)[-1]
    torch.testing.assert_close(out, plain.forward_tokens(tokens, pos, hw)[-1],
                               atol=1e-5, rtol=1e-5)
