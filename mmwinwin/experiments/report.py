"""Regenerate every generated table and plot of the docs from the committed data.

    python -m mmwinwin.experiments.report            # rewrite the tables in place, redraw PNGs
    python -m mmwinwin.experiments.report --check    # exit 1, naming each table that differs

A generated table sits in a markdown file (README.md, docs/, configs/) between two lines::

    <!-- report: NAME -->
    ...
    <!-- /report: NAME -->

and NAME is one of :data:`BLOCKS`: a function of committed data only (per-seed points in
``docs/curves/`` and ``docs/data/``), so a test (``tests/test_docs_reports.py``) fails when a
table in the docs and what the data gives disagree.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import re
import sys

from . import REPO_ROOT, repo_path
from .reproduction import RECIPE

#: the same-batch Win-Win comparisons (``winwin_curves`` invocations of one setting each,
#: docs/winwin.md): 192x384 images with 6x6-token windows (tasks local, long, long3, long4)
#: and 256x512 images with 8x8-token windows (task long): block prefix -> data, plots
SAME_BATCH = ('docs', 'curves', 'same_batch', 'curves.json')
LARGE_BATCH = ('docs', 'curves', 'same_batch_256x512', 'curves.json')
#: and a check of the longer phase (r) against (p) and full resolution on the 3- and 4-scene
#: tasks, all trained in one session (one invocation), so that their times share its load
LONGER_PHASE_BATCH = ('docs', 'curves', 'longer_phase_same_session', 'curves.json')
#: and (t) against full resolution on the local task, in one session for the same reason
PART_BATCH_SESSION = ('docs', 'curves', 'part_batch_same_session', 'curves.json')
#: and the shipped recipe (r) against full resolution on the local task, in one session
RECIPE_SESSION = ('docs', 'curves', 'recipe_same_session', 'curves.json')
#: and the windows that grow (y) or shrink (z) over training against (r) and full resolution,
#: on 192x384 (tasks long and long4; long3, a store of its own run beside them) and 256x512
#: (task long), all in one session
PROGRESSIVE_SESSION = ('docs', 'curves', 'progressive_windows_session', 'curves.json')
PROGRESSIVE_LONG3_SESSION = ('docs', 'curves', 'progressive_windows_session_long3',
                             'curves.json')
PROGRESSIVE_LARGE_SESSION = ('docs', 'curves', 'progressive_windows_session_256x512',
                             'curves.json')
#: and the recipe (r) against full resolution on the same tasks (long, long4) with the
#: backbone at patch 8: 4x the tokens of each image (24x48), so that a window step costs about
#: what it costs against whole images at ViT-B/16 1280x720 (0.16), in one session
PATCH8_SESSION = ('docs', 'curves', 'patch8_session', 'curves.json')
#: and the same at the suite's larger image, 256x512 (32x64 tokens at patch 8, windows of
#: 16x16 tokens: the 128x128-pixel windows of the 256x512 store at patch 16), in one session
PATCH8_LARGE_SESSION = ('docs', 'curves', 'patch8_session_256x512', 'curves.json')
BATCHES = {'winwin-same-batch': (SAME_BATCH, ('docs', 'images', 'winwin_same_batch')),
           'winwin-large-batch': (LARGE_BATCH, ('docs', 'images', 'winwin_large_batch')),
           'winwin-longer-phase': (LONGER_PHASE_BATCH,
                                   ('docs', 'images', 'winwin_longer_phase')),
           'winwin-part-batch': (PART_BATCH_SESSION, ('docs', 'images', 'winwin_part_batch')),
           'winwin-recipe-session': (RECIPE_SESSION,
                                     ('docs', 'images', 'winwin_recipe_session')),
           'winwin-progressive': (PROGRESSIVE_SESSION,
                                  ('docs', 'images', 'winwin_progressive_windows')),
           'winwin-progressive-long3': (PROGRESSIVE_LONG3_SESSION,
                                        ('docs', 'images', 'winwin_progressive_windows_long3')),
           'winwin-progressive-large': (PROGRESSIVE_LARGE_SESSION,
                                        ('docs', 'images', 'winwin_progressive_windows_256x512')),
           'winwin-patch8': (PATCH8_SESSION, ('docs', 'images', 'winwin_patch8')),
           'winwin-patch8-large': (PATCH8_LARGE_SESSION,
                                   ('docs', 'images', 'winwin_patch8_256x512'))}
#: the other tasks' same-batch stores (``winwin_flow_curves``: flow EPE, depth RMSE)
FLOW_BATCH = ('docs', 'curves', 'flow_same_batch', 'curves.json')
DEPTH_BATCH = ('docs', 'curves', 'depth_same_batch', 'curves.json')
#: panoptic Mask2Former on generated COCO (``winwin_det_curves --model mask2former-panoptic``)
PANOPTIC_BATCH = ('docs', 'curves', 'det_panoptic_local_phase', 'curves.json')
#: 256x256 detection (``winwin_det_curves``): Mask R-CNN local (full resolution and both
#: recipes), panoptic Mask2Former local and Mask R-CNN context (full resolution and the recipe)
MASK_RCNN_BATCH = ('docs', 'curves', 'det_mask_rcnn_local_256', 'curves.json')
PANOPTIC_256_BATCH = ('docs', 'curves', 'det_panoptic_local_256', 'curves.json')
MASK_RCNN_CONTEXT_BATCH = ('docs', 'curves', 'det_mask_rcnn_context_256', 'curves.json')
PANOPTIC_CONTEXT_256_BATCH = ('docs', 'curves', 'det_panoptic_context_256', 'curves.json')
#: the detection configs' recipes (v), (x) against (r) and full resolution on the detection
#: tasks, each store one invocation of one session (``winwin_det_curves --variants fullres
#: winwin_ft_r100_l3 winwin_ft_r100_l3_twin``, resumed there with (w) and (x)), so that its
#: times share one load
PANOPTIC_SESSION = ('docs', 'curves', 'det_panoptic_local_128_session', 'curves.json')
MASK_RCNN_SESSION = ('docs', 'curves', 'det_mask_rcnn_local_session', 'curves.json')
MASK_RCNN_CONTEXT_SESSION = ('docs', 'curves', 'det_mask_rcnn_context_session', 'curves.json')
PANOPTIC_256_SESSION = ('docs', 'curves', 'det_panoptic_local_session', 'curves.json')
PANOPTIC_CONTEXT_256_SESSION = ('docs', 'curves', 'det_panoptic_context_session', 'curves.json')
#: the windows over same-class pairs (``winwin_det_curves`` variant ``*_pairs``) against the
#: same recipe with uniform windows, on the local detection stores: store, metric, name
PAIRS = 'winwin_ft_r100_l3_pairs'
PAIRS_STORES = ((PANOPTIC_256_BATCH, 'PQ things',
                 'panoptic Mask2Former `local` (256x256, windows of 6x6 tokens)'),
                (PANOPTIC_BATCH, 'PQ things',
                 'panoptic Mask2Former `local` (128x256, windows of 4x4 tokens)'),
                (MASK_RCNN_BATCH, 'bbox AP', 'Mask R-CNN `local` (256x256, windows of 6x6 tokens)'))
PHASE_R100 = 'winwin_ft_r100'
#: (r) whose whole-image steps sample anchors, proposals, RoIs and mask points as the
#: full-resolution runs (``full_image_phase.train_cfg``): a detection-only variant of
#: ``winwin_det_curves``, lettered beside the segmentation variants of ``reproduction``
PHASE_TWIN = 'winwin_ft_r100_l3_twin'
#: and (p), the last sixth, sampling so: the cheaper phase
PHASE_TWIN_SIXTH = 'winwin_ft_r100_twin'
#: and (v) on half of each batch in the phase (``batch_fraction=0.5``, as (t)): about (w)'s cost
PHASE_TWIN_PART = 'winwin_ft_h50_r100_l3_twin'
_DETECTION_ONLY = {PHASE_TWIN: '(v) Win-Win, then whole images for the last 1/3 sampling as '
                               'full resolution, phase LR restarted at 1',
                   PHASE_TWIN_SIXTH: '(w) Win-Win, then whole images for the last 1/6 '
                                     'sampling as full resolution, phase LR restarted at 1',
                   PHASE_TWIN_PART: '(x) Win-Win, then whole images for the last 1/3 on half '
                                    'of each batch sampling as full resolution, phase LR '
                                    'restarted at 1'}
#: the task suite of the criterion: (store, metric, lower is better, row prefix, the recipe its
#: family's configs ship); a row is named ``<prefix><task> (<image size>)``. Segmentation: the
#: last third on whole images with the phase's own learning rate (RECIPE); flow: the last sixth
#: with its own learning rate (``winwin_ft_r100``); depth: the last sixth under the host's
#: schedule (``winwin_ft``); detection: RECIPE sampling as full resolution in its whole-image
#: steps (PHASE_TWIN, the Mask R-CNN configs'; panoptic: on half of each batch, PHASE_TWIN_PART),
#: on stores of one session each; each the best measured on its family. The patch-8
#: stores' rows are the segmentation tasks at ViT-B's step-cost ratio (named ``... , patch 8``)
SUITE = ((SAME_BATCH, 'mIoU', False, '', RECIPE), (LARGE_BATCH, 'mIoU', False, '', RECIPE),
         (PATCH8_SESSION, 'mIoU', False, '', RECIPE),
         (PATCH8_LARGE_SESSION, 'mIoU', False, '', RECIPE),
         (PANOPTIC_SESSION, 'PQ things', False, 'panoptic ', PHASE_TWIN_PART),
         (PANOPTIC_256_SESSION, 'PQ things', False, 'panoptic ', PHASE_TWIN_PART),
         (PANOPTIC_CONTEXT_256_SESSION, 'PQ things', False, 'panoptic ', PHASE_TWIN_PART),
         (MASK_RCNN_SESSION, 'bbox AP', False, 'Mask R-CNN ', PHASE_TWIN),
         (MASK_RCNN_CONTEXT_SESSION, 'bbox AP', False, 'Mask R-CNN ', PHASE_TWIN),
         (DEPTH_BATCH, 'RMSE', True, '', 'winwin_ft'), (FLOW_BATCH, 'EPE', True, '', PHASE_R100))
#: the detection stores where the recipes were compared, one session's runs merged with later
#: sessions' (panoptic Mask2Former 128x256 and 256x256 ``local``, 256x256 ``context``, Mask
#: R-CNN 256x256 ``local`` and ``context``): (store, metric, lower is better, row prefix)
DETECTION_RECIPE_STORES = ((PANOPTIC_BATCH, 'PQ things', False, 'panoptic '),
                           (PANOPTIC_256_BATCH, 'PQ things', False, 'panoptic '),
                           (PANOPTIC_CONTEXT_256_BATCH, 'PQ things', False, 'panoptic '),
                           (MASK_RCNN_BATCH, 'bbox AP', False, 'Mask R-CNN '),
                           (MASK_RCNN_CONTEXT_BATCH, 'bbox AP', False, 'Mask R-CNN '))
TASK_ORDER = ('local', 'long', 'long3', 'long4', 'context', 'depth', 'flow')
PEERS = ('winwin', 'random_tokens', 'window1', 'windows4', 'lowres')
#: the recipe candidates of the criterion tables: the shipped recipe (first), the last sixth
#: with its own learning rate and under the config's schedule (the earlier recipes), the
#: resized phases, (r)'s phase on half of each batch and (r)'s phase training the last blocks;
#: the detection variants (v), (w) and (x); the windows growing (y) and shrinking (z); (r) with
#: max-pooled context tokens on a fixed grid (A); (t)'s phase over the last 2/3 (B); (r) with
#: the phase's learning rate restarted at 2 (C); (A) with (C)'s restart (D); a two-stage phase,
#: half size, then full size (E), its half-size stage from 1/6 (F)
RECIPES = (RECIPE, PHASE_R100, 'winwin_ft', 'winwin_ft_s50', 'winwin_ft_s75',
           'winwin_ft_h50_r100_l3', 'winwin_ft_k75_r100_l3', PHASE_TWIN, PHASE_TWIN_SIXTH,
           PHASE_TWIN_PART, 'winwin_grow_r100_l3', 'winwin_shrink_r100_l3',
           'winwin_gridctx_max_r100_l3', 'winwin_ft_h50_r100_l23', 'winwin_ft_r200_l3',
           'winwin_gridctx_max_r200_l3', 'winwin_ft_s50_s100_r100_l23',
           'winwin_ft_s50_s100_r100_l56')
#: a screening of the phase's learning rate and length (a few seeds of the harder tasks,
#: ``winwin_curves --out docs/curves/phase_lr_screen``), read beside the same-batch runs
PHASE_LR_SCREEN = ('docs', 'curves', 'phase_lr_screen', 'curves.json')
#: the same models' training cost per step, measured side by side (``winwin_curves --step-cost``)
SAME_BATCH_STEP_COSTS = ('docs', 'curves', 'same_batch', 'step_costs.json')
#: the same, for the recipe and the longer phases (r) and (s), in one later measurement
LONGER_PHASE_STEP_COSTS = ('docs', 'curves', 'step_costs_longer_phase', 'step_costs.json')
#: the same, for (r)'s phase on half of each batch, (t), beside (p) and (r)
PART_BATCH_STEP_COSTS = ('docs', 'curves', 'step_costs_part_batch', 'step_costs.json')
#: the same, for (r)'s phase training the last quarter of the blocks, (u), beside (r) and (t)
FROZEN_BLOCKS_STEP_COSTS = ('docs', 'curves', 'step_costs_frozen_blocks', 'step_costs.json')
#: the same, for full resolution and (r) at patch 8 (the store of ``winwin-patch8``)
PATCH8_STEP_COSTS = ('docs', 'curves', 'step_costs_patch8', 'step_costs.json')
#: block name -> step-cost store
STEP_COSTS = {'winwin-same-batch-step-costs': SAME_BATCH_STEP_COSTS,
              'winwin-longer-phase-step-costs': LONGER_PHASE_STEP_COSTS,
              'winwin-part-batch-step-costs': PART_BATCH_STEP_COSTS,
              'winwin-frozen-blocks-step-costs': FROZEN_BLOCKS_STEP_COSTS,
              'winwin-patch8-step-costs': PATCH8_STEP_COSTS}
#: Expedite against token merging and pooling (``token_reduction``; docs/alternatives.md)
TOKEN_REDUCTION = ('docs', 'data', 'token_reduction.json')

_MARK = re.compile(r'^<!-- report: (?P<name>[\w.-]+) -->\n(?P<body>.*?)^<!-- /report: '
                   r'(?P=name) -->$', re.S | re.M)


def _exists(parts) -> bool:
    return osp.exists(osp.join(REPO_ROOT, *parts))


def _load(parts) -> object:
    with open(repo_path(*parts)) as f:
        return json.load(f)


def _label(name: str) -> str:
    from .winwin_curves import label
    return _DETECTION_ONLY.get(name) or label(name)


def _variants(results):
    from .reproduction import VARIANTS
    seen = {r['variant'].split('_b')[0] for r in results}
    return [v for v in [*VARIANTS, *_DETECTION_ONLY] if v in seen]


def _tasks(results):
    seen = {r['task'] for r in results}
    return [t for t in TASK_ORDER if t in seen]


def _size(results) -> str:
    """A store's image size, ``192x384``, with its patch when not the config's 16
    (``192x384, patch 8``)."""
    r = results[0]
    size = 'x'.join(str(v) for v in r['img_size'])
    return size + (f', patch {r["patch_size"]}' if r.get('patch_size', 16) != 16 else '')


def _setting(results):
    r = results[0]
    patch = f', patch {r["patch_size"]}' if r.get('patch_size', 16) != 16 else ''
    return (f'{r["img_size"][0]}x{r["img_size"][1]} images{patch}, windows of {r["window"]}x'
            f'{r["window"]} tokens, {r["iters"]} iterations, batch {r["batch_size"]}, '
            f'validation every {r["val_every"]} iterations on the whole images, seeds '
            f'{", ".join(str(s) for s in sorted({x["seed"] for x in results}))}, '
            f'{r["jobs"]} runs side by side at {r["threads"]} thread each')


def _recipes(results):
    return [v for v in RECIPES if v in _variants(results)]


def _batch_blocks(prefix: str, parts: tuple) -> dict:
    """The tables of one same-batch store, named ``<prefix>-...``."""
    from .comparison import criterion_table, final_table, peers_table

    blocks = {
        f'{prefix}-setting': _setting,
        f'{prefix}-criterion': lambda res: criterion_table(res, _tasks(res)),
        f'{prefix}-criterion-recipes': lambda res: criterion_table(
            res, _tasks(res), recipes=_recipes(res), label_fn=_label),
    }
    for task in TASK_ORDER:
        blocks[f'{prefix}-final-{task}'] = (
            lambda res, t=task: final_table(res, t, _variants(res), label_fn=_label))
        blocks[f'{prefix}-peers-{task}'] = (
            lambda res, t=task: peers_table(res, t, [p for p in PEERS if p in _variants(res)],
                                            label_fn=_label))
    return {name: (parts, fn) for name, fn in blocks.items()}


def _suite_block(stores: list, candidates: bool = False) -> str:
    """The criterion of the shipped recipe (or, with ``candidates``, of every recipe
    candidate) on every task of the suite: the tasks of every store, named with their image
    size, each with its metric (:data:`SUITE`)."""
    from .comparison import criterion_table
    present = [entry for entry in SUITE if _exists(entry[0])]
    tables = []
    for i, (res, (_, metric, lower, prefix, shipped)) in enumerate(zip(stores, present)):
        size = _size(res)
        recipes = _recipes(res) if candidates else [shipped]
        tables.append(criterion_table(
            res, _tasks(res), metric=metric, lower_is_better=lower, recipes=recipes,
            label_fn=_label, task_label=lambda t, p=prefix, s=size: f'{p}{t} ({s})',
            metric_in_cells=True, header=i == 0, recipe_column=True))
    return '\n'.join(tables)


def _screen_block(data: list) -> str:
    """End-of-schedule mIoU per seed of the screening runs, beside full resolution and the
    recipe candidates of the same-batch store on the same tasks and seeds."""
    screen, same = data
    seeds = sorted({r['seed'] for r in screen})
    lines = ['| task | variant | store | ' + ' | '.join(f'seed {s}' for s in seeds) + ' |',
             '|---|---|---|' + '---:|' * len(seeds)]
    for task in _tasks(screen):
        for store, results, variants in (
                ('same batch', same, ['fullres'] + list(RECIPES[:3])),
                ('screen', screen, _variants(screen))):
            for v in variants:
                ends = {r['seed']: r['points'][-1]['mIoU'] for r in results
                        if r['task'] == task and r['variant'].split('_b')[0] == v}
                if ends:
                    cells = [f'{ends[s]:.1f}' if s in ends else '-' for s in seeds]
                    lines.append(f'| {task} | {_label(v)} | {store} | ' + ' | '.join(cells)
                                 + ' |')
    return '\n'.join(lines)


#: the stores where full resolution and the recipe (r) ran in one session on every long-range
#: segmentation task, for the table of when each learns the distant cue (CPU seconds of one
#: session only)
CUE_STORES = (PROGRESSIVE_SESSION, PROGRESSIVE_LONG3_SESSION, PROGRESSIVE_LARGE_SESSION)


def _cue_block(stores: list) -> str:
    """Per store with full resolution and the recipe, per long-range task and seed: when each
    first reaches the midpoint of full resolution's rise (``comparison.cue_table``)."""
    from .comparison import cue_table
    from .reproduction import phase_begin
    tables = []
    for i, res in enumerate(stores):
        size = _size(res)
        table = cue_table(res, [t for t in _tasks(res) if t != 'local'], RECIPE,
                          lambda iters: phase_begin(RECIPE, iters),
                          task_label=lambda t, s=size: f'{t} ({s})')
        tables.append(table if i == 0 else '\n'.join(table.split('\n')[2:]))
    return '\n'.join(tables)


