"""Issue 22 item 6: bad inputs a new user meets get an error that names the problem and
the fix (each test feeds the bad input, then checks the good one still works)."""
import collections
import os
import pickle

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
