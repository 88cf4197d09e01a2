"""Optical-flow arithmetic in pure PyTorch: warping, error statistics, the training loss.

Convention everywhere in mmwinwin: ``flow`` is ``(B, 2, H, W)`` (or ``(H, W, 2)`` on the
numpy side) holding ``(u, v)`` = (right, down) displacement in pixels of each pixel of
frame 1, so that ``frame1(x, y) ~ frame2(x + u, y + v)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ['backward_warp', 'endpoint_error', 'flow_error_stats', 'masked_epe_loss',
           'subpixel_gt', 'spring_error_stats', 'spring_wauc', 'SPRING_WAUC_THRESHOLDS', 'SPRING_SPEED_BANDS']


def backward_warp(img2: torch.Tensor, flow: torch.Tensor,
                  mode: str = 'bilinear') -> tuple[torch.Tensor, torch.Tensor]:
    """Sample frame 2 at ``x + flow(x)``: the frame-2 content seen from frame 1.

    Args:
        img2: ``(B, C, H2, W2)`` frame 2 (may be larger than the flow field when the flow
            lives on a sub-window starting at the origin).
        flow: ``(B, 2, H, W)`` flow of frame 1.

    Returns:
        ``(warped (B, C, H, W), inside (B, H, W) bool)`` where ``inside`` says the sample
        point lies within frame 2.
    """
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f'flow must be (B, 2, H, W), got {tuple(flow.shape)}.')
    B, _, H, W = flow.shape
    H2, W2 = img2.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(H, device=flow.device, dtype=flow.dtype),
                            torch.arange(W, device=flow.device, dtype=flow.dtype), indexing='ij')
    x = xs + flow[:, 0]
    y = ys + flow[:, 1]
    inside = (x >= 0) & (x <= W2 - 1) & (y >= 0) & (y <= H2 - 1)
    grid = torch.stack([2 * x / max(W2 - 1, 1) - 1, 2 * y / max(H2 - 1, 1) - 1], dim=-1)
    warped = F.grid_sample(img2.to(flow.dtype), grid, mode=mode, padding_mode='border',
                           align_corners=True)
    return warped, inside


def endpoint_error(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-pixel Euclidean distance between two ``(B, 2, H, W)`` flows -> ``(B, H, W)``."""
    if pred.shape != gt.shape:
        raise ValueError(f'Predicted flow {tuple(pred.shape)} and ground truth '
                         f'{tuple(gt.shape)} differ in shape.')
    return torch.linalg.vector_norm(pred.float() - gt.float(), dim=1)