def _pairs_block(stores: list) -> str:
    """Per local detection store: full resolution, (r) and (r) with the first window over
    a same-class pair (and Win-Win without a phase, with and without it, where measured), at
    the end of the schedule; the two (r) against full resolution at equal time."""
    from .comparison import criterion_table, final_table
    from .winwin_det_curves import label
    parts = []
    for res, (_, metric, name) in zip(stores, PAIRS_STORES):
        variants = ['fullres', 'winwin', 'winwin_pairs', RECIPE, PAIRS]
        parts += [f'{name}, {metric}:', '',
                  final_table(res, 'local', variants, label_fn=label, metric=metric), '',
                  criterion_table(res, ['local'], recipes=[RECIPE, PAIRS], metric=metric,
                                  label_fn=label, recipe_column=True), '']
    return '\n'.join(parts[:-1])


def _step_cost_block(data: dict) -> str:
    from argparse import Namespace

    from .winwin_curves import step_cost_table
    costs = {k: v for k, v in data.items() if k != '_settings'}
    return step_cost_table(costs, Namespace(**data['_settings']))


def _token_reduction_blocks() -> dict:
    try:
        from . import token_reduction
    except ImportError:  # the comparison tool is not part of this checkout
        return {}
    if not _exists(TOKEN_REDUCTION):
        return {}
    names = token_reduction.tables(_load(TOKEN_REDUCTION))
    return {f'token-reduction-{n}': (TOKEN_REDUCTION,
                                     lambda d, n=n: token_reduction.tables(d)[n])
            for n in names}


