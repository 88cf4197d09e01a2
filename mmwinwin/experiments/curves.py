"""Learning curves of mmengine runs: a hook recording (iteration, training seconds, metrics)
at every validation, the summary over seeds, markdown tables and matplotlib plots; shared by
``winwin_curves`` (segmentation) and ``winwin_det_curves`` (detection, panoptic)."""
from __future__ import annotations

import os.path as osp
import time

import numpy as np


class CurveRecorder:
    """An mmengine hook recording (iteration, training seconds, metrics) at every validation.

    ``metric_keys`` maps the stored name of each point's metric to the key the evaluator
    returns (default: mmseg's ``mIoU`` and ``aAcc``; ``winwin_det_curves`` records
    mmdet's ``coco/bbox_mAP`` and ``coco/segm_mAP``).
    """

    priority = 'LOWEST'

    def __init__(self, metric_keys: dict[str, str] | None = None):
        from mmengine.hooks import Hook
        self._hook_cls = Hook
        self.metric_keys = metric_keys or {'mIoU': 'mIoU', 'aAcc': 'aAcc'}
        self.points: list[dict] = []
        self._t0 = self._paused = self._pause_start = 0.0
        self._c0 = self._cpaused = self._cpause_start = 0.0

    def as_hook(self):
        rec = self

        class _Hook(self._hook_cls):
            priority = 'LOWEST'

            def before_train(self, runner):
                rec._t0, rec._paused = time.perf_counter(), 0.0
                rec._c0, rec._cpaused = time.process_time(), 0.0

            def before_val_epoch(self, runner):
                rec._pause_start = time.perf_counter()
                rec._cpause_start = time.process_time()

            def after_val_epoch(self, runner, metrics=None):
                now, cnow = time.perf_counter(), time.process_time()
                train_s = rec._pause_start - rec._t0 - rec._paused
                cpu_s = rec._cpause_start - rec._c0 - rec._cpaused
                rec._paused += now - rec._pause_start
                rec._cpaused += cnow - rec._cpause_start
                rec.points.append(dict(
                    iter=runner.iter, train_s=train_s, cpu_s=cpu_s,
                    **{name: float((metrics or {}).get(key, float('nan')))
                       for name, key in rec.metric_keys.items()}))

        return _Hook()


def refuse_other_settings(store: str, stored: list[dict], now: dict) -> None:
    """Refuse to resume a batch with other settings: ``stored`` holds each stored run's
    settings, ``now`` this invocation's; a setting a stored run does not record (an older
    store) is not compared. A batch compares runs of one setting only."""
    for settings in stored:
        differ = {k: (settings[k], v) for k, v in now.items()
                  if k in settings and settings[k] != v}
        if differ:
            raise ValueError(
                f'{store} holds runs of other settings ({differ}: stored, now); a batch '
                'compares runs of one setting. Give another --out for these settings, or the '
                'stored ones to resume that batch.')


def is_stored(results: list[dict], key: dict) -> bool:
    """Whether a run with every setting of ``key`` is already in ``results`` (the stored
    points of ``curves.json``), so a resumed invocation skips it."""
    return any(all(r.get(k) == v for k, v in key.items()) for r in results)


def summarise(results: list[dict], metric: str = 'mIoU') -> dict:
    """{(task, variant): {'iters', 'cpu_s' (mean), 'mean', 'std', 'min', 'max', 'seeds'}}
    of one metric, over the seeds (points up to the shortest run)."""
    out = {}
    # runs of several window sides (a sweep) are separate series, named <variant>_w<side>
    by_window = len({r.get('window') for r in results}) > 1

    def series(r):
        return f"{r['variant']}_w{r.get('window')}" if by_window else r['variant']
    for task in sorted({r['task'] for r in results}):
        for variant in dict.fromkeys(series(r) for r in results):
            runs = [r['points'] for r in results if r['task'] == task and series(r) == variant]
            if not runs:
                continue
            n = min(len(p) for p in runs)
            m = np.array([[p[i][metric] for i in range(n)] for p in runs])
            t = np.array([[p[i]['cpu_s'] for i in range(n)] for p in runs])
            out[(task, variant)] = dict(iters=[runs[0][i]['iter'] for i in range(n)],
                                        cpu_s=t.mean(0), mean=m.mean(0), std=m.std(0),
                                        min=m.min(0), max=m.max(0), seeds=len(runs))
    return out


