"""Every command that a tool of ``tools/analysis_tools/`` or an experiment of
``mmwinwin.experiments`` documents in its docstring runs, at a tiny size, with its documented
flags (tiny-size overrides added), in this process (``runpy``, as ``python -m`` / ``python
tools/...`` would).

``COMMANDS`` maps each documented command to the arguments the test gives it; a command whose
run another test makes (``tests/<file>::<test>``, same arguments from this table) is named
there, and a GPU-only command (``--device cuda``, the full-size GPU benchmark) runs only where
CUDA is available. ``test_every_documented_command_is_in_the_table`` keeps the table and the
docstrings in step.
"""
from __future__ import annotations

import json
import os
import os.path as osp

import pytest
import torch

from documented import REPO, command_argv, documented_commands, run_in_process

TINY_SEG = ['--num-train', '2', '--num-val', '1', '--img-size', '64', '128', '--window', '2',
            '--batch-size', '2']
SEG_CONFIG = osp.join(REPO, 'configs/rope_vit/upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x128.py')
EXPEDITE_CONFIG = osp.join(
    REPO, 'configs/expedite/upernet-expedite_rope-vit-tiny-a2-s0.7_synthetic-ade20k-128x128.py')
DET_CONFIG = osp.join(REPO, 'configs/vitdet/experiments/'
                            'mask-rcnn_rope-vit-tiny-win4_600i_coco-synth-128x128.py')
GPU = 'GPU'  # runs only where CUDA is available
# Benchmarks that build full-size models (ViT-B, Swin-L detectors) whatever the input size, or
# run each measurement in fresh processes: 18 to 55 s each on 2 shared cores, together more
# than the whole budget of these tests; they run with MMWINWIN_TEST_HEAVY=1.
HEAVY = ('python tools/analysis_tools/benchmark_backbones.py --threads 2 --repeats 7',
         'python tools/analysis_tools/benchmark_detection.py --size 512 --reps 3 --threads 2',
         'python tools/analysis_tools/benchmark_detection.py --pairs vitdet-m2f-panoptic '
         '--size 1024',
         'python tools/analysis_tools/benchmark_winwin.py')


def _covered(where):
    return ('covered', where)