#: the variants of the detection recipe table, in order: windows only, the last sixth under the
#: host's schedule and with its own learning rate, the last third with its own learning rate
DETECTION_RECIPES = ('fullres', 'winwin', 'winwin_ft', PHASE_R100, RECIPE)
#: the same-session detection stores (the detection tasks of :data:`SUITE`) and their
#: variants: full resolution, (r), the configs' (v) and, where measured, (w) and (x)
DETECTION_SESSION_STORES = tuple(entry for entry in SUITE if entry[3])
DETECTION_SESSION = ('fullres', RECIPE, PHASE_TWIN, PHASE_TWIN_SIXTH, PHASE_TWIN_PART)


def _detection_blocks(entries: list, variants: tuple, with_criterion: bool) -> str:
    """Per detection store of ``entries`` (those committed): the end of schedule of
    ``variants`` (those measured there), and with ``with_criterion`` the criterion of its
    recipes."""
    def block(stores: list) -> str:
        from .comparison import criterion_table, final_table
        parts = []
        for res, (_, metric, lower, prefix, *_) in zip(stores, entries):
            size = _size(res)
            seen = [v for v in variants if v in {r['variant'] for r in res}]
            for task in _tasks(res):
                part = f'{prefix}`{task}` ({size}), {metric}:\n\n' + final_table(
                    res, task, seen, label_fn=_label, metric=metric, lower_is_better=lower)
                if with_criterion:
                    part += '\n\n' + criterion_table(
                        res, [task], recipes=[v for v in seen if v != 'fullres'],
                        metric=metric, lower_is_better=lower, label_fn=_label,
                        recipe_column=True, metric_in_cells=True)
                parts.append(part)
        return '\n\n'.join(parts)
    return block


