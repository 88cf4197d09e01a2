"""Spring conventions: four ground-truth sub-pixels per estimated pixel.

The reference below is written from the benchmark's definition, pixel by pixel with
numpy, independently of ``mmwinwin.layers.flow.ops``.
"""
import cv2
import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator

import mmwinwin  # noqa: F401  (registers the transforms and the metric)
from mmwinwin.datasets.flow.datasets import SpringFlowDataset
from mmwinwin.fileio.flow import write_flo5
from mmwinwin.datasets.flow.transforms import (FlowRandomCrop, FlowRandomFlip, FlowResize,
                                               LoadFlowPair, PackFlowInputs)
from mmwinwin.evaluation.metrics.flow_metric import FlowMetric
from mmwinwin.layers.flow.ops import subpixel_gt


def _reference(preds, hrs):
    """Pooled Spring metrics: per pixel the min EPE over its 2x2 ground-truth sub-pixels."""
    errs, mag_max, mag_mean = [], [], []
    for pred, hr in zip(preds, hrs):  # pred (H, W, 2), hr (2H, 2W, 2)
        H, W = pred.shape[:2]
        for y in range(H):
            for x in range(W):
                subs = np.array([hr[2 * y + dy, 2 * x + dx] for dy in (0, 1) for dx in (0, 1)],
                                np.float64)
                if np.isnan(subs).any():
                    continue
                errs.append(min(np.hypot(*(pred[y, x] - s)) for s in subs))
                mags = [np.hypot(*s) for s in subs]
                mag_max.append(max(mags))
                mag_mean.append(np.mean(mags))
    e, mx, mm = map(np.array, (errs, mag_max, mag_mean))
    thr = np.arange(1, 101) / 20.0
    w = 1 - (np.arange(1, 101) - 1) / 100.0
    wauc = 100 * sum(wi * (e <= t).sum() for wi, t in zip(w, thr)) / (len(e) * w.sum())
    out = {'EPE': e.mean(), '1px': 100 * (e > 1).mean(),
           'Fl': 100 * ((e > 3) & (e > 0.05 * mx)).mean(), 'WAUC': wauc}
    for band, (lo, hi) in {'s0-10': (0, 10), 's10-40': (10, 40), 's40+': (40, np.inf)}.items():
        m = (mm >= lo) & (mm < hi)
        if m.any():
            out[f'EPE-{band}'] = e[m].mean()
            out[f'1px-{band}'] = 100 * (e[m] > 1).mean()
    return out


