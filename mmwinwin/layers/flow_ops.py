"""Optical-flow arithmetic in pure PyTorch: warping, error statistics, the training loss.

Convention everywhere in mmwinwin: ``flow`` is ``(B, 2, H, W)`` (or ``(H, W, 2)`` on the
numpy side) holding ``(u, v)`` = (right, down) displacement in pixels of each pixel of
frame 1, so that ``frame1(x, y) ~ frame2(x + u, y + v)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ['backward_warp', 'endpoint_error', 'flow_error_stats', 'masked_epe_loss']


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


def masked_epe_loss(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor,
                    eps: float = 1e-6) -> torch.Tensor:
    """Mean end-point error over valid pixels (0 with a gradient when none is valid)."""
    epe = torch.sqrt(((pred.float() - gt.float()) ** 2).sum(dim=1) + eps)
    w = valid.float()
    return (epe * w).sum() / w.sum().clamp(min=1.0)