def blocks() -> dict:
    """NAME -> (data file parts, function of the loaded data returning the markdown)."""
    out = {}
    for prefix, (parts, _) in BATCHES.items():
        if _exists(parts):
            out.update(_batch_blocks(prefix, parts))
    stores = tuple(entry[0] for entry in SUITE if _exists(entry[0]))
    if stores:
        out['winwin-suite-criterion'] = (stores, _suite_block)
        out['winwin-suite-criterion-recipes'] = (
            stores, lambda data: _suite_block(data, candidates=True))
    for name, entries, variants, with_criterion in (
            ('winwin-detection-recipes', DETECTION_RECIPE_STORES, DETECTION_RECIPES, False),
            ('winwin-detection-session', DETECTION_SESSION_STORES, DETECTION_SESSION, True)):
        present = [entry for entry in entries if _exists(entry[0])]
        if present:
            out[name] = (tuple(entry[0] for entry in present),
                         _detection_blocks(present, variants, with_criterion))
    cue = tuple(parts for parts in CUE_STORES if _exists(parts))
    if cue:
        out['winwin-cue-learning'] = (cue, _cue_block)
    patch8 = tuple(parts for parts in (PATCH8_SESSION, PATCH8_LARGE_SESSION) if _exists(parts))
    if patch8:  # the same table at patch 8, a table of its own
        out['winwin-patch8-cue-learning'] = (patch8, _cue_block)
    if _exists(PHASE_LR_SCREEN) and _exists(SAME_BATCH):
        out['winwin-phase-lr-screen'] = ((PHASE_LR_SCREEN, SAME_BATCH), _screen_block)
    if all(_exists(entry[0]) for entry in PAIRS_STORES):
        out['winwin-same-class-pairs'] = (tuple(entry[0] for entry in PAIRS_STORES),
                                          _pairs_block)
    for name, parts in STEP_COSTS.items():
        if _exists(parts):
            out[name] = (parts, _step_cost_block)
    out.update(_token_reduction_blocks())
    return out