# documented command -> arguments (a function of the fixtures' paths), ('covered', test) or GPU
COMMANDS = {
    # ------------------------------------------------------------------ experiments
    'python -m mmwinwin.experiments.winwin_reproduction':
        lambda c: TINY_SEG + ['--iters', '2', '--crop', '32', '--work-dir', c.tmp / 'repro'],
    'python -m mmwinwin.experiments.winwin_reproduction --iters 600 --variants winwin fullres':
        lambda c: command_argv(c.cmd, {'--iters': [2]}, TINY_SEG + ['--crop', '32']),
    'python -m mmwinwin.experiments.winwin_curves --tasks long local --seeds 0 1 2 --iters 1200 '
    '--val-every 200 --out docs/images/winwin_curves':
        lambda c: command_argv(c.cmd, {'--seeds': [0], '--iters': [2], '--val-every': [2],
                                       '--out': [c.tmp / 'curves']},
                               TINY_SEG + ['--variants', 'winwin_ctx_ft', '--full-phase-begin',
                                           '1', '--crop', '32', '--work-dir', c.tmp / 'cw']),
    'python -m mmwinwin.experiments.winwin_curves --plot-only --out docs/images/winwin_curves':
        lambda c: command_argv(c.cmd, {'--out': [c.tmp / 'curves']}, TINY_SEG),
    'python -m mmwinwin.experiments.winwin_flow_curves --seeds 0 1 2 --variants fullres '
    'winwin_ft --val-every 250 --out docs/curves/flow_same_batch':
        lambda c: command_argv(c.cmd, {'--seeds': [0], '--variants': ['winwin_ft'],
                                       '--val-every': [2], '--out': [c.tmp / 'flow']},
                               ['--iters', '2', '--num-train', '2', '--num-val', '1',
                                '--work-dir', c.tmp / 'flow_work']),
    'python -m mmwinwin.experiments.winwin_flow_curves --plot-only --out '
    'docs/curves/flow_same_batch':
        lambda c: command_argv(c.cmd, {'--out': [c.tmp / 'flow']}),
    'python -m mmwinwin.experiments.winwin_flow_curves --task depth --seeds 0 1 2 --iters 2000 '
    '--val-every 250 --out docs/curves/depth_same_batch':
        lambda c: command_argv(c.cmd, {'--seeds': [0], '--iters': [2], '--val-every': [2],
                                       '--out': [c.tmp / 'depth']},
                               ['--variants', 'winwin_ft', '--num-train', '2', '--num-val',
                                '1', '--work-dir', c.tmp / 'depth_work']),
    'python -m mmwinwin.experiments.report':
        _covered('tests/test_docs_reports.py::test_report_regenerates_into_a_copy'),
    'python -m mmwinwin.experiments.report --check':
        _covered('tests/test_docs_reports.py::test_every_generated_table_agrees_with_its_data'),
    'python -m mmwinwin.experiments.token_reduction --work-dir work_dirs/token_reduction':
        _covered('tests/test_token_reduction_tool.py::test_toy_end_to_end'),
    'python -m mmwinwin.experiments.token_reduction --report-only':
        _covered('tests/test_token_reduction_tool.py::test_toy_end_to_end'),
    'python -m mmwinwin.experiments.winwin_demo':
        _covered('tests/test_winwin_demo.py::test_demo_trains_full_resolution_for_the_'
                 'measured_time_of_win_win'),
    'python -m mmwinwin.experiments.winwin_m2f_gap --seeds 0 --iters 600 --out work_dirs/m2f_gap':
        lambda c: command_argv(c.cmd, {'--iters': [2], '--out': [c.tmp / 'm2f_gap']},
                               ['--num-train', '4', '--num-val', '2', '--match-points', '64']),
    'python -m mmwinwin.experiments.winwin_diagnose --iters 1200 --out /tmp/diag':
        lambda c: command_argv(c.cmd, {'--iters': [2], '--out': [c.tmp / 'diag']},
                               TINY_SEG[:-2] + ['--draws', '20']),
    'python -m mmwinwin.experiments.winwin_det_curves --tasks context local --seeds 0 1 2 '
    '--variants fullres crop winwin --iters 300 --val-every 75 --out work_dirs/det_curves':
        lambda c: command_argv(c.cmd, {'--tasks': ['context'], '--seeds': [0],
                                       '--variants': ['winwin'], '--iters': [2],
                                       '--val-every': [2], '--out': [c.tmp / 'det']},
                               ['--num-train', '2', '--num-val', '1', '--batch-size', '2',
                                '--work-dir', c.tmp / 'det_work']),
    'python -m mmwinwin.experiments.winwin_det_curves --plot-only --out work_dirs/det_curves':
        _covered('tests/test_winwin_det_curves.py::test_stored_mask_rcnn_curves_redraw_from_'
                 'their_points'),
    'python -m mmwinwin.experiments.winwin_det_curves --model mask2former-panoptic --tasks '
    'context --variants fullres winwin crop winwin_long --long-factor 1.6 --iters 600 '
    '--val-every 100 --out work_dirs/det_panoptic_curves':
        _covered('tests/test_winwin_det_curves.py (fixture panoptic_run)'),
    'python -m mmwinwin.experiments.winwin_det_curves --model mask2former-panoptic --tasks '
    'local --seeds 0 1 2 --variants fullres winwin winwin_ft --iters 600 --val-every 100 '
    '--out docs/curves/det_panoptic_local_phase':
        # the panoptic run (fixture panoptic_run) and the winwin_ft variant's config
        _covered('tests/test_winwin_det_curves.py::test_panoptic_run_config_is_the_tiny_'
                 'mask2former_on_whole_images'),
    'python -m mmwinwin.experiments.expedite_accuracy CONFIG CHECKPOINT --settings 4:s0.7 '
    '3:s0.7 2:s0.5 [--window 5] [--k 20] [--temperature 0.02] [--iters 5] '
    '[--placement backbone]':
        # the tiny ViT has 4 blocks: alpha 3, 2, 1
        lambda c: command_argv(c.cmd, {'CONFIG': c.seg_cfg, 'CHECKPOINT': c.seg_ckpt,
                                       '--settings': ['3:s0.7', '2:s0.7', '1:s0.5']},
                               ['--k', '4', '--out', c.tmp / 'acc.md']),
    'python -m mmwinwin.experiments.expedite_divergence [--tokens smooth] [--td 10] [--seeds 3]':
        lambda c: command_argv(c.cmd, add=['--only', 'Segmenter', '--seeds', '1', '--batch',
                                           '1', '--channels', '16']),
    'python -m mmwinwin.experiments.expedite_token_distance CONFIG CHECKPOINT --grid 2 '
    '[--max-images 40]':
        lambda c: command_argv(c.cmd, {'CONFIG': c.det_cfg, 'CHECKPOINT': c.det_ckpt},
                               ['--max-images', '1']),
    # --------------------------------------------------------------- analysis tools
    'python tools/analysis_tools/benchmark_backbones.py --threads 2 --repeats 7':
        lambda c: command_argv(c.cmd, {'--threads': [1], '--repeats': [1]},
                               ['--size', '32', '--warmup', '0']),
    'python tools/analysis_tools/benchmark_backbones.py --families pe --json out.json':
        lambda c: command_argv(c.cmd, {'--json': [c.tmp / 'bb.json']},
                               ['--size', '32', '--repeats', '1', '--warmup', '0',
                                '--threads', '1']),
    'python tools/analysis_tools/benchmark_detection.py --size 512 --reps 3 --threads 2':
        lambda c: command_argv(c.cmd, {'--size': [64], '--reps': [1], '--threads': [1]}),
    'python tools/analysis_tools/benchmark_detection.py --pairs vitdet-m2f-panoptic --size 1024':
        lambda c: command_argv(c.cmd, {'--size': [64]}, ['--reps', '1', '--threads', '1']),
    'python tools/analysis_tools/benchmark_device.py OUT_DIR [--smoke] [--device cuda] '
    '[--dtype bf16]':
        _covered('tests/test_benchmark_device.py (fixture smoke: OUT_DIR --smoke)'),
    'bash tools/analysis_tools/benchmark_device.sh work_dirs/device': GPU,
    'bash tools/analysis_tools/benchmark_device.sh work_dirs/device --compile': GPU,
    'bash tools/analysis_tools/benchmark_device.sh work_dirs/smoke --smoke':
        _covered('tests/test_benchmark_device.py::test_shell_script_writes_results'),
    'python tools/analysis_tools/benchmark_expedite.py CONFIG [--checkpoint CKPT] '
    '[--size 640 640]':
        lambda c: command_argv(c.cmd, {'CONFIG': EXPEDITE_CONFIG},
                               ['--size', '64', '64', '--reps', '1',
                                '--out-dir', c.tmp / 'bexp']),
    'python tools/analysis_tools/benchmark_flow.py --device cuda --reps 5': GPU,
    'python tools/analysis_tools/benchmark_flow.py --threads 2 --reps 1 --train-size 436 1024':
        _covered('tests/test_flow_tiling.py::test_benchmark_puts_windows_one_pass_and_tiles_'
                 'side_by_side'),
    'python tools/analysis_tools/benchmark_winwin.py':
        lambda c: ['--arch', 'tiny', '--height', '64', '--width', '64', '--window-size', '2',
                   '--iters', '1', '--warmup', '0'],
    'python tools/analysis_tools/benchmark_winwin.py --device cuda --iters 10': GPU,
    'python tools/analysis_tools/benchmark_winwin_canvas.py':
        lambda c: ['--batch', '1', '--repeats', '1', '--instances', '2',
                   '--out', c.tmp / 'canvas.json'],
    'python tools/analysis_tools/benchmark_winwin_canvas.py --device cuda': GPU,
    'python tools/analysis_tools/benchmark_winwin_det.py --threads 2':
        _covered('tests/test_benchmark_winwin_det.py::test_smoke_run_measures_both_modes '
                 '(tiny: --smoke, 1 thread)'),
    'python tools/analysis_tools/benchmark_winwin_det.py --window-size 28 24 21':
        lambda c: command_argv(c.cmd, {'--window-size': [4, 2]}, ['--smoke']),
    'python tools/analysis_tools/benchmark_winwin_det.py --threads 1 --profile':
        _covered('tests/test_benchmark_winwin_det.py::test_smoke_profile_names_every_component'),
    'python tools/analysis_tools/benchmark_winwin_det.py --smoke':
        _covered('tests/test_benchmark_winwin_det.py::test_smoke_run_measures_both_modes'),
    'python tools/analysis_tools/fault_injection.py [--kills 20] [--seed 0] [--work-dir DIR]':
        _covered('tests/test_faults.py (fixture chain: SIGKILL inside a checkpoint write and '
                 'in the whole-image phase, SIGTERM, a failed save, each resumed with --resume)'),
    'python tools/analysis_tools/get_flops.py CONFIG [--shape H W] '
    '[--cfg-options KEY=VALUE ...]':
        lambda c: command_argv(c.cmd, {'CONFIG': SEG_CONFIG}, ['--shape', '64', '64']),
    'python tools/analysis_tools/rope_family_timm_check.py': lambda c: [],
    'python tools/analysis_tools/visualize_clusters.py IMAGE --config CONFIG [--checkpoint CKPT] '
    '--out clusters.png':
        lambda c: command_argv(c.cmd, {'IMAGE': c.image, 'CONFIG': EXPEDITE_CONFIG,
                                       'clusters.png': c.tmp / 'vc1.png'}),
    'python tools/analysis_tools/visualize_clusters.py IMAGE --config PLAIN_CFG --checkpoint CKPT '
    '--alpha 3 --grid 11 11':
        lambda c: command_argv(c.cmd, {'IMAGE': c.image, 'PLAIN_CFG': c.seg_cfg,
                                       'CKPT': c.seg_ckpt, '--grid': [4, 4]},
                               ['--out', c.tmp / 'vc2.png']),
    'python tools/analysis_tools/visualize_clusters.py IMAGE --patch 16 --grid 20 20 '
    '--out clusters.png':
        _covered('tests/test_expedite_tools.py::test_visualize_clusters_pixel_mode'),
}


