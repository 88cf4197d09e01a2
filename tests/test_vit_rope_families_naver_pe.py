"""naver's RoPE-ViT (RoPE-Axial, RoPE-Mixed, "-ape") and Meta's PE (Perception Encoder) in
the core (layers/vit/rope_families.py): their RoPE conventions against formulas written
here, the whole backbone against timm's independent implementation (``timm.models.eva``, a
test dependency only) with checkpoints in timm's and the upstream release layouts, Win-Win
window and Expedite cluster positions, and the errors for another size, family or RoPE
convention."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope

import mmwinwin  # noqa: F401 (registers RoPEViT)
from mmwinwin.layers import CheckpointMismatchError, RoPEVisionTransformer, load_vit_state_dict
from mmwinwin.layers.vit.rope_families import (FAMILY_PRESETS, InterleavedRoPE2D, MixedRoPE2D,
                                               mixed_rope_frequencies)

try:
    import timm
except ImportError:  # the comparisons with timm skip; the rest runs
    timm = None
needs_timm = pytest.mark.skipif(
    timm is None, reason='timm (a test dependency: pip install -e .[tests]) is the independent '
    'reference for the pretrained families')

SMALL = dict(embed_dims=64, num_layers=3, num_heads=4)
NAVER = dict(with_cls_token=True, layer_scale_init=1e-5)
AXIAL_OPTS = dict(rope_type='naver_axial', rope_base=100.0, **NAVER)
MIXED_OPTS = dict(rope_type='naver_mixed', rope_base=10.0, **NAVER)
APE_OPTS = dict(AXIAL_OPTS, use_abs_pos_embed=True, cls_pos_embed=False,
                pos_embed_antialias=True)  # timm resamples antialiased
# timm's PE departs from the official code at other sizes than the pre-training one: RoPE
# coordinates rescaled to the pre-training grid, position embedding resampled bicubic
# (antialiased); both are named options here, set to compare with timm
PE_TIMM = dict(rope_type='pe', with_cls_token=True, use_abs_pos_embed=True, pre_norm=True,
               norm_eps=1e-5, rope_base=10000.0, pos_embed_interp='bicubic',
               pos_embed_antialias=True)
CASES = {
    # name: (timm model, our options, image sizes)
    'naver-axial': ('vit_small_patch16_rope_224', AXIAL_OPTS, None),
    'naver-mixed': ('vit_small_patch16_rope_mixed_224', MIXED_OPTS, None),
    'naver-axial-ape': ('vit_small_patch16_rope_ape_224', APE_OPTS, None),
    'pe-spatial': ('vit_pe_spatial_small_patch16_512',
                   dict(PE_TIMM, img_size=512, rope_ref_grid=(32, 32), final_norm=False), None),
    'pe-core': ('vit_pe_core_small_patch16_384',
                dict(PE_TIMM, img_size=384, rope_ref_grid=(24, 24)), None),
}
SIZES = [(64, 64), (48, 80), (50, 83)]  # square, not, not a multiple of the patch


def _timm_model(name: str, seed: int = 0):
    """timm's model shrunk to SMALL, any input size (zero-padded right / bottom to the
    patch, as ours), every 1-D parameter and token randomised so that each of them shows."""
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, num_classes=0, embed_dim=64, depth=3,
                              num_heads=4, dynamic_img_size=True, dynamic_img_pad=True).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() < 2 or p.shape[0] == 1:
                p.normal_(0.0, 0.3)
    return model


def _timm_tokens(model, img: torch.Tensor) -> list[torch.Tensor]:
    """timm's patch tokens after blocks 0, 1 (no norm) and the last (its final norm, the
    identity for PE-Spatial), each (B, C, h, w)."""
    got = {}
    hooks = [model.blocks[i].register_forward_hook(
        lambda mod, inp, out, i=i: got.__setitem__(i, out)) for i in (0, 1)]
    try:
        last = model.forward_features(img)
    finally:
        for h in hooks:
            h.remove()
    h, w = math.ceil(img.shape[2] / 16), math.ceil(img.shape[3] / 16)
    n = model.num_prefix_tokens
    return [t[:, n:].transpose(1, 2).reshape(t.shape[0], -1, h, w)
            for t in (got[0], got[1], last)]


def _naver_upstream(timm_state: dict) -> dict:
    """timm's RoPE-ViT keys written in the naver release layout (DeiT-III ``vit_models``):
    RoPE-Mixed frequencies as one ``freqs`` (2, depth, heads * D/2) with the grid buffers
    ``freqs_t_x`` / ``freqs_t_y``, and a classifier head."""
    out = {}
    for k, v in timm_state.items():
        if k == 'rope.freqs':
            out['freqs'] = v.reshape(2, v.shape[1], -1)
            out['freqs_t_x'], out['freqs_t_y'] = torch.arange(196.) % 14, torch.arange(196.) // 14
            continue
        out[k] = v
    out['head.weight'], out['head.bias'] = torch.randn(10, 64), torch.randn(10)
    return {'model': out}


_PE_KEYS = (('patch_embed.proj.', 'conv1.'), ('norm_pre.', 'ln_pre.'), ('blocks.', 'transformer.resblocks.'),
            ('.norm1.', '.ln_1.'), ('.norm2.', '.ln_2.'), ('.attn.qkv.weight', '.attn.in_proj_weight'),
            ('.attn.qkv.bias', '.attn.in_proj_bias'), ('.attn.proj.', '.attn.out_proj.'),
            ('.gamma_1', '.ls_1.gamma'), ('.gamma_2', '.ls_2.gamma'), ('.mlp.fc1.', '.mlp.c_fc.'),
            ('.mlp.fc2.', '.mlp.c_proj.'))


def _pe_upstream(timm_state: dict) -> dict:
    """timm's PE keys written in Meta's release layout, as the vision tower of a CLIP
    checkpoint (``visual.``) beside text-tower keys that a loader must ignore (one of them
    named like a vision key)."""
    out = {}
    for k, v in timm_state.items():
        if k == 'cls_token':
            out['visual.class_embedding'] = v.reshape(-1)
            continue
        if k == 'pos_embed':
            out['visual.positional_embedding'] = v[0]
            continue
        if k.startswith('norm.'):
            out['visual.ln_post.' + k[5:]] = v
            continue
        if k.startswith('attn_pool.'):
            out['visual.' + k] = v
            continue
        for ours, theirs in _PE_KEYS:
            k = k.replace(ours, theirs)
        out['visual.' + k] = v
    out['visual.proj'] = torch.randn(64, 32)
    out['transformer.resblocks.0.attn.in_proj_weight'] = torch.randn(96, 32)
    out['token_embedding.weight'] = torch.randn(50, 32)
    out['positional_embedding'] = torch.randn(8, 32)
    out['logit_scale'] = torch.tensor(1.0)
    return out


def _build(path: str, opts: dict):
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(dict(type='RoPEViT', arch=SMALL, out_indices=(0, 1, 2),
                                  init_cfg=dict(type='Pretrained', checkpoint=path), **opts))
    model.init_weights()
    return model.eval()


# ---------------------------------------------------------------- the RoPE conventions
def test_naver_axial_and_pe_rotate_interleaved_pairs_x_first():
    """Pair k = channels (2k, 2k+1) as a complex number, turned by x * base**(-4k/D) for
    k < D/4 and by y * base**(-4(k - D/4)/D) after."""
    torch.manual_seed(0)
    D = 16
    coords = torch.tensor([[0., 0.], [2., 5.], [3.25, 1.5]])  # (y, x)
    x = torch.randn(1, 2, 3, D)
    z = torch.complex(x[..., 0::2].double(), x[..., 1::2].double())
    for base in (100.0, 10000.0):
        angle = torch.zeros(3, D // 2, dtype=torch.float64)
        for k in range(D // 2):
            axis, j = (1, k) if k < D // 4 else (0, k - D // 4)
            angle[:, k] = coords[:, axis].double() * base ** (-4 * j / D)
        ref = z * torch.polar(torch.ones_like(angle), angle)
        out = InterleavedRoPE2D(D, base, axis_order='xy')(x, coords)
        torch.testing.assert_close(out, torch.stack([ref.real, ref.imag], -1).flatten(-2).float(),
                                   atol=1e-5, rtol=1e-5)


def test_mixed_rope_turns_by_learned_linear_frequencies():
    """RoPE-Mixed: pair k of head h turns by x f_x[h, k] + y f_y[h, k]; the initial
    frequencies have magnitudes 10**(-4j/D), the two quarter-sets of a head at right angles."""
    torch.manual_seed(0)
    D, H = 16, 2
    rope = MixedRoPE2D(D, H, 10.0)
    with torch.no_grad():
        rope.freqs.normal_()
    coords = torch.tensor([[0., 0.], [2., 5.], [3.25, 1.5]])
    x = torch.randn(1, H, 3, D)
    z = torch.complex(x[..., 0::2].double(), x[..., 1::2].double())
    f = rope.freqs.detach().double()
    angle = (coords[None, :, 1, None].double() * f[0][:, None]
             + coords[None, :, 0, None].double() * f[1][:, None])  # (H, 3, D/2)
    ref = z * torch.polar(torch.ones_like(angle), angle)
    torch.testing.assert_close(rope(x, coords),
                               torch.stack([ref.real, ref.imag], -1).flatten(-2).float(),
                               atol=1e-5, rtol=1e-5)
    init = mixed_rope_frequencies(D, H, 10.0, generator=torch.Generator().manual_seed(1))
    mag = init.norm(dim=0)  # (H, D/2)
    want = 10.0 ** (-4 * torch.arange(D // 4) / D)
    torch.testing.assert_close(mag, torch.cat([want, want]).expand(H, -1), rtol=1e-6, atol=1e-6)
    dot = (init[:, :, :D // 4] * init[:, :, D // 4:]).sum(0)
    torch.testing.assert_close(dot, torch.zeros_like(dot), atol=1e-6, rtol=0)


def test_pe_coordinates_follow_the_official_code_by_default():
    """PE's preset: integer indices + 1 past the cls token at every size (the official
    code), position embedding resized bilinear; timm's rescaling only when asked for."""
    model = RoPEVisionTransformer(arch='pe-spatial-vitt16')
    pos = torch.tensor([[0., 0.], [3., 7.]])
    torch.testing.assert_close(model.rope_positions(pos, (10, 20)), pos + 1)
    assert model.pos_embed_interp == 'bilinear' and not model.pos_embed_antialias
    with torch.device('meta'):  # G/14: shapes only
        g = RoPEVisionTransformer(arch='pe-spatial-vitg14')  # no cls token: no offset
    assert g.cls_token is None and g.rope_type == 'pe'
    pos = torch.tensor([[0., 0.], [3., 7.]])
    no_cls = RoPEVisionTransformer(arch=SMALL, rope_type='pe', pre_norm=True)
    torch.testing.assert_close(no_cls.rope_positions(pos, (10, 20)), pos)
    timm_like = RoPEVisionTransformer(arch=SMALL, **dict(PE_TIMM, img_size=512,
                                                         rope_ref_grid=(32, 32)))
    torch.testing.assert_close(timm_like.rope_positions(pos, (16, 64)),
                               (pos + 1) * torch.tensor([32 / 16, 32 / 64]))
    # the bilinear resize of the position embedding, read at the token centres
    model.eval()
    table = model.pos_embed[:, 1:].reshape(1, 32, 32, -1).permute(0, 3, 1, 2)
    want = F.interpolate(table, size=(5, 7), mode='bilinear', align_corners=False)
    got = model.abs_pos_embed(model.embed_image(torch.zeros(1, 3, 80, 112))[1], (5, 7))
    torch.testing.assert_close(got, want.flatten(2).transpose(1, 2), atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------- equality with timm
@needs_timm
@pytest.mark.parametrize('case,layout', [
    ('naver-axial', 'timm'), ('naver-axial', 'upstream'), ('naver-mixed', 'timm'),
    ('naver-mixed', 'upstream'), ('naver-axial-ape', 'timm'), ('pe-spatial', 'timm'),
    ('pe-spatial', 'upstream'), ('pe-core', 'timm'), ('pe-core', 'upstream')])
def test_matches_timm(tmp_path, case, layout):
    """timm's model (random weights), its checkpoint in timm's or the upstream release
    layout read back through init_cfg: the patch tokens of blocks 0, 1 and the last (normed
    when the family has a final norm) equal timm's at square, non-square and non-multiple
    sizes to 1e-5, and so do the gradients (input, first qkv weight, RoPE-Mixed frequencies)."""
    name, opts, _ = CASES[case]
    ref = _timm_model(name)
    state = ref.state_dict()
    if layout == 'upstream':
        state = _naver_upstream(state) if case.startswith('naver') else _pe_upstream(state)
    path = str(tmp_path / f'{case}_{layout}.pth')
    torch.save(state, path)
    model = _build(path, opts)
    for hw in SIZES:
        img = torch.randn(2, 3, *hw)
        with torch.no_grad():
            want = _timm_tokens(ref, img)
            got = model(img)
        for i, (a, b) in enumerate(zip(got, want)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5,
                                       msg=lambda m: f'{case} {layout} {hw} output {i}: {m}')
    img = torch.randn(1, 3, 48, 80)
    weight = torch.randn(1, 64, 3, 5)
    grads = []
    for net, run in ((ref, lambda x: _timm_tokens(ref, x)[-1]), (model, lambda x: model(x)[-1])):
        net.zero_grad()
        x = img.clone().requires_grad_(True)
        (run(x) * weight).sum().backward()
        g = [x.grad, net.blocks[0].attn.qkv.weight.grad]
        if case == 'naver-mixed':
            g.append(net.rope.freqs.grad[:, 0] if net is ref
                     else net.blocks[0].attn.rope.freqs.grad)
        grads.append(g)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@needs_timm
def test_presets_are_the_released_shapes():
    """Each preset takes timm's full-size model's state dict (meta tensors: shapes only)
    with no missing or unexpected key."""
    pairs = []
    for size, timm_size in (('s', 'small'), ('b', 'base'), ('l', 'large')):
        pairs += [(f'naver-rope-axial-vit{size}16', f'vit_{timm_size}_patch16_rope_224'),
                  (f'naver-rope-mixed-vit{size}16', f'vit_{timm_size}_patch16_rope_mixed_224'),
                  (f'naver-rope-axial-ape-vit{size}16', f'vit_{timm_size}_patch16_rope_ape_224'),
                  (f'naver-rope-mixed-ape-vit{size}16',
                   f'vit_{timm_size}_patch16_rope_mixed_ape_224')]
    for kind, sizes in (('spatial', (('vitt16', 'tiny_patch16_512'), ('vits16', 'small_patch16_512'),
                                     ('vitb16', 'base_patch16_512'), ('vitl14', 'large_patch14_448'),
                                     ('vitg14', 'gigantic_patch14_448'))),
                        ('core', (('vitt16', 'tiny_patch16_384'), ('vits16', 'small_patch16_384'),
                                  ('vitb16', 'base_patch16_224'), ('vitl14', 'large_patch14_336'),
                                  ('vitg14', 'gigantic_patch14_448')))):
        pairs += [(f'pe-{kind}-{ours}', f'vit_pe_{kind}_{theirs}') for ours, theirs in sizes]
    for arch, timm_name in pairs:
        assert arch in FAMILY_PRESETS, arch
        with torch.device('meta'):
            ref = timm.create_model(timm_name, pretrained=False, num_classes=0)
            model = RoPEVisionTransformer(arch=arch)
        assert load_vit_state_dict(model, ref.state_dict()) == dict(missing=[], unexpected=[]), \
            arch


# ------------------------------------------------------- Win-Win windows and Expedite
@pytest.mark.parametrize('opts', [AXIAL_OPTS, MIXED_OPTS, dict(PE_TIMM, img_size=512),
                                  dict(PE_TIMM, img_size=512, rope_ref_grid=(32, 32))],
                         ids=['naver-axial', 'naver-mixed', 'pe', 'pe-timm-rescale'])
def test_winwin_window_tokens_keep_full_image_rotation(opts):
    """A Win-Win window's tokens, embedded alone, are rotated exactly as the same tokens
    inside the full image (full-image coordinates under the family's convention), and the
    window path runs."""
    from mmwinwin.layers.winwin.windows import embed_windows
    torch.manual_seed(0)
    model = RoPEVisionTransformer(arch=SMALL, **opts).eval()
    img = torch.randn(1, 3, 96, 128)
    grid, win = (6, 8), (2, 3, 3, 4)
    tok, wpos = embed_windows(model.patch_embed, img, [[win]], 16)
    full_pos = model.embed_image(img)[1]
    index = [(win[0] + i) * grid[1] + win[1] + j for i in range(win[2]) for j in range(win[3])]
    torch.testing.assert_close(wpos[0], full_pos[index])
    rope = model.rope if model.rope is not None else model.blocks[1].attn.rope
    q = torch.randn(1, 4, grid[0] * grid[1], 16)
    torch.testing.assert_close(rope(q[:, :, index], model.rope_positions(wpos, grid)),
                               rope(q, model.rope_positions(full_pos, grid))[:, :, index])
    # coordinates relative to the window would be another rotation
    wrong = rope(q[:, :, index], model.rope_positions(wpos - wpos.amin(1), win[2:]))
    assert (wrong - rope(q, model.rope_positions(full_pos, grid))[:, :, index]).abs().max() > 1e-2
    assert model.forward_tokens(tok, wpos, grid)[-1].shape == (1, 12, 64)


@pytest.mark.parametrize('opts', [MIXED_OPTS, dict(PE_TIMM, img_size=512, rope_ref_grid=(32, 32))],
                         ids=['naver-mixed', 'pe-timm-rescale'])
def test_expedite_cluster_positions_under_the_convention(opts):
    """Clustering the family's coordinates gives the coordinates of the clusters' weighted-
    mean token positions (affine conventions); RoPE-Mixed's angles are linear in them, so a
    cluster's rotation is the weighted mean of its tokens' angles; clustering after the last
    block is the plain forward."""
    from mmwinwin.layers.expedite import (ExpediteSettings, cluster_sequence,
                                          expedited_forward_tokens)
    torch.manual_seed(0)
    model = RoPEVisionTransformer(arch=SMALL, **opts).eval()
    tokens, pos, grid = model.embed_image(torch.randn(1, 3, 128, 128))
    x = model.prepare_tokens(tokens, pos, grid)
    settings = ExpediteSettings(alpha=1, cluster_grid=(4, 4), k=4)
    _, cpos, _, _ = cluster_sequence(x, model.num_prefix_tokens, grid, settings, pos=pos)
    _, ccoords, _, _ = cluster_sequence(x, model.num_prefix_tokens, grid, settings,
                                        pos=model.rope_positions(pos, grid))
    torch.testing.assert_close(ccoords, model.rope_positions(cpos, grid), atol=1e-5, rtol=1e-5)
    if model.rope is None:  # RoPE-Mixed: rotating by a weighted-mean position is rotating
        # by the weighted mean of the tokens' angles (complex numbers, written here)
        rope = model.blocks[1].attn.rope
        f = rope.freqs.detach().double()
        w = torch.rand(5, pos.shape[0], dtype=torch.float64)
        w = w / w.sum(-1, keepdim=True)
        angles = (pos[None, :, 1, None].double() * f[0][:, None]
                  + pos[None, :, 0, None].double() * f[1][:, None])  # (h, N, D/2)
        mean_angle = torch.einsum('cn,hnk->hck', w, angles)
        q = torch.randn(1, 4, 5, 16)
        z = torch.complex(q[..., 0::2].double(), q[..., 1::2].double())
        ref = z * torch.polar(torch.ones_like(mean_angle), mean_angle)
        torch.testing.assert_close(rope(q, (w @ pos.double()).float()),
                                   torch.stack([ref.real, ref.imag], -1).flatten(-2).float(),
                                   atol=1e-5, rtol=1e-5)
    late = ExpediteSettings(alpha=SMALL['num_layers'], cluster_grid=(4, 4), k=4)
    outs, _ = expedited_forward_tokens(model, tokens, pos, grid, late)
    torch.testing.assert_close(outs[-1], model.forward_tokens(tokens, pos, grid)[-1])
    outs, _ = expedited_forward_tokens(model, tokens, pos, grid, settings)
    assert outs[-1].shape == (1, 64, 64) and torch.isfinite(outs[-1]).all()


# ------------------------------------------------------------------------- errors
@needs_timm
def test_wrong_size_family_and_convention_are_named():
    axial = _timm_model('vit_small_patch16_rope_224').state_dict()
    mixed = _timm_model('vit_small_patch16_rope_mixed_224').state_dict()
    pe = _timm_model('vit_pe_spatial_small_patch16_512').state_dict()
    with pytest.raises(CheckpointMismatchError, match='Wrong RoPE convention.*RoPE-Mixed'):
        load_vit_state_dict(RoPEVisionTransformer(arch=SMALL, **AXIAL_OPTS), mixed)
    with pytest.raises(CheckpointMismatchError, match='Wrong RoPE convention.*naver-rope-axial'):
        load_vit_state_dict(RoPEVisionTransformer(arch=SMALL, **MIXED_OPTS), axial)
    with pytest.raises(CheckpointMismatchError, match='Wrong family.*RoPE-ViT.*naver-rope'):
        load_vit_state_dict(RoPEVisionTransformer(arch=SMALL, with_cls_token=True,
                                                  layer_scale_init=1.0), axial)
    with pytest.raises(CheckpointMismatchError, match='Wrong family.*PE.*pe-\\*'):
        load_vit_state_dict(RoPEVisionTransformer(arch=SMALL, **AXIAL_OPTS), pe)
    with pytest.raises(CheckpointMismatchError, match='Wrong family.*PE.*without a pre-norm'):
        load_vit_state_dict(RoPEVisionTransformer(arch=SMALL, **dict(PE_TIMM, img_size=512)),
                            axial)
    with torch.device('meta'):  # shapes only
        small = timm.create_model('vit_small_patch16_rope_mixed_224', pretrained=False,
                                  num_classes=0)
        base = RoPEVisionTransformer(arch='naver-rope-mixed-vitb16')
        pe_small = timm.create_model('vit_pe_core_small_patch16_384', pretrained=False,
                                     num_classes=0)
        pe_base = RoPEVisionTransformer(arch='pe-core-vitb16')
    with pytest.raises(CheckpointMismatchError, match="arch='naver-rope-mixed-vits16'"):
        load_vit_state_dict(base, small.state_dict())
    with pytest.raises(CheckpointMismatchError, match="arch='pe-core-vits16'"):
        load_vit_state_dict(pe_base, pe_small.state_dict())


@needs_timm
def test_converter_tool_infers_naver_and_pe_presets(tmp_path, monkeypatch, capsys):
    """tools/model_converters/rope_family2mmwinwin.py names the preset of a full-size
    upstream RoPE-Mixed S/16 file and of a PE-Spatial T/16 CLIP file (its text tower
    ignored), and the converted file gives timm's tokens."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).parents[1] / 'tools/model_converters/rope_family2mmwinwin.py'
    spec = importlib.util.spec_from_file_location('rope_family2mmwinwin', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for timm_name, arch, to_upstream in (
            ('vit_small_patch16_rope_mixed_224', 'naver-rope-mixed-vits16', _naver_upstream),
            ('vit_pe_spatial_tiny_patch16_512', 'pe-spatial-vitt16', _pe_upstream)):
        torch.manual_seed(0)
        ref = timm.create_model(timm_name, pretrained=False, num_classes=0,
                                dynamic_img_size=True).eval()
        state = ref.state_dict()
        src, dst = tmp_path / f'{arch}.pth', tmp_path / f'{arch}_mmwinwin.pth'
        torch.save(to_upstream(state), src)
        monkeypatch.setattr('sys.argv', ['rope_family2mmwinwin.py', str(src), str(dst)])
        tool.main()
        assert f'arch {arch}' in capsys.readouterr().out
        model = RoPEVisionTransformer(arch=arch).eval()
        load_vit_state_dict(model, torch.load(dst, map_location='cpu', weights_only=True))
        img = torch.randn(1, 3, 64, 96)
        with torch.no_grad():
            want = ref.forward_features(img)[:, ref.num_prefix_tokens:]
            got = model(img)[0].flatten(2).transpose(1, 2)
        if timm_name.startswith('vit_pe_'):  # at another size than 512 timm departs from the official
            # convention (the preset's): its options on a custom arch of the same shape
            model = RoPEVisionTransformer(arch=dict(embed_dims=192, num_layers=12, num_heads=3),
                                          final_norm=False, img_size=512, rope_ref_grid=(32, 32),
                                          **PE_TIMM).eval()
            load_vit_state_dict(model, torch.load(dst, map_location='cpu', weights_only=True))
            with torch.no_grad():
                got = model(img)[0].flatten(2).transpose(1, 2)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_rotation_tables_are_reused_only_while_valid():
    """The cos / sin tables computed once per forward (shared by all blocks) are recomputed
    when the coordinates change in place or RoPE-Mixed's learned frequencies change, and a
    RoPE-Mixed training step twice over the same positions tensor back-propagates both
    times."""
    torch.manual_seed(0)
    x = torch.randn(1, 4, 6, 16)
    coords = torch.rand(6, 2) * 5
    for rope in (InterleavedRoPE2D(16, 100.0, 'xy'), MixedRoPE2D(16, 4)):
        with torch.no_grad():
            first = rope(x, coords)
            torch.testing.assert_close(rope(x, coords), first)
            coords.add_(1.0)  # in place: a new rotation
            torch.testing.assert_close(rope(x, coords), rope(x, coords.clone()))
            if isinstance(rope, MixedRoPE2D):
                before = rope(x, coords)
                rope.freqs.mul_(2.0)
                after = rope(x, coords)
                assert (after - before).abs().max() > 1e-3
                torch.testing.assert_close(after, rope(x, coords.clone()))
    model = RoPEVisionTransformer(arch=SMALL, **MIXED_OPTS)
    tokens, pos, grid = model.embed_image(torch.randn(1, 3, 32, 48))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        model.forward_tokens(tokens.detach(), pos, grid)[-1].square().mean().backward()
        assert model.blocks[0].attn.rope.freqs.grad.abs().sum() > 0
        opt.step()


def test_presets_keep_their_options_but_allow_dropping_the_final_norm():
    with pytest.raises(ValueError, match="rope_type='naver_mixed'.*rope_type='naver_axial'"):
        RoPEVisionTransformer(arch='naver-rope-mixed-vits16', rope_type='naver_axial')
    assert isinstance(RoPEVisionTransformer(arch='pe-core-vitt16', final_norm=False).norm,
                      torch.nn.Identity)
    assert isinstance(RoPEVisionTransformer(arch='pe-core-vitt16').norm, torch.nn.LayerNorm)
    assert isinstance(RoPEVisionTransformer(arch='pe-spatial-vitt16').norm, torch.nn.Identity)
