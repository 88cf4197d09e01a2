"""The paper experiments, each a module with ``main(argv=None)``, run as
``python -m mmwinwin.experiments.<name> ...``:

* ``winwin_reproduction``: Win-Win against full resolution, a low-resolution crop and
  Win-Win variants on generated data whose labels need distant context (one table);
* ``winwin_curves`` / ``winwin_det_curves``: learning curves over seeds (segmentation;
  detection and panoptic segmentation);
* ``winwin_demo``: Win-Win with the configs' recipe against full resolution at equal time;
* ``winwin_diagnose``: why Win-Win falls behind when labels need distant context;
* ``expedite_accuracy``, ``expedite_divergence``, ``expedite_token_distance``: Expedite
  without fine-tuning, the official operators against mmwinwin's, and the temperature's scale.

Shared code: ``reproduction`` (the Win-Win reproduction's variants and config builder, on
``configs/winwin/experiments/``) and ``curves`` (the curve recorder, summaries, tables and
plots). The experiments read configs from the repository's ``configs/`` folder
(:func:`repo_path`), so they run from a source checkout (``pip install -e .``).
"""
import os.path as osp

#: the repository holding ``configs/`` (the package is installed from a checkout)
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def repo_path(*parts: str) -> str:
    """A path under the repository (e.g. ``repo_path('configs', 'vitdet', ...)``); an error
    that says so when the package was installed without its checkout."""
    path = osp.join(REPO_ROOT, *parts)
    if not osp.exists(path):
        raise FileNotFoundError(
            f'{path} does not exist: the experiments read the configs of the mmwinwin '
            'repository; install it from a checkout (pip install -e .).')
    return path
