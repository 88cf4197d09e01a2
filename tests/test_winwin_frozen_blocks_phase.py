"""``full_image_phase.frozen_blocks``: the phase's whole-image steps leave the backbone's patch
embedding and first blocks as the windows trained them (docs/winwin.md, variant (u)).

The reference for the gradient is torch's own: the host model with those parameters set to
``requires_grad=False``, whose loss and gradients the phase step must give exactly."""
from __future__ import annotations

import functools
import os
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner
from mmseg.registry import MODELS

import mmwinwin  # noqa: F401
from mmwinwin.models.flow import WinWinFlowEstimator
from mmwinwin.models.winwin.full_image_phase import check_full_image_phase, frozen_lower_blocks
from test_reliability_training import run_ranks
from test_winwin_full_image_phase import (TINY_FLOW, _runner_cfg, _seg_batch, _seg_cfg,
                                         depth_batch, depth_models)


def _lower(name: str, frozen: int) -> bool:
    """Whether parameter ``name`` of a segmentor is below block ``frozen`` of its backbone."""
    if name.startswith('backbone.patch_embed.'):
        return True
    return name.startswith('backbone.blocks.') and int(name.split('.')[2]) < frozen


def _cfg(num_layers, **phase):
    cfg = _seg_cfg('WinWinEncoderDecoder', full_image_phase=dict(begin=2, **phase))
    cfg.backbone.arch.num_layers = num_layers
    cfg.backbone.out_indices = (num_layers - 1,)
    return cfg


@pytest.mark.parametrize('num_layers, frozen', [(2, 1), (3, 2), (2, 2)])
def test_phase_step_is_the_host_loss_with_the_lower_blocks_not_trainable(num_layers, frozen):
    """Loss and gradients of a phase step equal the host ``EncoderDecoder``'s with the patch
    embedding and blocks ``< frozen`` set to ``requires_grad=False``; those get no gradient
    (``frozen = num_layers``: only the final norm and the heads train)."""
    torch.manual_seed(0)
    model = MODELS.build(_cfg(num_layers, frozen_blocks=frozen))
    host_cfg = _cfg(num_layers)
    host_cfg.type = 'EncoderDecoder'
    host_cfg.pop('full_image_phase')
    host = MODELS.build(host_cfg)
    host.load_state_dict(model.state_dict())
    img, samples = _seg_batch()

    model.set_train_progress(2, 4)
    _assert_phase_step(model, host, frozen, img, samples, 'decode.loss_ce')


def _assert_phase_step(model, host, frozen: int, img, samples, key: str) -> None:
    """The phase step's loss and gradients equal ``host``'s, whose parameters below block
    ``frozen`` are not trainable; those get no gradient; the grad mode is back on after."""
    for name, p in host.named_parameters():
        p.requires_grad_(not _lower(name, frozen))
    loss = model.loss(img, samples)[key]
    want = host.loss(img, samples)[key]
    torch.testing.assert_close(loss, want)
    loss.backward()
    want.backward()
    assert torch.is_grad_enabled()
    ref = dict(host.named_parameters())
    for name, p in model.named_parameters():
        if _lower(name, frozen) or ref[name].grad is None:  # frozen, or unused by the loss
            assert p.grad is None, name
        else:
            assert p.grad.abs().sum() > 0, name
            torch.testing.assert_close(p.grad, ref[name].grad, msg=name)


def test_depth_phase_step_is_the_host_loss_with_the_lower_blocks_not_trainable():
    """The depth estimator (the other model that takes the option): the phase step's loss and
    gradients equal mmseg's ``DepthEstimator`` with the patch embedding and block 0 frozen."""
    host, model = depth_models(dict(begin=2, frozen_blocks=1))
    img, samples = depth_batch()
    model.set_train_progress(2, 4)
    _assert_phase_step(model, host, 1, img, samples, 'decode.loss_silog')


def test_window_steps_train_every_block():
    torch.manual_seed(0)
    model = MODELS.build(_cfg(2, frozen_blocks=2))
    img, samples = _seg_batch()
    model.set_train_progress(1, 4)  # before the phase
    model.loss(img, samples)['decode.loss_ce'].backward()
    assert model.backbone.patch_embed.proj.weight.grad.abs().sum() > 0
    assert model.backbone.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_grad_mode_is_restored_after_an_error_inside_the_backbone():
    model = MODELS.build(_cfg(2))
    with pytest.raises(ValueError, match='3-channel'):  # after the pre-hook turned grad off
        with frozen_lower_blocks(model.backbone, 2):
            model.backbone(torch.zeros(1, 5, 16, 16))
    assert torch.is_grad_enabled()
    with torch.no_grad(), frozen_lower_blocks(model.backbone, 1):
        model.backbone(torch.zeros(1, 3, 16, 16))
        assert not torch.is_grad_enabled()  # the caller's mode, not the hook's
    assert not model.backbone.patch_embed._forward_pre_hooks
    assert not model.backbone.blocks[0]._forward_hooks


