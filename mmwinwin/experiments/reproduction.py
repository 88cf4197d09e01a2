"""The Win-Win reproduction's variants and their configs, shared by ``winwin_reproduction``,
``winwin_curves``, ``winwin_demo`` and ``winwin_diagnose``.

Every variant starts from one config file, :data:`CONFIG` (a tiny RoPE ViT + FCN head at full
resolution on the generated cue data; model, data, schedule, runtime); :func:`build_cfg`
loads it and applies the variant and the command's flags."""
from __future__ import annotations

import logging
import math
import time

from . import repo_path

VARIANTS = {
    'winwin': '(a) Win-Win, 2 windows, RoPE',
    'fullres': '(b) full resolution',
    'crop': '(c) low-res crop, same budget',
    'winwin_abspos': '(d) Win-Win, learned abs. pos. embed',
    'winwin_ctx': '(e) Win-Win + pooled context tokens',
    'winwin_ft': '(f) Win-Win, then whole images',
    'winwin_ctx_ft': '(g) Win-Win + context tokens, then whole images',
    # the same-budget alternatives to Win-Win's windows (Win-Win against its peers)
    'random_tokens': '(h) random token dropping, same budget',
    'window1': '(i) 1 window, same budget',
    'windows4': '(j) 4 smaller windows, same budget',
    'lowres': '(k) whole image at low resolution, same budget',
    # a design option against the phase: the same share of whole-image steps, interleaved
    'winwin_mix': '(l) Win-Win, whole images every 6th iteration',
    # design options against the phase's cost: the whole-image phase on resized images
    # (full_image_phase.scale), each token at the full image's coordinates
    'winwin_ft_s50': '(m) Win-Win, then whole images at 1/2 size for the last 1/3',
    'winwin_ft_s75': '(n) Win-Win, then whole images at 3/4 size for the last 1/6',
    # design options against the phase's low learning rate: the windows part decays to 0 on
    # its own, the whole-image phase restarts the learning rate (a fine-tuning schedule)
    'winwin_ft_r50': '(o) Win-Win, then whole images, phase LR restarted at 1/2',
    'winwin_ft_r100': '(p) Win-Win, then whole images, phase LR restarted at 1',
    'winwin_ft_r200': '(q) Win-Win, then whole images, phase LR restarted at 2',
    'winwin_ft_r100_l3': '(r) Win-Win, then whole images for the last 1/3, phase LR '
                         'restarted at 1',
    # (r)'s longer phase at about (p)'s cost: the phase's images at 3/4 size
    'winwin_ft_s75_r100_l3': '(s) Win-Win, then whole images at 3/4 size for the last 1/3, '
                             'phase LR restarted at 1',
    # (r)'s longer phase at (p)'s cost or less: each whole-image step on half of its batch
    'winwin_ft_h50_r100_l3': '(t) Win-Win, then whole images for the last 1/3 on half of '
                             'each batch, phase LR restarted at 1',
    # (r)'s longer phase under the 0.5 cost limit: the phase trains the last quarter of the
    # backbone's blocks and the heads (the patch embedding and the first 3/4 of the blocks stay
    # as the windows trained them), so a phase step skips their backward pass
    'winwin_ft_k75_r100_l3': '(u) Win-Win, then whole images for the last 1/3 training the '
                             'last 1/4 of the blocks, phase LR restarted at 1',
    # (r) with progressive resizing of the windows: 5 equal stages of the windows part with
    # sides window - 2 .. window + 2 (4 .. 8 tokens at the default 6, about (r)'s tokens on
    # average), so the cue-holding large windows come last before the phase
    'winwin_grow_r100_l3': '(y) Win-Win, windows growing from side - 2 to side + 2 tokens, '
                           'then whole images for the last 1/3, phase LR restarted at 1',
    # the reverse order: the large windows, which hold the distant cue more often, while the
    # learning rate is high, the small ones as it decays before the phase
    'winwin_shrink_r100_l3': '(z) Win-Win, windows shrinking from side + 2 to side - 2 tokens, '
                             'then whole images for the last 1/3, phase LR restarted at 1',
    # (r) with context tokens on a fixed grid (context_tokens=dict(grid=...)): a summary of
    # the whole image beside the windows in every window step, at a cost that does not grow
    # with the image; max-pooled, a one-token cue stays as strong as it is in its cell
    'winwin_gridctx_max_r100_l3': '(A) Win-Win + max-pooled context tokens on a fixed grid, '
                                  'then whole images for the last 1/3, phase LR restarted at 1',
    # (t)'s half-batch phase over twice the stretch: (r)'s whole images (800 steps of 4 = 1600
    # of 2) as twice the updates, for less than (r)'s cost where a whole-image step costs
    # several window steps (patch 8: 0.16)
    'winwin_ft_h50_r100_l23': '(B) Win-Win, then whole images for the last 2/3 on half of '
                              'each batch, phase LR restarted at 1',
    # (r) with the phase's learning rate restarted at twice the config's
    'winwin_ft_r200_l3': '(C) Win-Win, then whole images for the last 1/3, phase LR '
                         'restarted at 2',
    # (A) and (C) together: the cue beside the windows, and the phase's doubled learning rate
    'winwin_gridctx_max_r200_l3': '(D) Win-Win + max-pooled context tokens on a fixed grid, '
                                  'then whole images for the last 1/3, phase LR restarted at 2',
    # a two-stage phase: whole images at half size (a window step's tokens at patch 8, the cue
    # still a token) over the middle third, where the learning rate restarts, then at full size
    # for the last third: twice (r)'s whole-image steps for about the cost of (r)
    'winwin_ft_s50_s100_r100_l23': '(E) Win-Win, then whole images at 1/2 size for the middle '
                                   '1/3 and at full size for the last 1/3, phase LR restarted '
                                   'at 1',
    # (E) with the half-size stage from 1/6 of the run: 1200 half-size steps to learn the cue
    'winwin_ft_s50_s100_r100_l56': '(F) Win-Win, then whole images at 1/2 size from 1/6 and '
                                   'at full size for the last 1/3, phase LR restarted at 1',
}
#: the resized whole-image phases of the winwin_ft_s* variants: (begin fraction, scale)
RESIZED_PHASES = {'winwin_ft_s50': (2 / 3, 0.5), 'winwin_ft_s75': (5 / 6, 0.75),
                  'winwin_ft_s75_r100_l3': (2 / 3, 0.75)}
