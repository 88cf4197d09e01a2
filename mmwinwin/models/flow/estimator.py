"""Registered optical-flow model: :class:`CroCoFlowNet` + Win-Win training, on mmengine.

Training (``mode='loss'``) with ``windows`` set: the windows come as for every Win-Win task,
from the ``WinWinWindows`` transform in the training pipeline (after the crop / flip; it reads
frame 1's size), carried in each sample's metainfo by ``PackFlowInputs``. Both frames keep
the tokens of those windows (frame 2 optionally with a ``margin``, see
``layers/winwin/pair_windows.py``), the flow target and its valid mask are cropped to the
windows (the shared ``crop_windows``) and the EPE loss is computed there only. With
``windows=None`` it trains on whole crops (the full-resolution baseline).
``full_image_phase=dict(begin=N)`` (or ``begin_fraction``) trains Win-Win on windows before
iteration N and on the whole frame pairs from N on (``models/winwin/full_image_phase.py``;
``FullImagePhaseHook`` tells the model the iteration).
Prediction is one full-resolution pass on the whole frames (``test_cfg=dict(mode='whole')``,
the default and Win-Win's point); ``mode='tiled'`` runs CroCo-Flow's tiled inference
instead (``layers/flow/tiling.py``), the baseline the paper compares with.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from ...layers.flow.croco_checkpoint import load_croco_state_dict
from ...layers.settings import check_settings_keys
from ...layers.flow.croco import CroCoFlowNet
from ...layers.flow.ops import endpoint_error, masked_epe_loss
from ...layers.flow.tiling import tiled_flow
from ...layers.winwin.pair_windows import crop_pair_windows
from ...layers.vit.checkpoint import load_vit_state_dict
from ...layers.winwin.windows import check_patch_size
from ...registry import MODELS, register
from ..winwin.full_image_phase import FullImagePhaseMixin
from ..winwin.window_stages import refuse_window_stages

__all__ = ['WinWinFlowEstimator']

_WINDOW_KEYS = ('margin',)
_MOVED_KEYS = ('num_windows', 'window_size', 'token_budget', 'shrink_to_fit')
_MISSING = ("Win-Win flow training needs windows in each sample's metainfo: add "
            "dict(type='WinWinWindows', num_windows=2, window_size=10, patch_size=16) to the "
            "training "
            'pipeline after the crop / flip, before PackFlowInputs (it carries them).')
_TEST_KEYS = ('mode', 'tile_size', 'overlap', 'weight')


@register('MODELS')
class WinWinFlowEstimator(FullImagePhaseMixin, BaseModel):
    """Args:
        net: keyword arguments of :class:`CroCoFlowNet` (encoder, decoder, head).
        windows: ``dict(margin=0)`` for Win-Win training on the windows the pipeline's
            ``WinWinWindows`` transform sampled (``margin``: frame 2 keeps each window
            enlarged by that many tokens); ``None`` trains on whole crops. The window count
            and size are the transform's (one size per batch: a fixed ``window_size``).
        full_image_phase: with ``windows``, ``dict(begin=N)`` or ``dict(begin_fraction=f)``
            to train on the whole frame pairs from iteration N (or ``f * max_iters``) on, with
            ``FullImagePhaseHook``; ``None`` (default): windows throughout.
        pretrained: optional CroCo / CroCo-v2 pre-training checkpoint (e.g.
            ``CroCo_V2_ViTBase_BaseDecoder.pth``): encoder *and* decoder are loaded, the
            DPT head keeps its init (see ``croco_checkpoint.py``). The paper's starting point.
        pretrained_encoder: optional checkpoint path for the ViT encoder only
            (timm / DeiT / MAE / CroCo keys, see ``layers/vit/checkpoint.py``). Not with ``pretrained``.
        test_cfg: ``dict(mode='whole')`` (default: one pass on whole frames) or
            ``dict(mode='tiled', tile_size=(h, w), overlap=0.5, weight='uniform')``
            (CroCo-Flow-style tiles of the training-crop size, blended; ``weight='tent'``
            trusts tile centres more).
        data_preprocessor: defaults to :class:`FlowDataPreprocessor`.
    """

    def __init__(self, net: dict, windows: dict | None = None, pretrained: str | None = None,
                 pretrained_encoder: str | None = None, test_cfg: dict | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None,
                 full_image_phase: dict | None = None) -> None:
        if pretrained and pretrained_encoder:
            raise ValueError(
                f'Set either pretrained (a CroCo checkpoint: encoder + decoder, here '
                f'{pretrained!r}) or pretrained_encoder (encoder only, here '
                f'{pretrained_encoder!r}), not both.')
        if data_preprocessor is None:
            data_preprocessor = dict(type='FlowDataPreprocessor')
        if isinstance(data_preprocessor, dict):  # resolve in mmwinwin's registry, any scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.net = CroCoFlowNet(**net)
        if windows is not None:
            moved = sorted(set(windows) & set(_MOVED_KEYS))
            if moved:
                given = ', '.join(f'{k}={windows[k]!r}' for k in moved)
                raise ValueError(
                    f'windows.{moved[0]}: the window count and size moved to the pipeline, as '
                    f"for every Win-Win task. Put dict(type='WinWinWindows', {given}, "
                    "patch_size=16) in the "
                    'training pipeline before PackFlowInputs and keep only '
                    f"model.windows=dict(margin={windows.get('margin', 0)}).")
            check_settings_keys(windows, _WINDOW_KEYS, 'windows')
            windows = {**dict(margin=0), **windows}
            if isinstance(windows['margin'], bool) or not isinstance(windows['margin'], int) \
                    or windows['margin'] < 0:
                raise ValueError(f'windows.margin must be an int >= 0 tokens, got '
                                 f'{windows["margin"]!r}.')
        self.windows = windows
        if full_image_phase is not None and windows is None:
            raise ValueError('full_image_phase ends Win-Win training on whole frames; with '
                             'windows=None every step is already whole-frame. Set windows, '
                             'or drop full_image_phase.')
        self._init_full_image_phase(full_image_phase, resized_for='whole frame pairs')
        self.test_cfg = self._check_test_cfg(test_cfg)
        self.pretrained = pretrained
        self.pretrained_encoder = pretrained_encoder

    def init_weights(self) -> None:
        super().init_weights()
        path = self.pretrained or self.pretrained_encoder
        if not path:
            return
        from mmengine.logging import print_log
        from ...utils.checkpoint import load_checkpoint

        # weights_only=True; the allow-list holds CroCo's argparse args
        ckpt = load_checkpoint(path, map_location='cpu')
        if self.pretrained:
            report = load_croco_state_dict(self.net, ckpt)
            print_log(f'Loaded CroCo encoder + decoder from {path}: {len(report["loaded"])} '
                      f'tensors; dropped {report["dropped"]}; {len(report["kept_init"])} '
                      'tensors (DPT head, offset_proj) keep their init.',
                      logger='current')
        else:
            load_vit_state_dict(self.net.encoder, ckpt)

    # ----------------------------------------------------------------- helpers
    def _check_test_cfg(self, test_cfg: dict | None) -> dict:
        check_settings_keys(test_cfg, _TEST_KEYS, 'test_cfg')
        cfg = {**dict(mode='whole', overlap=0.5, weight='uniform'), **(test_cfg or {})}
        if cfg['mode'] not in ('whole', 'tiled'):
            raise ValueError(f"test_cfg.mode must be 'whole' or 'tiled', got {cfg['mode']!r}.")
        if cfg['mode'] == 'tiled':
            p = self.net.patch_size
            ts = cfg.get('tile_size')
            if ts is None or len(ts) != 2 or any(int(t) <= 0 or int(t) % p for t in ts):
                raise ValueError(f"test_cfg mode='tiled' needs tile_size=(h, w) in pixels, "
                                 f'positive multiples of the patch size {p} (e.g. the training '
                                 f'crop), got {ts!r}.')
            if not 0 <= cfg['overlap'] < 1:
                raise ValueError(f'test_cfg.overlap must be in [0, 1), got {cfg["overlap"]}.')
            if cfg['weight'] not in ('uniform', 'tent'):
                raise ValueError(f"test_cfg.weight must be 'uniform' or 'tent', got "
                                 f"{cfg['weight']!r}.")
        return cfg

    def _infer(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        cfg = self.test_cfg
        if cfg['mode'] == 'whole':
            return self.net(img1, img2)
        return tiled_flow(self.net, img1, img2, cfg['tile_size'], cfg['overlap'], cfg['weight'])

    @staticmethod
    def _targets(data_samples: list[BaseDataElement], shape: tuple[int, int],
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        H, W = shape
        flows, valids = [], []
        for s in data_samples:
            if 'gt_flow' not in s:
                raise KeyError('Training needs gt_flow in every data sample (LoadFlowPair with '
                               'a flow_path, then PackFlowInputs).')
            f, v = s.gt_flow.float(), s.gt_valid.bool()
            v = v & torch.isfinite(f).all(0)
            f = torch.nan_to_num(f)
            flows.append(F.pad(f, (0, W - f.shape[-1], 0, H - f.shape[-2])))
            valids.append(F.pad(v, (0, W - v.shape[-1], 0, H - v.shape[-2])))
        return torch.stack(flows).to(device), torch.stack(valids).to(device)

    @staticmethod
    def batch_windows(data_samples: list[BaseDataElement]) -> list[list[tuple]]:
        """The windows ``WinWinWindows`` recorded for each sample of a training batch."""
        metas = [s.metainfo for s in data_samples]
        refuse_window_stages(metas, 'WinWinFlowEstimator')
        if not all('winwin_windows' in m for m in metas):
            if any('winwin_token_index' in m for m in metas):
                raise ValueError("WinWinWindows mode='random_tokens' is not supported for flow "
                                 "(pairs need window grids); use mode='windows'.")
            raise KeyError(_MISSING)
        out = [[tuple(int(v) for v in w) for w in m['winwin_windows']] for m in metas]
        sizes = {tuple((w[2], w[3]) for w in wins) for wins in out}
        if len(sizes) > 1:
            raise ValueError(f'Flow pairs of one batch need the same window sizes, got '
                             f'{sorted(sizes)}: give WinWinWindows a fixed window_size '
                             '(no (min, max) range, no shrink_to_fit) or use batch_size=1.')
        return out

    # ----------------------------------------------------------------- modes
    def forward(self, inputs: torch.Tensor, data_samples: list | None = None,
                mode: str = 'tensor'):
        if inputs.dim() != 5 or inputs.shape[1] != 2:
            raise ValueError(f'inputs must be (B, 2, 3, H, W) image pairs, got '
                             f'{tuple(inputs.shape)}.')
        img1, img2 = inputs[:, 0], inputs[:, 1]
        if mode == 'loss':
            return self.loss(img1, img2, data_samples)
        if mode == 'predict':
            return self.predict(img1, img2, data_samples)
        if mode == 'tensor':
            return self._infer(img1, img2)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}.")

    def loss(self, img1: torch.Tensor, img2: torch.Tensor,
             data_samples: list[BaseDataElement]) -> dict[str, torch.Tensor]:
        for s in data_samples:  # a pipeline that recorded a patch size must agree with the net
            check_patch_size(s.metainfo.get('winwin_patch_size'), self.net.patch_size,
                             s.metainfo.get('img1_path', ''))
        gt, valid = self._targets(data_samples, img1.shape[-2:], img1.device)
        if self.windows is None or self.in_full_image_phase():
            pred = self.net(img1, img2)
        else:
            bw = self.batch_windows(data_samples)
            pred = self.net.forward_windows(img1, img2, bw, self.windows['margin'])
            p = self.net.patch_size
            gt = crop_pair_windows(gt, bw, p)
            valid = crop_pair_windows(valid[:, None].float(), bw, p)[:, 0] > 0.5
        loss = masked_epe_loss(pred, gt, valid)
        with torch.no_grad():
            epe = endpoint_error(pred, gt)[valid]
            train_epe = epe.mean() if epe.numel() else pred.new_zeros(())
        return dict(loss_flow=loss, train_epe=train_epe.detach())

    def predict(self, img1: torch.Tensor, img2: torch.Tensor,
                data_samples: list[BaseDataElement] | None) -> list[BaseDataElement]:
        flow = self._infer(img1, img2)
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(flow.shape[0])]
        for f, s in zip(flow, data_samples):
            h, w = s.metainfo.get('img_shape', f.shape[-2:])
            f = f[:, :h, :w]
            ori = tuple(s.metainfo.get('ori_shape', (h, w)))
            if 'scale_factor' in s.metainfo and ori != (h, w):  # undo FlowResize
                f = F.interpolate(f[None], size=ori, mode='bilinear',
                                  align_corners=False)[0]
                f = f * f.new_tensor([ori[1] / w, ori[0] / h]).view(2, 1, 1)
            s.pred_flow = f.detach()
        return data_samples
