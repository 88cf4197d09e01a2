"""Issue 22 item 6: bad inputs a new user meets get an error that names the problem and
the fix (each test feeds the bad input, then checks the good one still works)."""
import collections
import os
import pickle
import re

import pytest
import torch


class _Payload:
    """Unpickling this calls os.system (writes a marker file if it ever runs)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


class _GetattrOnOther:
    """Pickles as ``getattr(OrderedDict(), 'keys')``: builtins.getattr on something other
    than mmengine's HistoryBuffer statistics."""

    def __reduce__(self):
        return (getattr, (collections.OrderedDict(), 'keys'))


def test_refused_checkpoint_names_the_globals(tmp_path):
    import mmwinwin  # noqa: F401  (allows mmengine's checkpoint types process-wide)
    from mmengine.logging import HistoryBuffer

    from mmwinwin.layers import CorruptCheckpointError, UnsafeCheckpointError
    from mmwinwin.utils import load_checkpoint
    marker = tmp_path / 'payload_ran'
    raw = tmp_path / 'raw.pkl'  # a raw pickle (protocol 5, not torch.save) of an object
    raw.write_bytes(pickle.dumps(_Payload(str(marker))))
    ckpt = tmp_path / 'getattr.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': _GetattrOnOther()}, ckpt)
    for path, names in ((raw, ('posix.system',)),
                        (ckpt, ('builtins.getattr', "getattr(OrderedDict(), 'keys')"))):
        with pytest.raises(UnsafeCheckpointError) as err:
            load_checkpoint(str(path))
        msg = str(err.value)
        assert str(path) in msg and 'outside the allow-list' in msg, msg
        assert all(n in msg for n in names), msg
        assert 'state_dict()' in msg  # the fix: a weights-only file
        # never torch's advice to switch the check off, not even in the chain shown
        assert 'weights_only' not in msg and 'corrupt' not in msg
        assert err.value.__cause__ is None and err.value.__suppress_context__
    assert not marker.exists()
    # a raw pickle of plain data is no torch checkpoint: said so, without torch's advice
    plain = tmp_path / 'plain.pkl'
    plain.write_bytes(pickle.dumps({'w': 1}, protocol=4))
    with pytest.raises(CorruptCheckpointError, match='not a torch checkpoint') as err:
        load_checkpoint(str(plain))
    assert 'weights_only' not in str(err.value) and str(plain) in str(err.value)
    # the good input: a Runner-like checkpoint with HistoryBuffer statistics still loads
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.ones(1)},
                'message_hub': {'loss': HistoryBuffer([1.0, 2.0], [1, 1])}}, good)
    loaded = load_checkpoint(str(good))
    assert loaded['message_hub']['loss'].mean() == 1.5 and loaded['state_dict']['w'] == 1


def test_flow_window_error_names_frame_one():
    import numpy as np

    from mmwinwin.datasets.winwin.windows import WinWinWindows
    pair = dict(img1=np.zeros((128, 192, 3), np.uint8), img2=np.zeros((128, 192, 3), np.uint8),
                img1_path='scene/frame_0001.png', img2_path='scene/frame_0002.png')
    too_big = WinWinWindows(num_windows=2, window_size=20, patch_size=16, seed=0)
    with pytest.raises(ValueError, match=r'WinWinWindows on image scene/frame_0001\.png of '
                                         r'128x192 px \(patch 16\).*Use a smaller window_size'):
        too_big(dict(pair))
    # an image sample still names img_path; the good input samples its windows
    with pytest.raises(ValueError, match=r'on image a\.jpg of 128x192'):
        too_big(dict(img=pair['img1'], img_path='a.jpg'))
    out = WinWinWindows(num_windows=2, window_size=4, patch_size=16, seed=0)(dict(pair))
    assert out['winwin_grid'] == (8, 12) and len(out['winwin_windows']) == 2


SEG_CONFIG = 'configs/rope_vit/upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x128.py'


@pytest.fixture(scope='module')
def seg_cfg():
    import os.path as osp

    from mmengine.config import Config

    import mmwinwin  # noqa: F401
    from conftest import REPO
    return Config.fromfile(osp.join(REPO, SEG_CONFIG))


def test_startup_check_loops_randomness_backbone(seg_cfg):
    from mmwinwin.layers import ConfigSettingError, UnknownSettingError
    from mmwinwin.utils import check_config_settings
    check_config_settings(seg_cfg)  # the good config passes
    for key, value, expected in (
            ('train_cfg.max_iter', 3, r"train_cfg \(IterBasedTrainLoop\): unknown key "
                                      r"'max_iter'.*Did you mean 'max_iters'\?"),
            ('model.backbone.drop_path_rat', 0.1,
             r"model.backbone \(RoPEViT\): unknown key 'drop_path_rat'.*Did you mean "
             r"'drop_path_rate'"),
            ('randomness.sed', 1, r"randomness: unknown key 'sed'.*Did you mean 'seed'\?"),
            ('val_cfg.fp61', True, r"val_cfg \(ValLoop\): unknown key 'fp61'.*'fp16'"),
            ('test_cfg.fp61', True, r"test_cfg \(TestLoop\): unknown key 'fp61'.*'fp16'")):
        cfg = seg_cfg.copy()
        cfg.merge_from_dict({key: value})
        with pytest.raises(UnknownSettingError, match=expected):
            check_config_settings(cfg)
    # mmengine's shorthand train_cfg=dict(by_epoch=..., ...) and a train_cfg of no kind
    cfg = seg_cfg.copy()
    cfg.train_cfg = dict(by_epoch=True, max_epoch=2)
    with pytest.raises(UnknownSettingError, match=r"train_cfg \(by_epoch=True: EpochBasedTrain"
                                                  r"Loop\): unknown key 'max_epoch'.*'max_epochs'"):
        check_config_settings(cfg)
    cfg.train_cfg = dict(by_epoch=False, max_iters=2, val_interval=2)
    check_config_settings(cfg)
    cfg.train_cfg = dict(max_iters=2)
    with pytest.raises(ConfigSettingError, match=r"neither which loop nor by_epoch.*"
                                                 r"type='IterBasedTrainLoop'"):
        check_config_settings(cfg)