def render(name: str, cache: dict | None = None) -> str:
    """The markdown of block ``name`` from its committed data."""
    table = blocks()
    if name not in table:
        raise KeyError(f'Unknown generated table {name!r} (or its data file is missing); '
                       f'known: {sorted(table)}. Name one of them in the <!-- report: NAME --> '
                       'line, or commit the data it is generated from.')
    parts, fn = table[name]
    cache = {} if cache is None else cache
    several = isinstance(parts[0], tuple)  # a table of several data files
    for one in (parts if several else [parts]):
        if one not in cache:
            cache[one] = _load(one)
    return fn([cache[p] for p in parts] if several else cache[parts]).strip()


def documents() -> list[str]:
    """Every markdown file that may hold generated tables."""
    root = REPO_ROOT
    files = [osp.join(root, 'README.md')]
    files += sorted(glob.glob(osp.join(root, 'docs', '**', '*.md'), recursive=True))
    files += sorted(glob.glob(osp.join(root, 'configs', '**', 'README.md'), recursive=True))
    return [f for f in files if osp.isfile(f)]


def update(path: str, check: bool = False, cache: dict | None = None) -> list[str]:
    """Rewrite (or, with ``check``, compare) the generated tables of one markdown file;
    returns the names of the tables that differed."""
    with open(path) as f:
        text = f.read()
    cache = {} if cache is None else cache
    differ = []

    def fill(m):
        want = render(m.group('name'), cache)
        if m.group('body').strip() != want:
            differ.append(m.group('name'))
        return f'<!-- report: {m.group("name")} -->\n{want}\n<!-- /report: {m.group("name")} -->'

    new = _MARK.sub(fill, text)
    if not check and new != text:
        with open(path, 'w') as f:
            f.write(new)
    return differ