#: the phases with their own learning-rate schedule (winwin_ft_r* variants): (begin fraction,
#: restart weight: the phase's first learning rate over the config's, cosine to 0 from there)
RESTART_PHASES = {'winwin_ft_r50': (5 / 6, 0.5), 'winwin_ft_r100': (5 / 6, 1.0),
                  'winwin_ft_r200': (5 / 6, 2.0), 'winwin_ft_r100_l3': (2 / 3, 1.0),
                  'winwin_ft_s75_r100_l3': (2 / 3, 1.0), 'winwin_ft_h50_r100_l3': (2 / 3, 1.0),
                  'winwin_ft_k75_r100_l3': (2 / 3, 1.0), 'winwin_grow_r100_l3': (2 / 3, 1.0),
                  'winwin_shrink_r100_l3': (2 / 3, 1.0), 'winwin_gridctx_max_r100_l3': (2 / 3, 1.0),
                  'winwin_ft_h50_r100_l23': (1 / 3, 1.0), 'winwin_ft_r200_l3': (2 / 3, 2.0),
                  'winwin_gridctx_max_r200_l3': (2 / 3, 2.0),
                  'winwin_ft_s50_s100_r100_l23': (1 / 3, 1.0),
                  'winwin_ft_s50_s100_r100_l56': (1 / 6, 1.0)}
