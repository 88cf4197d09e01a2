"""Optical-flow datasets in their official on-disk layouts (mmengine ``BaseDataset``).

Each data item names ``img1_path``, ``img2_path``, ``out_name`` (where the benchmark's
submission format wants the estimated flow, relative to the submission folder:
``FlowMetric(output_dir=...)`` writes it there) and, where ground truth exists,
``flow_path`` (+ ``invalid_path`` / ``occ_path`` for Sintel); :class:`LoadFlowPair`
reads them.
"""
from __future__ import annotations

import glob
import os
import os.path as osp

from mmengine.dataset import BaseDataset

from ...registry import register
from ..data_root import check_data_dir, require_data_root

__all__ = ['SintelFlowDataset', 'FlyingChairsDataset', 'SpringFlowDataset', 'KittiFlowDataset']


def _need_dir(dataset, path: str, setting: str) -> None:
    check_data_dir(dataset, path, setting, dataset.LAYOUT)


@register('DATASETS')
class SintelFlowDataset(BaseDataset):
    """MPI-Sintel: ``{split}/{pass}/SCENE/frame_XXXX.png``, flow of frame i -> i+1 in
    ``{split}/flow/SCENE/frame_XXXX.flo``, masks in ``{split}/invalid`` and
    ``{split}/occlusions`` (same names, .png, non-zero = set).

    Args:
        passes: ``'clean'``, ``'final'`` or both (a list).
        split: ``'training'`` (with GT) or ``'test'`` (frames only).
        scenes: restrict to these scene names.
    """

    METAINFO = dict(dataset='MPI-Sintel')
    LAYOUT = 'MPI-Sintel: {split}/{clean,final}/SCENE/frame_XXXX.png, {split}/flow/...'

    def __init__(self, *args, passes: str | list[str] = 'clean', split: str = 'training',
                 scenes: list[str] | None = None, **kwargs) -> None:
        self.passes = [passes] if isinstance(passes, str) else list(passes)
        bad = [p for p in self.passes if p not in ('clean', 'final')]
        if bad:
            raise ValueError(f"Sintel passes are 'clean' and 'final', got {bad}.")
        self.split, self.scenes = split, scenes
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> list[dict]:
        root = osp.join(require_data_root(self, self.LAYOUT), self.split)
        items = []
        for p in self.passes:
            _need_dir(self, osp.join(root, p), f'split={self.split!r} and passes={p!r}')
            for scene in sorted(os.listdir(osp.join(root, p))):
                if self.scenes is not None and scene not in self.scenes:
                    continue
                frames = sorted(glob.glob(osp.join(root, p, scene, 'frame_*.png')))
                for f1, f2 in zip(frames[:-1], frames[1:]):
                    name = osp.splitext(osp.basename(f1))[0]
                    item = dict(img1_path=f1, img2_path=f2, scene=scene, pass_name=p,
                                out_name=f'{p}/{scene}/{name}.flo')
                    flo = osp.join(root, 'flow', scene, name + '.flo')
                    if osp.isfile(flo):
                        item['flow_path'] = flo
                        for key, sub in (('invalid_path', 'invalid'), ('occ_path', 'occlusions')):
                            m = osp.join(root, sub, scene, name + '.png')
                            if osp.isfile(m):
                                item[key] = m
                    elif self.split == 'training':
                        raise FileNotFoundError(f'Sintel training pair {f1} has no flow {flo}.')
                    items.append(item)
        if not items:
            raise FileNotFoundError(f'No Sintel frame pairs under {root!r} for passes '
                                    f'{self.passes}.')
        return items


@register('DATASETS')
class FlyingChairsDataset(BaseDataset):
    """FlyingChairs: ``data/XXXXX_img1.ppm``, ``XXXXX_img2.ppm``, ``XXXXX_flow.flo``.

    ``split_file`` (``FlyingChairs_train_val.txt``, one line per pair: 1 = train,
    2 = validation) selects ``split`` ('training' or 'validation'); without it all pairs.
    """

    METAINFO = dict(dataset='FlyingChairs')
    LAYOUT = 'FlyingChairs: data/XXXXX_img1.ppm, XXXXX_img2.ppm, XXXXX_flow.flo'

    def __init__(self, *args, split: str = 'training', split_file: str | None = None,
                 image_dir: str = 'data', **kwargs) -> None:
        if split not in ('training', 'validation'):
            raise ValueError(f"FlyingChairs split is 'training' or 'validation', got {split!r}.")
        self.split, self.split_file, self.image_dir = split, split_file, image_dir
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> list[dict]:
        d = osp.join(require_data_root(self, self.LAYOUT), self.image_dir)
        _need_dir(self, d, f'image_dir={self.image_dir!r}')
        firsts = sorted(glob.glob(osp.join(d, '*_img1.ppm')))
        if self.split_file:
            sf = self.split_file if osp.isabs(self.split_file) else osp.join(self.data_root,
                                                                             self.split_file)
            with open(sf) as f:
                codes = [int(t) for t in f.read().split()]
            if len(codes) != len(firsts):
                raise ValueError(f'{sf} lists {len(codes)} pairs but {d} holds {len(firsts)}.')
            want = 1 if self.split == 'training' else 2
            firsts = [p for p, c in zip(firsts, codes) if c == want]
        items = []
        for f1 in firsts:
            stem = f1[:-len('_img1.ppm')]
            items.append(dict(img1_path=f1, img2_path=stem + '_img2.ppm',
                              flow_path=stem + '_flow.flo',
                              out_name=osp.basename(stem) + '_flow.flo'))
        if not items:
            raise FileNotFoundError(f'No FlyingChairs pairs (*_img1.ppm) in {d!r}.')
        return items


