"""Readers and writers for the optical-flow file formats (numpy only, plus cv2 / h5py).

Every reader returns ``flow`` as a float32 ``(H, W, 2)`` array of ``(u, v)`` = (right,
down) displacements in pixels from frame 1 to frame 2, and, where the format carries
one, a boolean ``valid`` ``(H, W)`` mask.

* Middlebury ``.flo`` (MPI-Sintel, FlyingChairs): float32 magic 202021.25, int32 width,
  int32 height, then ``H * W * 2`` little-endian float32 values, row-major, u/v interleaved.
* KITTI 2015 16-bit PNG: channels (R, G, B) = (u * 64 + 2**15, v * 64 + 2**15, valid).
* Spring ``.flo5``: HDF5 file with dataset ``flow`` ``(H, W, 2)``; NaN marks pixels
  without ground truth.
* Sintel / generated masks: 8-bit PNG, non-zero = set (invalid, occluded).
"""
from __future__ import annotations

import os

import cv2
import numpy as np

__all__ = ['FLO_MAGIC', 'read_flo', 'write_flo', 'read_kitti_flow', 'write_kitti_flow',
           'read_flo5', 'write_flo5', 'read_flow', 'write_flow', 'read_mask_png', 'write_mask_png',
           'read_image_rgb']

FLO_MAGIC = 202021.25
_KITTI_SCALE = 64.0
_KITTI_OFFSET = 2.0 ** 15


def _check_flow(flow: np.ndarray, what: str) -> np.ndarray:
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f'{what}: flow must have shape (H, W, 2), got {flow.shape}.')
    return flow


def read_flo(path: str) -> np.ndarray:
    """Read a Middlebury ``.flo`` file into a float32 ``(H, W, 2)`` array."""
    with open(path, 'rb') as f:
        header = f.read(12)
        if len(header) < 12:
            raise ValueError(f'{path!r} is too short to be a .flo file ({len(header)} bytes).')
        magic = np.frombuffer(header[:4], '<f4')[0]
        if magic != np.float32(FLO_MAGIC):
            raise ValueError(f'{path!r} is not a Middlebury .flo file: magic number {magic} '
                             f'!= {FLO_MAGIC} (wrong file, or a big-endian writer).')
        w, h = (int(v) for v in np.frombuffer(header[4:], '<i4'))
        if w <= 0 or h <= 0 or w * h > 1 << 30:
            raise ValueError(f'{path!r}: implausible .flo size {w}x{h}.')
        data = np.frombuffer(f.read(), '<f4')
    if data.size != h * w * 2:
        raise ValueError(f'{path!r}: header says {w}x{h} (expects {h * w * 2} floats) but the '
                         f'file holds {data.size}; the file is truncated or corrupt.')
    return data.reshape(h, w, 2).astype(np.float32)


def write_flo(path: str, flow: np.ndarray) -> None:
    """Write a ``(H, W, 2)`` flow as a Middlebury ``.flo`` file."""
    flow = _check_flow(flow, 'write_flo')
    h, w = flow.shape[:2]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(np.array([FLO_MAGIC], '<f4').tobytes())
        f.write(np.array([w, h], '<i4').tobytes())
        f.write(np.ascontiguousarray(flow, dtype='<f4').tobytes())