#: the two-stage phases: (scale of the first stage, fraction of the iterations from which the
#: whole images are at full size: ``full_image_phase.full_size_fraction``)
TWO_STAGE_PHASES = {'winwin_ft_s50_s100_r100_l23': (0.5, 2 / 3),
                    'winwin_ft_s50_s100_r100_l56': (0.5, 2 / 3)}
#: the phases that train each whole-image step on part of its batch: batch_fraction
PART_BATCH_PHASES = {'winwin_ft_h50_r100_l3': 0.5, 'winwin_ft_h50_r100_l23': 0.5}
#: the phases that leave the backbone's lower blocks as the windows trained them: the share of
#: the blocks frozen (``full_image_phase.frozen_blocks = round(share * num_layers)``)
FROZEN_PHASES = {'winwin_ft_k75_r100_l3': 0.75}
#: the variants whose window size changes over training (WinWinWindows.progressive_sizes): the
#: spread ``d`` of the sides ``window - d, ..., window + d``, one stage each, in that order
#: (growing) for ``d > 0``, the reverse (shrinking) for ``d < 0``
PROGRESSIVE_WINDOWS = {'winwin_grow_r100_l3': 2, 'winwin_shrink_r100_l3': -2}
#: the variants with context tokens on a fixed grid: their ``context_tokens`` setting (3 x 6
#: cells: 4 x 4 tokens each at 192x384 and patch 16, 8 x 8 at patch 8; ViT-B/16 at 1280x720,
#: 45x80 tokens, would get 18 context tokens beside 968 window tokens)
GRID_CONTEXTS = {'winwin_gridctx_max_r100_l3': dict(grid=(3, 6), reduce='max'),
                 'winwin_gridctx_max_r200_l3': dict(grid=(3, 6), reduce='max')}
#: the recipe of the configs/winwin* segmentation configs: windows, then whole images for the
#: last 1/3 with the phase's own learning rate (docs/winwin.md, "A longer phase")
RECIPE = 'winwin_ft_r100_l3'
MIX_EVERY = 6  # variant winwin_mix: whole images every 6th iteration (the recipe's 1/6)
CONTEXT_POOL = 4  # tokens per side of a pooled context cell (variants winwin_ctx*)
FULL_PHASE_FRACTION = 5 / 6  # variants *_ft: whole images from 5/6 of the iterations on
NUM_WINDOWS = 2
CONFIG = ('configs', 'winwin', 'experiments',
          'fcn_rope-vit-4l-64d_1xb4-600i_synthetic-cue-ade20k-192x384.py')
# the config file's own variables, not runtime settings (build_cfg drops them)
_FILE_VARIABLES = ('img_size', 'embed_dims', 'num_layers', 'iters', 'classes', 'data_root',
                   'train_pipeline', 'test_pipeline', 'dataset')