def write_table(summary: dict, path: str | None, args_line: str, metric: str = 'mIoU',
                label_fn=None) -> str:
    """A markdown table per task (mean +- std over seeds at each validation point); written
    to ``path`` (unless None) and returned."""
    label_fn = label_fn or str
    lines = [f'Win-Win learning curves ({args_line}); {metric} mean +- std over seeds, '
             's = mean training CPU seconds at that point (one thread, data loading included, '
             'validation excluded; it depends far less on the load of the shared machine than '
             'wall time does)', '']
    for task in sorted({k[0] for k in summary}):
        lines += [f'#### task `{task}`', '',
                  '| variant | seeds | ' + ' | '.join(
                      f'{i} it' for i in summary[next(k for k in summary if k[0] == task)]['iters'])
                  + ' |']
        n_cols = len(summary[next(k for k in summary if k[0] == task)]['iters'])
        lines.append('|---|---:|' + '---:|' * n_cols)
        for (t, v), s in summary.items():
            if t != task:
                continue
            cells = [f'{mu:.1f} +- {sd:.1f} ({ts:.0f} s)'
                     for mu, sd, ts in zip(s['mean'], s['std'], s['cpu_s'])]
            lines.append(f'| {label_fn(v)} | {s["seeds"]} | ' + ' | '.join(cells) + ' |')
        lines.append('')
    text = '\n'.join(lines)
    if path is not None:
        with open(path, 'w') as f:
            f.write(text + '\n')
    return text


def plot(summaries: dict, out: str, label_fn=None, prefix: str = 'curves',
         reference: dict | None = None) -> list[str]:
    """One PNG per task, ``{out}/{prefix}_{task}.png``: a row per metric of ``summaries``
    (metric name -> ``summarise`` output), the metric against iterations (left) and against
    training CPU seconds (right), mean with a min-max band per variant; ``reference``
    (stored curves, :func:`load_reference`) dashed on the first metric's row."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    label_fn = label_fn or str
    paths = []
    tasks = sorted({k[0] for summary in summaries.values() for k in summary})
    for task in tasks:
        fig, axes = plt.subplots(len(summaries), 2, figsize=(11, 5.5 * len(summaries)),
                                 squeeze=False)
        for r_i, (row, (metric, summary)) in enumerate(zip(axes, summaries.items())):
            for (t, v), s in summary.items():
                if t != task:
                    continue
                for ax, x in zip(row, (s['iters'], s['cpu_s'])):
                    ax.plot(x, s['mean'], marker='o', label=f'{label_fn(v)} ({s["seeds"]} seeds)')
                    ax.fill_between(x, s['min'], s['max'], alpha=0.2)
            for name, r in ((reference or {}).get(task, {}) if r_i == 0 else {}).items():
                for ax, x in zip(row, (r['iters'], r['cpu_s'])):
                    ax.errorbar(x, r['mean'], yerr=r['std'], linestyle='--', marker='s',
                                markersize=3, capsize=2, alpha=0.7,
                                label=f'{label_fn(name)} (stored, {r["seeds"]} seeds, +- std'
                                      + (f'; {r["note"]}' if r.get('note') else '') + ')')
            row[0].set_xlabel('training iterations')
            row[1].set_xlabel('training CPU seconds (1 thread, validation excluded)')
            for ax in row:
                ax.set_ylabel(f'whole-image val {metric}')
                ax.grid(alpha=0.3)
        handles, labels = axes[0][0].get_legend_handles_labels()
        # two columns fit labels of up to about 75 characters at this width; longer, one
        ncol = 2 if max(map(len, labels), default=0) <= 75 else 1
        fig.legend(handles, labels, loc='lower center', ncol=ncol, fontsize=7)
        fig.suptitle(f'Win-Win vs full resolution, task "{task}" (mean, band = min..max)')
        legend_rows = -(-len(labels) // ncol)
        fig.tight_layout(rect=(0, (0.04 + 0.035 * legend_rows) / len(summaries), 1, 1))
        path = osp.join(out, f'{prefix}_{task}.png')
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