def flow_error_stats(pred: torch.Tensor, gt: torch.Tensor,
                     valid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Sums over valid pixels, so that datasets can be averaged per pixel.

    Returns float64 sums: ``count`` (valid pixels), ``epe`` (sum of EPE), ``out1px``,
    ``out3px``, ``out5px`` (pixels with EPE > 1 / 3 / 5 px) and ``fl`` (KITTI Fl outliers:
    EPE > 3 px **and** EPE > 5 % of the ground-truth magnitude).
    """
    epe = endpoint_error(pred, gt)
    if valid is None:
        valid = torch.ones_like(epe, dtype=torch.bool)
    valid = valid.bool() & torch.isfinite(epe)
    if valid.shape != epe.shape:
        raise ValueError(f'valid mask {tuple(valid.shape)} does not match flow '
                         f'{tuple(epe.shape)} (B, H, W).')
    mag = torch.linalg.vector_norm(gt.float(), dim=1)
    e = epe[valid].double()
    m = mag[valid].double()
    return dict(count=torch.tensor(float(e.numel()), dtype=torch.float64),
                epe=e.sum(), out1px=(e > 1).sum().double(), out3px=(e > 3).sum().double(),
                out5px=(e > 5).sum().double(), fl=((e > 3) & (e > 0.05 * m)).sum().double())


#: Spring's WAUC: thresholds 0.05, 0.10, ..., 5.00 px with linearly falling weights 1 .. 0.01.
SPRING_WAUC_THRESHOLDS = torch.arange(1, 101, dtype=torch.float64) / 20.0
_SPRING_WAUC_WEIGHTS = 1.0 - (torch.arange(1, 101, dtype=torch.float64) - 1) / 100.0
#: Spring's speed bands, by the mean ground-truth magnitude of a pixel's sub-pixels (px).
SPRING_SPEED_BANDS = {'s0-10': (0.0, 10.0), 's10-40': (10.0, 40.0), 's40+': (40.0, float('inf'))}


def subpixel_gt(flow_hr: torch.Tensor) -> torch.Tensor:
    """Split a 2x super-resolved ground truth into the four sub-pixels of each pixel.

    Args:
        flow_hr: ``(2, 2H, 2W)`` flow (Spring's ``.flo5``, NaN = no ground truth).

    Returns:
        ``(4, 2, H, W)``: sub-pixels (top-left, top-right, bottom-left, bottom-right) of
        every pixel of the ``H x W`` image grid.
    """
    if flow_hr.dim() != 3 or flow_hr.shape[0] != 2 or flow_hr.shape[1] % 2 or flow_hr.shape[2] % 2:
        raise ValueError(f'subpixel_gt needs a (2, 2H, 2W) flow with even sides, got '
                         f'{tuple(flow_hr.shape)}.')
    _, H2, W2 = flow_hr.shape
    sub = flow_hr.reshape(2, H2 // 2, 2, W2 // 2, 2)  # (c, H, dy, W, dx)
    return sub.permute(2, 4, 0, 1, 3).reshape(4, 2, H2 // 2, W2 // 2)


def spring_error_stats(pred: torch.Tensor, gt_sub: torch.Tensor) -> dict[str, torch.Tensor]:
    """Spring's flow conventions, as sums so that a split can be pooled per pixel.

    The Spring ground truth is 2x super-resolved; each estimated pixel is compared with
    the four ground-truth sub-pixels it covers and keeps the **smallest** end-point error.
    A pixel counts only when all four sub-pixels have ground truth (finite). Outliers:
    ``1px`` (error > 1 px, Spring's ranking metric) and ``Fl`` (error > 3 px and > 5 % of
    the largest sub-pixel magnitude); ``WAUC`` is the weighted area under the curve of the
    share of pixels within 0.05 .. 5 px. Speed bands use the mean sub-pixel magnitude.

    Args:
        pred: ``(2, H, W)`` estimated flow on the image grid.
        gt_sub: ``(4, 2, H, W)`` ground-truth sub-pixels (:func:`subpixel_gt`).

    Returns:
        float64 sums: ``count``, ``epe``, ``out1px``, ``fl``, ``wauc_hits`` (100 counts of
        pixels within each WAUC threshold) and ``count_<band>`` / ``epe_<band>`` /
        ``out1px_<band>`` for each speed band.
    """
    if gt_sub.dim() != 4 or gt_sub.shape[:2] != (4, 2) or pred.shape != gt_sub.shape[1:]:
        raise ValueError(f'spring_error_stats needs pred (2, H, W) and gt_sub (4, 2, H, W) on '
                         f'the same grid, got {tuple(pred.shape)} and {tuple(gt_sub.shape)}.')
    gt = gt_sub.double()
    err = torch.linalg.vector_norm(pred.double()[None] - gt, dim=1)  # (4, H, W)
    valid = torch.isfinite(gt).all(dim=1).all(dim=0) & torch.isfinite(pred.double()).all(dim=0)
    e = err.min(dim=0).values[valid]
    mag = torch.linalg.vector_norm(gt, dim=1)  # (4, H, W)
    mag_max, mag_mean = mag.max(dim=0).values[valid], mag.mean(dim=0)[valid]
    thr = SPRING_WAUC_THRESHOLDS.to(e.device)
    out = dict(count=torch.tensor(float(e.numel()), dtype=torch.float64), epe=e.sum(),
               out1px=(e > 1).sum().double(), fl=((e > 3) & (e > 0.05 * mag_max)).sum().double(),
               wauc_hits=(e[:, None] <= thr).sum(dim=0).double())
    for band, (lo, hi) in SPRING_SPEED_BANDS.items():
        m = (mag_mean >= lo) & (mag_mean < hi)
        out[f'count_{band}'] = m.sum().double()
        out[f'epe_{band}'] = e[m].sum()
        out[f'out1px_{band}'] = (e[m] > 1).sum().double()
    return out


def spring_wauc(wauc_hits: torch.Tensor, count: float) -> float:
    """Spring's WAUC (%) from the per-threshold counts of :func:`spring_error_stats`."""
    w = _SPRING_WAUC_WEIGHTS.to(wauc_hits.device)
    return float(100.0 * (w * wauc_hits.double()).sum() / (count * w.sum()))


def masked_epe_loss(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor,
                    eps: float = 1e-6) -> torch.Tensor:
    """Mean end-point error over valid pixels (0 with a gradient when none is valid)."""
    epe = torch.sqrt(((pred.float() - gt.float()) ** 2).sum(dim=1) + eps)
    w = valid.float()
    return (epe * w).sum() / w.sum().clamp(min=1.0)