def test_backbones_refuse_unknown_kwargs_when_built():
    """Under mmseg's / mmdet's own tools/train.py (no start-up check) too."""
    from mmwinwin.layers import UnknownSettingError
    from mmwinwin.registry import MODELS
    arch = dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=2.0)
    for cfg, expected in (
            (dict(type='RoPEViT', drop_path_rat=0.1),
             r"RoPEViT: unknown key 'drop_path_rat'.*Did you mean 'drop_path_rate'\?"),
            (dict(type='RoPEViTDet', partition_siz=4),
             r"RoPEViTDet: unknown key 'partition_siz'.*Did you mean 'partition_size'\?"),
            (dict(type='ExpeditedRoPEViT', expedit=None),
             r"ExpeditedRoPEViT: unknown key 'expedit'.*Did you mean 'expedite'\?")):
        with pytest.raises(UnknownSettingError, match=expected):
            MODELS.build(dict(cfg, arch=arch, img_size=32, patch_size=16))
    # the good kwargs build
    model = MODELS.build(dict(type='RoPEViTDet', arch=arch, img_size=32, patch_size=16,
                              partition_size=2, drop_path_rate=0.1))
    assert model.partition_size == 2


def test_data_root_not_set_or_missing(tmp_path, synthetic_ade20k, seg_cfg):
    from mmwinwin.datasets import SyntheticADE20KDataset
    from mmwinwin.datasets.flow import KittiFlowDataset, SintelFlowDataset
    from mmwinwin.layers import ConfigSettingError
    from mmwinwin.utils import check_config_settings
    prefix = dict(img_path='images/training', seg_map_path='annotations/training')
    # mmwinwin's datasets: data_root None, a data_root that is not there, a missing subfolder
    for cls, kwargs in ((SyntheticADE20KDataset, dict(data_prefix=prefix)),
                        (SintelFlowDataset, {}), (KittiFlowDataset, {})):
        with pytest.raises(FileNotFoundError, match=rf'{cls.__name__}: data_root is not set '
                                                    r'\(None\).*Set data_root to the folder'):
            cls(data_root=None, pipeline=[], **kwargs)
    nowhere = str(tmp_path / 'nowhere')
    where = re.escape(nowhere)
    with pytest.raises(FileNotFoundError, match=rf"data_root '{where}' does not exist \(looked "
                                                rf"for '{where}/images/training'\).*Point "
                                                r'data_root'):
        SyntheticADE20KDataset(data_root=nowhere, data_prefix=prefix, pipeline=[])
    with pytest.raises(FileNotFoundError, match=r"folder '.*/images/train' does not exist "
                                                r"\(data_root .* has no such folder; the folder "
                                                r"comes from data_prefix\['img_path'\]\). Check "
                                                r'data_root and'):
        SyntheticADE20KDataset(data_root=synthetic_ade20k, pipeline=[],
                               data_prefix=dict(prefix, img_path='images/train'))
    with pytest.raises(FileNotFoundError, match=rf"SintelFlowDataset: data_root '{where}' does "
                                                rf"not exist \(looked for '{where}/training/"
                                                r"clean'"):
        SintelFlowDataset(data_root=nowhere, pipeline=[])
    assert len(SyntheticADE20KDataset(data_root=synthetic_ade20k, data_prefix=prefix,
                                      pipeline=[])) == 6  # the good input
    # the start-up check, for a host dataset (mmseg's ADE20KDataset) and inside a wrapper
    cfg = seg_cfg.copy()
    cfg.merge_from_dict({'train_dataloader.dataset.type': 'ADE20KDataset',
                         'train_dataloader.dataset.data_root': None})
    with pytest.raises(ConfigSettingError, match=r"train_dataloader\.dataset\.data_root is not "
                                                 r"set \(None\): ADE20KDataset would read data_"
                                                 r"prefix\['img_path'\]='images/training'.*"
                                                 r"--cfg-options train_dataloader\.dataset\."
                                                 r"data_root=PATH"):
        check_config_settings(cfg)
    from mmwinwin.utils.settings import exit_on_unknown_settings
    with pytest.raises(SystemExit, match=r'train_dataloader\.dataset\.data_root is not set'):
        exit_on_unknown_settings(cfg)  # the tools end with the message, no traceback
    cfg = seg_cfg.copy()
    cfg.val_dataloader.dataset = dict(type='RepeatDataset', times=2,
                                      dataset=dict(cfg.val_dataloader.dataset, data_root=''))
    with pytest.raises(ConfigSettingError, match=r"val_dataloader\.dataset\.dataset\.data_root "
                                                 r"is not set \(''\)"):
        check_config_settings(cfg)
    cfg.val_dataloader.dataset.dataset.data_root = synthetic_ade20k
    check_config_settings(cfg)