def draw() -> list[str]:
    """Every generated plot, from the committed data."""
    paths = []
    for parts, images in BATCHES.values():
        if not _exists(parts):
            continue
        from .curves import plot, summarise
        out = osp.join(REPO_ROOT, *images)
        os.makedirs(out, exist_ok=True)
        summary = summarise(_load(parts))
        paths += plot({'mIoU': summary}, out, label_fn=_label, prefix='curves')
    if _exists(TOKEN_REDUCTION):
        try:
            from . import token_reduction
        except ImportError:
            token_reduction = None
        if token_reduction is not None:
            paths += token_reduction.plots(_load(TOKEN_REDUCTION),
                                           osp.join(REPO_ROOT, 'docs', 'images', 'token_reduction'))
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--check', action='store_true',
                        help='change nothing; exit 1 if a generated table differs from its data')
    parser.add_argument('--no-plots', action='store_true', help='tables only')
    args = parser.parse_args(argv)
    cache, bad = {}, []
    for path in documents():
        for name in update(path, check=args.check, cache=cache):
            bad.append(f'{osp.relpath(path, REPO_ROOT)}: {name}')
    if args.check:
        if bad:
            print('These generated tables disagree with their committed data (run `python -m '
                  'mmwinwin.experiments.report` to regenerate them):\n  ' + '\n  '.join(bad))
            return 1
        print('Every generated table agrees with its data.')
        return 0
    for name in bad:
        print('[report] rewrote', name)
    if not args.no_plots:
        for p in draw():
            print('[report] drew', osp.relpath(p, REPO_ROOT))
    return 0


if __name__ == '__main__':
    sys.exit(main())