@register('DATASETS')
class SpringFlowDataset(BaseDataset):
    """Spring (full HD): ``{split}/SCENE/frame_{cam}/frame_{cam}_XXXX.png`` and forward
    flow ``{split}/SCENE/flow_FW_{cam}/flow_FW_{cam}_XXXX.flo5`` (frame i -> i+1) or
    backward ``flow_BW_{cam}`` (frame i -> i-1). The GT is super-resolved (2x in each
    axis, NaN = no GT); :class:`LoadFlowPair` subsamples it to the 1920x1080 grid, or keeps
    all four sub-pixels for Spring's evaluation (``keep_subpixel_gt=True``).

    ``camera`` and ``direction`` take one value or a list: the benchmark's test submission
    covers both cameras and both directions (``camera=['left', 'right'],
    direction=['FW', 'BW']``); ``out_name`` is then the submission layout
    ``SCENE/flow_{dir}_{cam}/flow_{dir}_{cam}_XXXX.flo5``.
    """

    METAINFO = dict(dataset='Spring')
    LAYOUT = 'Spring: {split}/SCENE/frame_{left,right}/..., {split}/SCENE/flow_FW_left/...'

    def __init__(self, *args, split: str = 'train', camera: str | list[str] = 'left',
                 direction: str | list[str] = 'FW', **kwargs) -> None:
        self.cameras = [camera] if isinstance(camera, str) else list(camera)
        self.directions = [direction] if isinstance(direction, str) else list(direction)
        if (not self.cameras or not self.directions
                or set(self.cameras) - {'left', 'right'} or set(self.directions) - {'FW', 'BW'}):
            raise ValueError(f"Spring camera is 'left'/'right' and direction 'FW'/'BW' (one or "
                             f'a list), got {camera!r}, {direction!r}.')
        self.split = split
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> list[dict]:
        root = osp.join(require_data_root(self, self.LAYOUT), self.split)
        _need_dir(self, root, f'split={self.split!r}')
        items = []
        for scene in sorted(os.listdir(root)):
            for cam in self.cameras:
                fdir = osp.join(root, scene, f'frame_{cam}')
                if not osp.isdir(fdir):
                    continue
                frames = {int(osp.splitext(f)[0].rsplit('_', 1)[1]): osp.join(fdir, f)
                          for f in os.listdir(fdir) if f.endswith('.png')}
                for d in self.directions:
                    items += self._pairs(root, scene, cam, d, frames)
        if not items:
            raise FileNotFoundError(f'No Spring frame pairs under {root!r} (cameras '
                                    f'{self.cameras}).')
        return items

    def _pairs(self, root: str, scene: str, cam: str, d: str, frames: dict) -> list[dict]:
        step = 1 if d == 'FW' else -1
        items = []
        for i in sorted(frames):
            if i + step not in frames:
                continue
            name = f'flow_{d}_{cam}/flow_{d}_{cam}_{i:04d}.flo5'
            item = dict(img1_path=frames[i], img2_path=frames[i + step], scene=scene,
                        out_name=f'{scene}/{name}')
            flo = osp.join(root, scene, name)
            if osp.isfile(flo):
                item['flow_path'] = flo
            elif self.split == 'train':
                raise FileNotFoundError(f'Spring train frame {frames[i]} has no flow {flo}.')
            items.append(item)
        return items


@register('DATASETS')
class KittiFlowDataset(BaseDataset):
    """KITTI 2015: ``{split}/image_2/XXXXXX_10.png`` + ``XXXXXX_11.png`` and sparse GT
    ``{split}/{gt_dir}/XXXXXX_10.png`` (``flow_occ`` = all pixels, ``flow_noc`` = non-occluded).
    """

    METAINFO = dict(dataset='KITTI-2015')
    LAYOUT = 'KITTI 2015: {split}/image_2/XXXXXX_10.png, {split}/flow_occ/XXXXXX_10.png'

    def __init__(self, *args, split: str = 'training', gt_dir: str = 'flow_occ',
                 **kwargs) -> None:
        self.split, self.gt_dir = split, gt_dir
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> list[dict]:
        d = osp.join(require_data_root(self, self.LAYOUT), self.split, 'image_2')
        _need_dir(self, d, f'split={self.split!r}')
        items = []
        for f1 in sorted(glob.glob(osp.join(d, '*_10.png'))):
            name = osp.basename(f1)
            item = dict(img1_path=f1, img2_path=f1[:-len('_10.png')] + '_11.png',
                        out_name=f'flow/{name}')
            flo = osp.join(self.data_root, self.split, self.gt_dir, name)
            if osp.isfile(flo):
                item['flow_path'] = flo
            items.append(item)
        if not items:
            raise FileNotFoundError(f'No KITTI pairs (*_10.png) in {d!r}.')
        return items