def read_kitti_flow(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a KITTI 16-bit PNG flow; returns ``(flow (H, W, 2) float32, valid (H, W) bool)``."""
    # unchanged: IMREAD_COLOR would silently replicate a 1-channel PNG into (u, v, valid)
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise _unreadable(path, 'KITTI flow PNG')
    if img.dtype != np.uint16:
        raise ValueError(f'{path!r} is {img.dtype}, but KITTI flow PNGs are 16-bit '
                         f'(3 channels: u, v, valid).')
    channels = 1 if img.ndim == 2 else img.shape[2]
    if channels != 3:
        raise ValueError(f'{path!r} is a 16-bit PNG with {channels} channel(s), but KITTI flow '
                         'PNGs are 16-bit with 3 channels (u, v, valid); a 1-channel 16-bit '
                         'PNG is e.g. a KITTI disparity map. Point flow_path at the flow_occ / '
                         'flow_noc folder, or write the flow with write_kitti_flow.')
    img = img[:, :, ::-1].astype(np.float32)  # cv2 gives BGR -> (u, v, valid)
    flow = (img[:, :, :2] - _KITTI_OFFSET) / _KITTI_SCALE
    valid = img[:, :, 2] > 0
    flow[~valid] = 0.0
    return flow, valid


def write_kitti_flow(path: str, flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    """Write flow (and a valid mask, default all valid) as a KITTI 16-bit PNG."""
    flow = _check_flow(flow, 'write_kitti_flow')
    if valid is None:
        valid = np.ones(flow.shape[:2], bool)
    if valid.shape != flow.shape[:2]:
        raise ValueError(f'valid mask {valid.shape} does not match flow {flow.shape[:2]}.')
    enc = np.round(flow * _KITTI_SCALE + _KITTI_OFFSET)
    if enc.min() < 0 or enc.max() > 65535:
        raise ValueError('Flow exceeds the KITTI PNG range (|flow| < 512 px).')
    out = np.zeros(flow.shape[:2] + (3,), np.uint16)
    out[:, :, 0] = enc[:, :, 0]
    out[:, :, 1] = enc[:, :, 1]
    out[:, :, 2] = valid.astype(np.uint16)
    out[~valid, :2] = 0
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, out[:, :, ::-1]):
        raise OSError(f'Could not write {path!r}.')


def read_flo5(path: str) -> np.ndarray:
    """Read a Spring ``.flo5`` (HDF5 dataset ``flow``) as float32 ``(H, W, 2)``; NaN = no GT."""
    import h5py
    with h5py.File(path, 'r') as f:
        if 'flow' not in f:
            raise KeyError(f'{path!r} has no HDF5 dataset "flow" (found {list(f.keys())}); '
                           f'is it a Spring .flo5 flow file?')
        flow = f['flow'][()]
    return _check_flow(flow, path).astype(np.float32)


def write_flo5(path: str, flow: np.ndarray) -> None:
    """Write a ``(H, W, 2)`` flow as a Spring ``.flo5`` (gzip-compressed HDF5)."""
    import h5py
    flow = _check_flow(flow, 'write_flo5')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with h5py.File(path, 'w') as f:
        f.create_dataset('flow', data=flow.astype(np.float32), compression='gzip',
                         compression_opts=5)


def read_flow(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Read any supported flow file by extension; returns ``(flow, valid)``.

    ``.flo``: valid where finite and ``|u|, |v| < 1e9`` (Middlebury's unknown marker);
    ``.png``: KITTI; ``.flo5``: valid where not NaN (NaNs set to 0).
    """
    ext = os.path.splitext(path)[1].lower()
    if ext == '.flo':
        flow = read_flo(path)
        valid = np.isfinite(flow).all(-1) & (np.abs(flow) < 1e9).all(-1)
    elif ext == '.png':
        return read_kitti_flow(path)
    elif ext == '.flo5':
        flow = read_flo5(path)
        valid = np.isfinite(flow).all(-1)
    else:
        raise ValueError(f'Unknown flow file extension {ext!r} for {path!r}; '
                         f'supported: .flo (Middlebury/Sintel/Chairs), .png (KITTI), '
                         f'.flo5 (Spring).')
    flow = np.where(valid[..., None], flow, 0.0).astype(np.float32)
    return flow, valid


def write_flow(path: str, flow: np.ndarray) -> None:
    """Write a ``(H, W, 2)`` flow in the format named by the extension (benchmark
    submissions): ``.flo`` (Sintel, FlyingChairs), ``.flo5`` (Spring), ``.png`` (KITTI)."""
    writers = {'.flo': write_flo, '.flo5': write_flo5, '.png': write_kitti_flow}
    ext = os.path.splitext(path)[1].lower()
    if ext not in writers:
        raise ValueError(f'Unknown flow file extension {ext!r} for {path!r}; supported: '
                         f'{sorted(writers)}.')
    writers[ext](path, flow)


def read_mask_png(path: str) -> np.ndarray:
    """Read an 8-bit mask PNG (Sintel invalid / occlusions): non-zero -> True."""
    m = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise _unreadable(path, 'Mask PNG')
    return m > 0


def write_mask_png(path: str, mask: np.ndarray) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, (np.asarray(mask, bool) * 255).astype(np.uint8)):
        raise OSError(f'Could not write {path!r}.')


def _unreadable(path: str, what: str) -> Exception:
    """Why OpenCV returned no image: a missing, an empty (0-byte) or a corrupt file."""
    if not os.path.isfile(path):
        return FileNotFoundError(f'{what} {path!r} does not exist. Check data_root and the '
                                 'dataset layout.')
    if os.path.getsize(path) == 0:
        return ValueError(f'{what} {path!r} is empty (0 bytes), e.g. an interrupted copy or '
                          'download: copy or extract it again, or remove the pair.')
    return ValueError(f'{what} {path!r} could not be decoded: it is corrupt or not an image. '
                      'Copy or extract it again, or remove the pair.')


def read_image_rgb(path: str) -> np.ndarray:
    """Read an image (PNG, JPEG, PPM) as uint8 RGB ``(H, W, 3)``."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise _unreadable(path, 'Image')
    return np.ascontiguousarray(img[:, :, ::-1])