@pytest.mark.parametrize('setting, match', [
    (dict(begin=2, frozen_blocks=-1), 'frozen_blocks must be an integer >= 0'),
    (dict(begin=2, frozen_blocks=1.5), 'frozen_blocks must be an integer'),
    (dict(begin=2, frozen_blocks=True), 'frozen_blocks must be an integer'),
    (dict(begin=2, frozen_blocks='2'), 'frozen_blocks must be an integer'),
])
def test_bad_values_are_named(setting, match):
    with pytest.raises(ValueError, match=match):
        check_full_image_phase(setting)


def test_more_blocks_than_the_backbone_has_and_other_models_are_refused():
    with pytest.raises(ValueError, match='frozen_blocks=3 .* backbone has 2 blocks'):
        MODELS.build(_cfg(2, frozen_blocks=3))
    assert MODELS.build(_cfg(2, frozen_blocks=0)).full_image_phase['frozen_blocks'] == 0
    with pytest.raises(ValueError, match='frozen_blocks.*whole frame pairs'):
        WinWinFlowEstimator(net=TINY_FLOW, windows=dict(margin=0),
                            full_image_phase=dict(begin=1, frozen_blocks=1))
    with pytest.raises(ValueError, match='Drop full_image_phase.frozen_blocks'):
        check_full_image_phase(dict(begin=1, frozen_blocks=2), resized_for='the training images')


def _params(path: str) -> dict:
    state = torch.load(path, map_location='cpu', weights_only=False)['state_dict']
    return {k: v for k, v in state.items() if k.startswith(('backbone.', 'decode_head.'))}


def _check_training(ckpt_dir, frozen: int) -> None:
    """Window steps (iterations 0, 1) move every parameter; phase steps (2, 3) leave the
    patch embedding and blocks ``< frozen`` bit for bit and move the rest."""
    it1, it2, it4 = (_params(f'{ckpt_dir}/iter_{i}.pth') for i in (1, 2, 4))
    for name in it2:
        if name.startswith('backbone.blocks.0.') and name.endswith('weight'):
            assert not torch.equal(it1[name], it2[name]), name  # a window step trained it
        if _lower(name, frozen):
            assert torch.equal(it2[name], it4[name]), name
    assert not torch.equal(it2['backbone.blocks.1.attn.qkv.weight'],
                           it4['backbone.blocks.1.attn.qkv.weight'])


def test_a_real_run_leaves_the_lower_blocks_as_the_windows_trained_them(tmp_path):
    """mmengine Runner, AdamW with weight decay: 2 window iterations, then 2 phase iterations
    with the first block frozen."""
    from mmwinwin.datasets.synthetic import generate_ade20k
    data = generate_ade20k(str(tmp_path / 'data'), num_train=4, num_val=2, img_size=(128, 256))
    cfg = _runner_cfg(data, tmp_path / 'run')
    cfg.model.full_image_phase.frozen_blocks = 1
    assert cfg.optim_wrapper.optimizer.get('weight_decay', 0) > 0
    Runner.from_cfg(cfg).train()
    _check_training(tmp_path / 'run', 1)


def _train_rank(data: str, work: str, rank: int):
    """On each rank: a run without find_unused_parameters (refused before it trains), then
    one with it (trained through the phase)."""
    from mmwinwin.utils.runner import setup_cpu_distributed
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2')  # as torchrun sets
    out = []
    for find_unused in (False, True):
        cfg = _runner_cfg(data, osp.join(work, str(find_unused)), launcher='pytorch')
        cfg.model.full_image_phase.frozen_blocks = 1
        if find_unused:
            cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                                         find_unused_parameters=True)
        setup_cpu_distributed(cfg)  # tools/train.py's set-up without a GPU (the group is up)
        runner = Runner.from_cfg(cfg)
        try:
            runner.train()
        except ValueError as error:
            out.append(str(error))
        else:
            out.append('trained')
    return out


def test_distributed_phase_needs_and_works_with_find_unused_parameters(tmp_path):
    """Two gloo ranks: without find_unused_parameters the hook refuses to start, naming the
    fix; with it, the run trains through the phase and the frozen block stays unchanged."""
    from mmwinwin.datasets.synthetic import generate_ade20k
    data = generate_ade20k(str(tmp_path / 'data'), num_train=4, num_val=2, img_size=(128, 256))
    ranks = run_ranks(functools.partial(_train_rank, data, str(tmp_path / 'w')),
                      tmp_path / 'ranks')
    for refused, trained in ranks:
        assert 'find_unused_parameters=True' in refused, refused
        assert trained == 'trained'
    _check_training(tmp_path / 'w' / 'True', 1)
