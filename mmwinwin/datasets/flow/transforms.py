"""Flow-aware data transforms: load a pair, crop / flip / resize both frames and the flow
consistently, pack for the model.

Keys in the results dict: ``img1``, ``img2`` (uint8 RGB ``(H, W, 3)``), ``gt_flow``
(float32 ``(H, W, 2)``, (u, v) in pixels), ``gt_valid`` (bool ``(H, W)``) and, for
Sintel-style data, ``gt_occ`` (bool, occluded in frame 2).

Geometry rules that keep ``frame1(x) = frame2(x + flow(x))`` true:
* crop: the same window in both frames; the flow values are unchanged;
* horizontal flip: mirror all maps and negate ``u``; vertical flip: mirror, negate ``v``;
* resize by ``(sy, sx)``: resize the maps and multiply ``u`` by ``sx``, ``v`` by ``sy``.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from ...layers.flow.ops import subpixel_gt
from ...registry import register
from ...fileio.flow import read_flow, read_image_rgb, read_mask_png
from ..winwin.windows import WINWIN_META_KEYS

__all__ = ['LoadFlowPair', 'FlowRandomCrop', 'FlowRandomFlip', 'FlowResize', 'PackFlowInputs']

_MAPS = ('img1', 'img2', 'gt_flow', 'gt_valid', 'gt_occ')


@register('TRANSFORMS')
class LoadFlowPair(BaseTransform):
    """Load ``img1_path``, ``img2_path`` and (when given) ``flow_path``.

    ``invalid_path`` (Sintel: non-zero = no valid flow) is removed from ``gt_valid``;
    ``occ_path`` is loaded into ``gt_occ``. A ground truth at twice the image size
    (Spring's super-resolved GT) is subsampled to the image grid (``[::2, ::2]``; Spring
    flow values are already in image pixels) for training.

    Args:
        keep_subpixel_gt: also keep the whole 2x ground truth as ``gt_flow_hr`` (Spring
            evaluation: ``FlowMetric(convention='spring')`` compares each estimated pixel
            with its four ground-truth sub-pixels). Needs a 2x ground truth.
    """

    def __init__(self, keep_subpixel_gt: bool = False) -> None:
        self.keep_subpixel_gt = bool(keep_subpixel_gt)

    def transform(self, results: dict) -> dict:
        img1 = read_image_rgb(results['img1_path'])
        img2 = read_image_rgb(results['img2_path'])
        if img1.shape != img2.shape:
            raise ValueError(f'Frames of a pair differ in size: {results["img1_path"]} '
                             f'{img1.shape} vs {results["img2_path"]} {img2.shape}.')
        H, W = img1.shape[:2]
        results.update(img1=img1, img2=img2, img_shape=(H, W), ori_shape=(H, W))
        if results.get('flow_path'):
            flow, valid = read_flow(results['flow_path'])
            if self.keep_subpixel_gt:
                if flow.shape[:2] != (2 * H, 2 * W):
                    raise ValueError(
                        f'LoadFlowPair(keep_subpixel_gt=True) needs a ground truth at twice the '
                        f'frame size (Spring), but {results["flow_path"]} is {flow.shape[:2]} '
                        f'for frames {(H, W)}; drop keep_subpixel_gt for this dataset.')
                results['gt_flow_hr'] = np.where(valid[..., None], flow,
                                                 np.float32(np.nan)).astype(np.float32)
            if flow.shape[:2] == (2 * H, 2 * W):
                flow, valid = flow[::2, ::2], valid[::2, ::2]
            if flow.shape[:2] != (H, W):
                raise ValueError(f'Flow {results["flow_path"]} is {flow.shape[:2]} but the '
                                 f'frames are {(H, W)}.')
            if results.get('invalid_path'):
                valid = valid & ~read_mask_png(results['invalid_path'])
            results['gt_flow'] = np.ascontiguousarray(flow, np.float32)
            results['gt_valid'] = np.ascontiguousarray(valid)
            if results.get('occ_path'):
                results['gt_occ'] = read_mask_png(results['occ_path'])
        return results


@register('TRANSFORMS')
class FlowRandomCrop(BaseTransform):
    """Crop the same random ``crop_size (h, w)`` window out of both frames and the flow."""

    def __init__(self, crop_size: tuple[int, int]) -> None:
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))

    def transform(self, results: dict) -> dict:
        H, W = results['img1'].shape[:2]
        ch, cw = self.crop_size
        if ch > H or cw > W:
            raise ValueError(f'FlowRandomCrop crop_size {self.crop_size} is larger than the '
                             f'image {(H, W)}; resize first (FlowResize) or crop smaller.')
        y0 = np.random.randint(0, H - ch + 1)
        x0 = np.random.randint(0, W - cw + 1)
        for k in _MAPS:
            if k in results:
                results[k] = np.ascontiguousarray(results[k][y0:y0 + ch, x0:x0 + cw])
        if 'gt_flow_hr' in results:  # the sub-pixels of the same pixels
            results['gt_flow_hr'] = np.ascontiguousarray(
                results['gt_flow_hr'][2 * y0:2 * (y0 + ch), 2 * x0:2 * (x0 + cw)])
        results['img_shape'] = (ch, cw)
        return results


@register('TRANSFORMS')
class FlowRandomFlip(BaseTransform):
    """Flip everything with probability ``prob``; negate the flow component across the axis."""

    def __init__(self, prob: float = 0.5, direction: str = 'horizontal') -> None:
        if direction not in ('horizontal', 'vertical'):
            raise ValueError(f"direction must be 'horizontal' or 'vertical', got {direction!r}.")
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}.')
        self.prob, self.direction = prob, direction

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        axis, comp = (1, 0) if self.direction == 'horizontal' else (0, 1)
        for k in _MAPS + ('gt_flow_hr',):  # mirroring the 2x grid mirrors the sub-pixels too
            if k in results:
                results[k] = np.ascontiguousarray(np.flip(results[k], axis=axis))
        for k in ('gt_flow', 'gt_flow_hr'):
            if k in results:
                results[k][..., comp] *= -1
        results.setdefault('flip_directions', []).append(self.direction)
        return results


@register('TRANSFORMS')
class FlowResize(BaseTransform):
    """Resize both frames and the flow to ``scale (h, w)`` or by ``scale_factor``.

    Flow vectors are multiplied by the per-axis scale. Dense flow is resized bilinearly;
    sparse flow (some invalid pixels, e.g. KITTI) by nearest neighbour so that no
    valid vector is mixed with an invalid one.

    ``keep_gt=True`` (test time) resizes the frames only: the model's prediction is
    resized back to ``ori_shape`` (vectors rescaled) and evaluated on the original GT.
    """

    def __init__(self, scale: tuple[int, int] | None = None,
                 scale_factor: float | tuple[float, float] | None = None,
                 keep_gt: bool = False) -> None:
        if (scale is None) == (scale_factor is None):
            raise ValueError('FlowResize needs exactly one of scale=(h, w) or scale_factor.')
        self.scale = scale
        self.scale_factor = scale_factor
        self.keep_gt = keep_gt

    def transform(self, results: dict) -> dict:
        if 'gt_flow_hr' in results and not self.keep_gt:
            raise ValueError('FlowResize cannot resize the 2x sub-pixel ground truth '
                             '(LoadFlowPair(keep_subpixel_gt=True)): use keep_gt=True to '
                             'evaluate at the original resolution, or drop keep_subpixel_gt.')
        H, W = results['img1'].shape[:2]
        if self.scale is not None:
            nh, nw = int(self.scale[0]), int(self.scale[1])
        else:
            f = self.scale_factor
            fy, fx = (f, f) if isinstance(f, (int, float)) else f
            nh, nw = int(round(H * fy)), int(round(W * fx))
        sy, sx = nh / H, nw / W
        for k in ('img1', 'img2'):
            results[k] = cv2.resize(results[k], (nw, nh), interpolation=cv2.INTER_LINEAR)
        if 'gt_flow' in results and not self.keep_gt:
            valid = results['gt_valid']
            sparse = not bool(valid.all())
            interp = cv2.INTER_NEAREST if sparse else cv2.INTER_LINEAR
            flow = cv2.resize(results['gt_flow'], (nw, nh), interpolation=interp)
            flow = flow * np.array([sx, sy], np.float32)
            results['gt_flow'] = flow.astype(np.float32)
            results['gt_valid'] = cv2.resize(valid.astype(np.uint8), (nw, nh),
                                             interpolation=cv2.INTER_NEAREST) > 0
        if 'gt_occ' in results and not self.keep_gt:
            results['gt_occ'] = cv2.resize(results['gt_occ'].astype(np.uint8), (nw, nh),
                                           interpolation=cv2.INTER_NEAREST) > 0
        results['img_shape'] = (nh, nw)
        results['scale_factor'] = (sx, sy)
        return results


@register('TRANSFORMS')
class PackFlowInputs(BaseTransform):
    """Pack to ``inputs`` (uint8 ``(2, 3, H, W)``: frame 1, frame 2) and a ``data_samples``
    :class:`BaseDataElement` with ``gt_flow (2, H, W)``, ``gt_valid (H, W)`` (and
    ``gt_occ``; ``gt_flow_subpixels (4, 2, H, W)`` from ``gt_flow_hr``) plus meta
    information, including the Win-Win windows of ``WinWinWindows``."""

    META_KEYS = ('img1_path', 'img2_path', 'flow_path', 'out_name', 'ori_shape', 'img_shape',
                 'scale_factor', 'flip_directions', 'sample_idx') + WINWIN_META_KEYS

    def transform(self, results: dict) -> dict:
        imgs = np.stack([results['img1'], results['img2']])  # (2, H, W, 3)
        inputs = torch.from_numpy(np.ascontiguousarray(imgs.transpose(0, 3, 1, 2)))
        meta = {k: results[k] for k in self.META_KEYS if k in results}
        sample = BaseDataElement(metainfo=meta)
        if 'gt_flow' in results:
            sample.gt_flow = torch.from_numpy(
                np.ascontiguousarray(results['gt_flow'].transpose(2, 0, 1)))
            sample.gt_valid = torch.from_numpy(np.ascontiguousarray(results['gt_valid']))
        if 'gt_occ' in results:
            sample.gt_occ = torch.from_numpy(np.ascontiguousarray(results['gt_occ']))
        if 'gt_flow_hr' in results:
            hr = torch.from_numpy(np.ascontiguousarray(results['gt_flow_hr'].transpose(2, 0, 1)))
            sample.gt_flow_subpixels = subpixel_gt(hr)
        return dict(inputs=inputs, data_samples=sample)