def test_subpixel_gt_layout():
    hr = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(2, 4, 6)
    sub = subpixel_gt(hr)
    assert sub.shape == (4, 2, 2, 3)
    for k, (dy, dx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        torch.testing.assert_close(sub[k], hr[:, dy::2, dx::2])
    with pytest.raises(ValueError, match='even'):
        subpixel_gt(torch.zeros(2, 5, 6))


def test_spring_metric_matches_reference():
    rng = np.random.default_rng(0)
    preds, hrs, samples = [], [], []
    for i in range(3):
        H, W = 6, 7
        hr = rng.normal(scale=25, size=(2 * H, 2 * W, 2)).astype(np.float32)
        hr[rng.random((2 * H, 2 * W)) < 0.05] = np.nan
        pred = (hr[::2, ::2] + rng.normal(scale=2, size=(H, W, 2))).astype(np.float32)
        pred = np.nan_to_num(pred)
        preds.append(pred)
        hrs.append(hr)
        samples.append(dict(pred_flow=torch.from_numpy(pred.transpose(2, 0, 1)),
                            gt_flow_subpixels=subpixel_gt(torch.from_numpy(hr.transpose(2, 0, 1)))))
    metric = FlowMetric(convention='spring')
    metric.process({}, samples)
    got = metric.compute_metrics(metric.results)
    ref = _reference(preds, hrs)
    assert set(got) == set(ref)
    for k, v in ref.items():
        assert got[k] == pytest.approx(v, abs=1e-3), k


def test_spring_min_over_subpixels_differs_from_subsampling():
    """A prediction equal to any one sub-pixel is exact under Spring's rule."""
    rng = np.random.default_rng(1)
    hr = rng.normal(scale=5, size=(2, 8, 10)).astype(np.float32)
    sub = subpixel_gt(torch.from_numpy(hr))
    pick = torch.from_numpy(rng.integers(0, 4, size=(4, 5)))
    pred = sub.gather(0, pick[None, None].expand(1, 2, 4, 5))[0]
    spring = FlowMetric(convention='spring')
    spring.process({}, [dict(pred_flow=pred, gt_flow_subpixels=sub)])
    assert spring.compute_metrics(spring.results)['EPE'] == pytest.approx(0.0, abs=1e-6)
    standard = FlowMetric()
    standard.process({}, [dict(pred_flow=pred, gt_flow=sub[0], gt_valid=torch.ones(4, 5))])
    assert standard.compute_metrics(standard.results)['EPE'] > 1.0


def test_spring_metric_errors():
    with pytest.raises(ValueError, match="average='pixel'"):
        FlowMetric(convention='spring', average='image')
    with pytest.raises(ValueError, match='convention'):
        FlowMetric(convention='kitti')
    m = FlowMetric(convention='spring')
    with pytest.raises(KeyError, match='keep_subpixel_gt=True'):
        m.process({}, [dict(pred_flow=torch.zeros(2, 3, 3), gt_flow=torch.zeros(2, 3, 3))])
    with pytest.raises(ValueError, match='grid'):
        m.process({}, [dict(pred_flow=torch.zeros(2, 3, 3),
                            gt_flow_subpixels=torch.zeros(4, 2, 4, 4))])


def _spring_root(tmp_path, H=12, W=16, seed=2):
    rng = np.random.default_rng(seed)
    s = tmp_path / 'spring' / 'train' / '0001'
    (s / 'frame_left').mkdir(parents=True)
    for i in (1, 2):
        cv2.imwrite(str(s / 'frame_left' / f'frame_left_{i:04d}.png'),
                    rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    hr = rng.normal(scale=10, size=(2 * H, 2 * W, 2)).astype(np.float32)
    hr[3, 5] = np.nan
    write_flo5(str(s / 'flow_FW_left' / 'flow_FW_left_0001.flo5'), hr)
    return str(tmp_path / 'spring'), hr


@pytest.mark.parametrize('direction', ['horizontal', 'vertical'])
def test_subpixel_gt_follows_crop_and_flip(tmp_path, direction):
    root, hr = _spring_root(tmp_path)
    base = LoadFlowPair(keep_subpixel_gt=True)(SpringFlowDataset(
        data_root=root, pipeline=[]).get_data_info(0))
    np.testing.assert_array_equal(np.isnan(base['gt_flow_hr']), np.isnan(hr))
    np.random.seed(0)
    y0, x0 = np.random.randint(0, 12 - 8 + 1), np.random.randint(0, 16 - 10 + 1)
    np.random.seed(0)  # FlowRandomCrop draws the same origin
    r = FlowRandomCrop((8, 10))(dict(base))
    r = FlowRandomFlip(prob=1.0, direction=direction)(r)
    out = PackFlowInputs()(r)['data_samples']
    sub = out.gt_flow_subpixels.numpy()
    assert sub.shape == (4, 2, 8, 10)
    # independent: pixel (y, x) of the output came from pixel (y0 + y', x0 + x') of the
    # frame; its sub-pixel (dy, dx) is the mirrored sub-pixel there, component negated
    comp = 0 if direction == 'horizontal' else 1
    for y in range(8):
        for x in range(10):
            ys, xs = (y, 9 - x) if direction == 'horizontal' else (7 - y, x)
            for k, (dy, dx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
                sy, sx = (dy, 1 - dx) if direction == 'horizontal' else (1 - dy, dx)
                want = hr[2 * (y0 + ys) + sy, 2 * (x0 + xs) + sx].copy()
                want[comp] *= -1
                np.testing.assert_array_equal(sub[k, :, y, x], want)
    # the training target (the frame's top-left sub-pixels) went through the same mirror
    k_src = 1 if direction == 'horizontal' else 2
    np.testing.assert_array_equal(out.gt_flow.numpy(), np.nan_to_num(sub[k_src]))


def test_resize_refuses_subpixel_gt_and_sintel_refuses_flag(tmp_path):
    root, _ = _spring_root(tmp_path)
    r = LoadFlowPair(keep_subpixel_gt=True)(SpringFlowDataset(
        data_root=root, pipeline=[]).get_data_info(0))
    with pytest.raises(ValueError, match='keep_gt=True'):
        FlowResize(scale=(6, 8))(r)
    assert FlowResize(scale=(6, 8), keep_gt=True)(r)['img1'].shape == (6, 8, 3)
    from mmwinwin.fileio.flow import write_flo
    write_flo(str(tmp_path / 'f.flo'), np.zeros((12, 16, 2), np.float32))
    item = dict(img1_path=r['img1_path'], img2_path=r['img2_path'],
                flow_path=str(tmp_path / 'f.flo'))
    with pytest.raises(ValueError, match='twice the frame size'):
        LoadFlowPair(keep_subpixel_gt=True)(item)


def test_spring_evaluator_on_dataset_layout(tmp_path):
    """Dataset -> pipeline -> mmengine Evaluator, with a prediction of one sub-pixel."""
    root, hr = _spring_root(tmp_path)
    ds = SpringFlowDataset(data_root=root, test_mode=True, pipeline=[
        dict(type='mmwinwin.LoadFlowPair', keep_subpixel_gt=True),
        dict(type='mmwinwin.PackFlowInputs')])
    sample = ds[0]['data_samples']
    sample.pred_flow = torch.from_numpy(np.nan_to_num(hr[1::2, 1::2]).transpose(2, 0, 1))
    ev = Evaluator(dict(type='mmwinwin.FlowMetric', convention='spring'))
    ev.process([sample], None)
    res = ev.evaluate(1)
    assert res['flow/EPE'] == pytest.approx(0.0, abs=1e-6) and res['flow/1px'] == 0.0
    assert res['flow/WAUC'] == pytest.approx(100.0)


def test_spring_cameras_directions_and_submission_files(tmp_path):
    """Both cameras and directions are listed; format_only writes the submission layout."""
    rng = np.random.default_rng(5)
    root = tmp_path / 'spring'
    for cam in ('left', 'right'):
        d = root / 'test' / '0003' / f'frame_{cam}'
        d.mkdir(parents=True)
        for i in (1, 2, 3):
            cv2.imwrite(str(d / f'frame_{cam}_{i:04d}.png'),
                        rng.integers(0, 255, (6, 8, 3), dtype=np.uint8))
    ds = SpringFlowDataset(data_root=str(root), split='test', camera=['left', 'right'],
                           direction=['FW', 'BW'], test_mode=True,
                           pipeline=[dict(type='mmwinwin.LoadFlowPair', keep_subpixel_gt=True),
                                     dict(type='mmwinwin.PackFlowInputs')])
    assert len(ds) == 8  # 2 cameras x 2 directions x 2 pairs
    names = sorted(ds.get_data_info(i)['out_name'] for i in range(len(ds)))
    assert names[0] == '0003/flow_BW_left/flow_BW_left_0002.flo5'
    assert names[-1] == '0003/flow_FW_right/flow_FW_right_0002.flo5'
    samples = []
    for i in range(len(ds)):
        s = ds[i]['data_samples']
        s.pred_flow = torch.full((2, 6, 8), float(i))
        samples.append(s)
    ev = Evaluator(dict(type='mmwinwin.FlowMetric', convention='spring',
                        output_dir=str(tmp_path / 'sub'), format_only=True))
    ev.process(samples, None)
    assert ev.evaluate(len(ds)) == {}
    from mmwinwin.fileio.flow import read_flo5
    for i, s in enumerate(samples):
        got = read_flo5(str(tmp_path / 'sub' / s.out_name))
        assert got.shape == (6, 8, 2) and (got == i).all()
    with pytest.raises(ValueError, match='output_dir'):
        FlowMetric(format_only=True)
    with pytest.raises(ValueError, match="'left'/'right'"):
        SpringFlowDataset(data_root=str(root), camera=['centre'], lazy_init=True)