def test_every_documented_command_is_in_the_table():
    found = {c for cmds in documented_commands().values() for c in cmds}
    assert found == set(COMMANDS), dict(undocumented_in_table=sorted(found - set(COMMANDS)),
                                        gone_from_docstrings=sorted(set(COMMANDS) - found))
    for cmd, how in COMMANDS.items():
        if isinstance(how, tuple):  # another test runs it: that test exists
            path, _, name = how[1].partition('::')
            path = path.split(' ')[0]
            text = open(osp.join(REPO, path)).read()
            assert cmd in text or name.split(' ')[0] in text or 'fixture' in how[1], how


class _Ctx:
    pass


@pytest.fixture(scope='module')
def ctx(tmp_path_factory, synthetic_ade20k):
    """Paths the commands take: a tiny segmentation config on generated data with a
    random-weight checkpoint, the tiny windowed detector's with one, an image."""
    import cv2
    import numpy as np
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    from mmwinwin.datasets.synthetic import generate_coco

    c = _Ctx()
    c.tmp = tmp_path_factory.mktemp('documented')
    cfg = Config.fromfile(SEG_CONFIG)
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = synthetic_ade20k
    c.seg_cfg = str(c.tmp / 'seg_cfg.py')
    cfg.dump(c.seg_cfg)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    c.seg_ckpt = str(c.tmp / 'seg.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), c.seg_ckpt)

    root = str(c.tmp / 'coco') + '/'
    generate_coco(root, num_train=1, num_val=1, img_size=(128, 128), seed=0)
    cfg = Config.fromfile(DET_CONFIG)
    cfg.test_dataloader.dataset.data_root = root
    c.det_cfg = str(c.tmp / 'det_cfg.py')
    cfg.dump(c.det_cfg)
    init_default_scope('mmdet')
    c.det_ckpt = str(c.tmp / 'det.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), c.det_ckpt)

    c.image = str(c.tmp / 'image.png')
    rng = np.random.default_rng(0)
    cv2.imwrite(c.image, rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))
    return c


def _run(ctx, cmd: str) -> str:
    how = COMMANDS[cmd]
    if cmd in HEAVY and os.environ.get('MMWINWIN_TEST_HEAVY') != '1':
        pytest.skip('a heavy benchmark (full-size models): set MMWINWIN_TEST_HEAVY=1')
    if how == GPU:
        if not torch.cuda.is_available():
            pytest.skip('a GPU command (CUDA not available)')
        return run_in_process(cmd, command_argv(cmd), cwd=str(ctx.tmp))
    ctx.cmd = cmd
    return run_in_process(cmd, how(ctx), cwd=str(ctx.tmp))


RUN_HERE = [c for c, how in COMMANDS.items() if not isinstance(how, tuple)]
ORDER = sorted(RUN_HERE, key=lambda c: ('--plot-only' in c, c))  # plots after their runs


def tokens_of_recipe(rows: list[str]) -> str:
    from mmwinwin.experiments.reproduction import RECIPE, VARIANTS
    return next(r.split(' | ')[1] for r in rows if r.split(' | ')[0][2:] == VARIANTS[RECIPE])


@pytest.mark.parametrize('cmd', ORDER, ids=lambda c: c.split(' ')[2 if ' -m ' in c else 1]
                         .split('/')[-1] + (f' [{c.split(" ", 3)[3][:40]}]'
                                            if len(c.split(' ')) > 3 else ''))
def test_documented_command_runs(ctx, cmd):
    out = _run(ctx, cmd)
    assert out.strip(), f'{cmd} printed nothing'
    if cmd == 'python -m mmwinwin.experiments.winwin_reproduction':
        # every default variant trained and tested, one table row each with its tokens per image
        from mmwinwin.experiments.reproduction import VARIANTS
        from mmwinwin.experiments.winwin_reproduction import DEFAULT_VARIANTS
        rows = [ln for ln in out.splitlines() if ln.startswith('| (')]
        assert [r.split(' | ')[0][2:] for r in rows] == [VARIANTS[v] for v in DEFAULT_VARIANTS]
        assert tokens_of_recipe(rows) == '8 then 32'
        tokens = {r.split(' | ')[0][2:]: r.split(' | ')[1] for r in rows}
        # 64x128 images, patch 16: 4x8 tokens; 2 windows of 2x2; context cells 1x2 (pool 4)
        assert tokens[VARIANTS['fullres']] == '32' and tokens[VARIANTS['winwin']] == '8'
        assert tokens[VARIANTS['winwin_ctx']] == '10'
        assert tokens[VARIANTS['winwin_ctx_ft']] == '10 then 32'
        assert tokens[VARIANTS['crop']] == '4'
    elif '--plot-only --out docs/images/winwin_curves' in cmd:
        stored = json.load(open(ctx.tmp / 'curves' / 'curves.json'))
        assert {r['task'] for r in stored} == {'long', 'local'}
        assert osp.isfile(ctx.tmp / 'curves' / 'curves_long.png')
    elif 'get_flops' in cmd:
        assert 'Input shape: (3, 64, 64)' in out and 'GFLOPs' in out
    elif 'expedite_accuracy' in cmd:
        assert out.count('| alpha=') == 3
