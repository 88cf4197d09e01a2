"""WinWinMask2Former(head_positions='image'): a window's sine positional encodings are the
whole image's, cut to the window's cells (checked against mmdet's encoder run on the whole
map and sliced)."""
import pytest
import torch

pytest.importorskip('mmdet')
from mmdet.models.layers import SinePositionalEncoding  # noqa: E402

from mmwinwin.models.winwin.detectors import image_frame_positions  # noqa: E402


class _Heads(torch.nn.Module):
    def __init__(self, normalize):
        super().__init__()
        self.a = SinePositionalEncoding(num_feats=8, normalize=normalize)
        self.b = torch.nn.Sequential(SinePositionalEncoding(num_feats=4, normalize=normalize))


@pytest.mark.parametrize('normalize', [True, False])
def test_window_positions_are_the_whole_images_cut(normalize):
    heads = _Heads(normalize)
    H, W = 128, 256  # the whole image in pixels; windows of 64x64 px at two offsets
    frames = [(0, 64, H, W), (64, 128, H, W)]
    for enc in (heads.a, heads.b[0]):
        for stride in (8, 16, 32):
            full = enc(torch.zeros(1, H // stride, W // stride, dtype=torch.bool))[0]
            with image_frame_positions(heads, frames, (64, 64)):
                got = enc(torch.zeros(2, 64 // stride, 64 // stride, dtype=torch.bool))
            for b, (top, left, _, _) in enumerate(frames):
                t, lf, n = top // stride, left // stride, 64 // stride
                torch.testing.assert_close(got[b], full[:, t:t + n, lf:lf + n])
    # the whole image as its own frame is mmdet's encoding; the patch is gone after the block
    mask = torch.zeros(1, 4, 8, dtype=torch.bool)
    own = heads.a(mask)
    with image_frame_positions(heads, [(0, 0, H, W)], (H, W)):
        torch.testing.assert_close(heads.a(mask), own)
    assert 'forward' not in heads.a.__dict__
    torch.testing.assert_close(heads.a(mask), own)
    with pytest.raises(ValueError, match='padding'):
        with image_frame_positions(heads, [(0, 0, H, W)], (H, W)):
            heads.a(torch.ones(1, 4, 8, dtype=torch.bool))