def window_samples(variant: str, window: int) -> tuple[str, int, int] | None:
    """``(mode, windows, side)`` of the ``WinWinWindows`` transform of a variant that trains
    on a subset of the tokens at their full-image positions (``None`` for the others).

    The budget is Win-Win's, ``NUM_WINDOWS * window**2`` tokens: ``random_tokens`` keeps
    exactly that many tokens drawn uniformly (timm ``PatchDropout``'s rule), ``window1`` /
    ``windows4`` take 1 / 4 square windows of the largest side within it."""
    budget = NUM_WINDOWS * window ** 2
    if variant.startswith('winwin'):
        return 'windows', NUM_WINDOWS, window
    if variant == 'random_tokens':
        return 'random_tokens', NUM_WINDOWS, window
    if variant in ('window1', 'windows4'):
        n = 1 if variant == 'window1' else 4
        return 'windows', n, math.isqrt(budget // n)
    return None


def lowres_size(img_size: tuple[int, int], window: int, patch_size: int = 16
                ) -> tuple[int, int]:
    """The training (and test) size of variant ``lowres``: the whole image scaled by
    ``sqrt(budget / tokens)`` so that it has about Win-Win's token budget, rounded to whole
    patches (192x384 with 6x6 windows: 96x192, 72 tokens)."""
    H, W = img_size
    scale = math.sqrt(NUM_WINDOWS * window ** 2 / ((H // patch_size) * (W // patch_size)))
    return tuple(max(1, round(s * scale / patch_size)) * patch_size for s in (H, W))


def progressive_sizes(variant: str, window: int) -> tuple[int, ...]:
    """The window sides of a :data:`PROGRESSIVE_WINDOWS` variant, one per stage of its
    windows part: ``window - d .. window + d`` (``(4, 5, 6, 7, 8)`` for window 6), reversed
    for a shrinking one."""
    d = PROGRESSIVE_WINDOWS[variant]
    if window - abs(d) < 1:
        raise ValueError(f'{variant} takes windows down to side {window} - {abs(d)}: use a '
                         f'window of at least {abs(d) + 1} tokens.')
    sides = tuple(range(window - abs(d), window + abs(d) + 1))
    return sides if d > 0 else sides[::-1]


def phase_begin(variant: str, iters: int, full_phase_begin: int | None = None) -> int | None:
    """The first whole-image iteration of a variant with a final whole-image phase
    (``*_ft``: ``full_phase_begin``, default 5/6 of ``iters``; ``winwin_ft_s*``: its own
    fraction), at most ``iters - 1`` so a short run still ends on whole images; ``None`` for
    the others."""
    if variant.endswith('_ft') and full_phase_begin is not None:
        return full_phase_begin
    own = {**RESIZED_PHASES, **RESTART_PHASES}
    frac = FULL_PHASE_FRACTION if variant.endswith('_ft') else \
        own[variant][0] if variant in own else None
    return None if frac is None else min(round(frac * iters), iters - 1)


def restart_phase(variant: str, schedule: list, iters: int) -> tuple[dict, list]:
    """``(full_image_phase, param_scheduler)`` of a restart variant (:data:`RESTART_PHASES`)
    for a host config of ``iters`` iterations (the detection, depth and flow tools): the phase
    from its begin fraction on, ``schedule`` cut there and the learning rate restarted by
    ``mmwinwin.engine.phase_restart_schedule`` with the variant's weight."""
    from mmwinwin.engine import phase_restart_schedule
    from mmwinwin.models.winwin.full_image_phase import full_image_phase_begin
    frac, weight = RESTART_PHASES[variant]
    phase = dict(begin_fraction=frac)
    return phase, phase_restart_schedule(schedule, full_image_phase_begin(phase, iters), iters,
                                         weight)


def _insert_before(pipeline: list, type_name: str, transform: dict) -> list:
    at = next(i for i, t in enumerate(pipeline) if t['type'] == type_name)
    return pipeline[:at] + [transform] + pipeline[at:]


def build_cfg(variant: str, data_root: str, work_dir: str, img_size: tuple[int, int],
              window: int, crop: int, iters: int, batch_size: int, lr: float = 2e-3,
              seed: int = 0, log_interval: int = 50,
              embed_dims: int = 64, num_layers: int = 4, bg_weight: float = 0.25,
              num_scenes: int = 3, context_pool: int = CONTEXT_POOL,
              full_phase_begin: int | None = None, patch_size: int | None = None):
    """The mmengine ``Config`` of one variant: :data:`CONFIG` with the variant's model and
    training pipeline, and the data, size, schedule and model size of the arguments.

    ``full_phase_begin``: first whole-image iteration of the ``*_ft`` variants (default
    ``round(FULL_PHASE_FRACTION * iters)``, at most ``iters - 1`` so a short run still ends
    on whole images). ``patch_size``: the backbone's (default: the config's, 16); ``window``
    counts tokens of this size."""
    from mmengine.config import Config

    from mmwinwin.datasets.synthetic import synthetic_ade20k_classes
    from mmwinwin.engine import phase_restart_schedule

    if variant not in VARIANTS:
        raise KeyError(f'Unknown variant {variant!r}; choose from {sorted(VARIANTS)}.')
    cfg = Config.fromfile(repo_path(*CONFIG))
    for name in _FILE_VARIABLES:
        cfg.pop(name, None)
    samples = window_samples(variant, window)
    windows = samples is not None
    abspos = variant == 'winwin_abspos'
    classes = tuple(synthetic_ade20k_classes(num_scenes))
    cfg.work_dir = work_dir

    model = cfg.model
    model.type = 'WinWinEncoderDecoder' if windows else 'EncoderDecoder'
    backbone = model.backbone
    backbone.arch.update(embed_dims=embed_dims, num_layers=num_layers)
    if patch_size is not None:
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
            raise ValueError(f'patch_size must be a positive int (pixels), got {patch_size!r}.')
        backbone.patch_size = patch_size
    backbone.update(img_size=tuple(img_size), out_indices=(num_layers - 1,),
                    use_rope=not abspos, use_abs_pos_embed=abspos)
    model.data_preprocessor.size = (crop, crop) if variant == 'crop' else \
        lowres_size(img_size, window, backbone.patch_size) if variant == 'lowres' else \
        tuple(img_size)  # the low resolution counts tokens of the backbone's patch size
    head = model.decode_head
    head.update(in_channels=embed_dims, channels=embed_dims, num_classes=len(classes))
    head.loss_decode.class_weight = [bg_weight] + [1.0] * (len(classes) - 1)
    if variant.startswith('winwin_ctx'):
        model.context_tokens = dict(pool=context_pool)
    if variant in GRID_CONTEXTS:
        model.context_tokens = dict(GRID_CONTEXTS[variant])
    if variant.endswith('_ft'):
        model.full_image_phase = dict(begin=phase_begin(variant, iters, full_phase_begin))
    if variant in RESIZED_PHASES:
        frac, scale = RESIZED_PHASES[variant]
        model.full_image_phase = dict(begin=phase_begin(variant, iters), scale=scale)
    elif variant in RESTART_PHASES:
        model.full_image_phase = dict(begin=phase_begin(variant, iters))
    if variant in TWO_STAGE_PHASES:
        model.full_image_phase.update(scale=TWO_STAGE_PHASES[variant][0],
                                      full_size_fraction=TWO_STAGE_PHASES[variant][1])
    if variant in PART_BATCH_PHASES:
        model.full_image_phase.batch_fraction = PART_BATCH_PHASES[variant]
    if variant in FROZEN_PHASES:
        model.full_image_phase.frozen_blocks = round(FROZEN_PHASES[variant] * num_layers)
    if variant == 'winwin_mix':  # a run shorter than MIX_EVERY still has a whole-image step
        model.full_image_phase = dict(every=max(2, min(MIX_EVERY, iters)))

    train = cfg.train_dataloader
    pipeline = list(train.dataset.pipeline)
    if variant == 'crop':
        pipeline = _insert_before(pipeline, 'RandomFlip',
                                  dict(type='RandomCrop', crop_size=(crop, crop)))
    if windows:  # windows on the backbone's token grid: its patch size
        mode, num, side = samples
        transform = dict(type='WinWinWindows', num_windows=num, window_size=side,
                         patch_size=backbone.patch_size)
        if mode != 'windows':
            transform['mode'] = mode
        if variant in PROGRESSIVE_WINDOWS:  # one set of windows per stage, packed with them
            transform.pop('window_size')
            transform['progressive_sizes'] = progressive_sizes(variant, side)
            pack = next(t for t in pipeline if t['type'] == 'PackSegInputs')
            pack.meta_keys = tuple(pack.meta_keys) + ('winwin_window_stages',)
        pipeline = _insert_before(pipeline, 'PackSegInputs', transform)
    if variant == 'lowres':  # train and test on the whole image at the low resolution; the
        # test's labels stay full-size (loaded after the resize), predictions are upsampled
        h, w = lowres_size(img_size, window, backbone.patch_size)
        resize = dict(type='Resize', scale=(w, h), keep_ratio=False)
        pipeline = _insert_before(pipeline, 'RandomFlip', resize)
        test = cfg.test_dataloader.dataset
        test.pipeline = _insert_before(list(test.pipeline), 'LoadAnnotations', resize)
    train.dataset.pipeline = pipeline
    train.batch_size = batch_size
    for loader in (train, cfg.test_dataloader):
        loader.dataset.data_root = data_root
        loader.dataset.metainfo = dict(classes=classes)

    cfg.optim_wrapper.optimizer.lr = lr
    warm = max(1, iters // 10)
    cfg.param_scheduler[0].end = warm
    cfg.param_scheduler[1].update(begin=warm, end=iters)
    if variant in RESTART_PHASES:  # the windows part decays to 0 at the phase, which restarts
        begin = phase_begin(variant, iters)  # (a run this short has no decay before the phase)
        cfg.param_scheduler = phase_restart_schedule(
            [s for s in cfg.param_scheduler if s['begin'] < begin], begin, iters,
            RESTART_PHASES[variant][1])
    cfg.train_cfg.update(max_iters=iters, val_interval=iters + 1)
    cfg.default_hooks.logger.interval = log_interval
    cfg.default_hooks.checkpoint.interval = iters
    cfg.randomness = dict(seed=seed)
    return cfg


def tokens_per_image(variant: str, img_size: tuple[int, int], window: int, crop: int,
                     context_pool: int = CONTEXT_POOL, patch_size: int = 16) -> str:
    """The tokens a training image gives the backbone: the windows' (plus the pooled context
    cells of ``winwin_ctx*``), the whole image's, the crop's; ``A then B`` for the variants
    that end on whole images (``*_ft``)."""
    gh, gw = img_size[0] // patch_size, img_size[1] // patch_size
    whole = gh * gw
    if variant == 'fullres':
        return str(whole)
    if variant == 'crop':
        return str((crop // patch_size) ** 2)
    if variant == 'lowres':
        h, w = lowres_size(img_size, window, patch_size)
        return str((h // patch_size) * (w // patch_size))
    _, num, side = window_samples(variant, window)
    tokens = num * side ** 2
    if variant in PROGRESSIVE_WINDOWS:
        sizes = progressive_sizes(variant, window)
        tokens = f'{num * sizes[0] ** 2} to {num * sizes[-1] ** 2}'
    if variant.startswith('winwin_ctx'):
        tokens += -(-gh // context_pool) * -(-gw // context_pool)
    if variant in GRID_CONTEXTS:
        rows, cols = GRID_CONTEXTS[variant]['grid']
        tokens += min(rows, gh) * min(cols, gw)
    if variant == 'winwin_mix':
        return f'{tokens}, every {MIX_EVERY}th {whole}'
    if variant in RESIZED_PHASES:
        scale = RESIZED_PHASES[variant][1]
        return f'{tokens} then {math.ceil(gh * scale) * math.ceil(gw * scale)}'
    if variant in TWO_STAGE_PHASES:
        scale = TWO_STAGE_PHASES[variant][0]
        return f'{tokens} then {math.ceil(gh * scale) * math.ceil(gw * scale)} then {whole}'
    ends_whole = variant.endswith('_ft') or variant in RESTART_PHASES
    return f'{tokens} then {whole}' if ends_whole else str(tokens)


def train_and_test(cfg, quiet: bool = False) -> dict:
    """Train with the mmengine Runner, then test on whole images; returns metrics and the
    training wall time in seconds (data loading included, evaluation excluded)."""
    from mmengine.logging import MMLogger
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg)
    if quiet:
        MMLogger.get_current_instance().setLevel(logging.WARNING)
    t0 = time.perf_counter()
    runner.train()
    train_s = time.perf_counter() - t0
    metrics = runner.test()
    return dict(metrics, train_s=train_s)
