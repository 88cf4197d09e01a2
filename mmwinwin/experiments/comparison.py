"""What a same-batch set of learning curves says: end-of-schedule tables over seeds, the
equal-training-time criterion of the Win-Win recipe against full resolution, and the recipe
against its same-budget peers.

The input is the ``curves.json`` of one invocation of ``winwin_curves`` (every run of the
batch shares seeds, data, validation schedule; validation leaves the training RNG alone): a
list of runs ``{task, variant, seed, iters, ..., points: [{iter, train_s, cpu_s, <metric>}]}``.
Training time is ``cpu_s``: process CPU seconds of training at one thread (data loading
included, validation excluded), which equals wall time on an idle core and moves far less
than wall time with the load of a shared machine; ``train_s`` (wall) is kept in the data.

The criterion (what a user of Win-Win is promised), per task, on the mean curves over seeds:

* **never below at equal time**: at every training time ``t`` from 10 % of the recipe's
  schedule to its end where the baseline has a measured value (the recipe's and the
  baseline's validation times, each curve interpolated linearly between its own validation
  points; times before the baseline's first validation are not compared), the recipe's
  metric is at least the baseline's;
* **end of schedule**: the recipe's final metric is at least ``0.9`` of the baseline's (for a
  lower-is-better metric, at most ``1 / 0.9`` of it) in at most ``0.5`` of its training time.
"""
from __future__ import annotations

import numpy as np

__all__ = ['runs_of', 'mean_curve', 'final_rows', 'equal_time_check', 'criterion_rows',
           'final_table', 'criterion_table', 'peers_table', 'first_reach', 'cue_rows',
           'cue_table', 'END_RATIO', 'TIME_RATIO']

END_RATIO = 0.9
TIME_RATIO = 0.5
SKIP_FRACTION = 0.1


def runs_of(results: list[dict], task: str, variant: str) -> list[dict]:
    """The runs of one (task, variant), seed order; ``variant`` matches the stored name or
    its base (``winwin_ft`` matches ``winwin_ft_b2000``)."""
    out = [r for r in results if r['task'] == task and
           (r['variant'] == variant or r['variant'].split('_b')[0] == variant)]
    return sorted(out, key=lambda r: r['seed'])


def mean_curve(runs: list[dict], metric: str) -> dict:
    """Mean over seeds at each validation point (up to the shortest run): ``iters``,
    ``time`` (mean CPU seconds), ``mean``, ``std``, ``min``, ``per_seed`` (seeds x points)."""
    n = min(len(r['points']) for r in runs)
    m = np.array([[r['points'][i][metric] for i in range(n)] for r in runs], dtype=float)
    t = np.array([[r['points'][i]['cpu_s'] for i in range(n)] for r in runs], dtype=float)
    return dict(iters=[runs[0]['points'][i]['iter'] for i in range(n)], time=t.mean(0),
                mean=m.mean(0), std=m.std(0), min=m.min(0), per_seed=m,
                seeds=[r['seed'] for r in runs])


def _ratio(a: float, b: float, lower_is_better: bool) -> float:
    """How good ``a`` is relative to ``b`` (1 = as good; > 1 better)."""
    if lower_is_better:
        return b / a if a else float('inf')
    return a / b if b else float('inf')


def final_rows(results: list[dict], task: str, variants: list[str], baseline: str = 'fullres',
               metric: str = 'mIoU', lower_is_better: bool = False) -> list[dict]:
    """Per variant at the end of its schedule: mean, std, per-seed metric and CPU seconds,
    and the ratio to the baseline (mean and per seed, same seeds) in metric and time."""
    base = runs_of(results, task, baseline)
    base_by_seed = {r['seed']: r['points'][-1] for r in base}
    b_metric = np.mean([p[metric] for p in base_by_seed.values()]) if base else float('nan')
    b_time = np.mean([p['cpu_s'] for p in base_by_seed.values()]) if base else float('nan')
    rows = []
    for v in variants:
        runs = runs_of(results, task, v)
        if not runs:
            continue
        ends = [r['points'][-1] for r in runs]
        vals = np.array([p[metric] for p in ends], dtype=float)
        times = np.array([p['cpu_s'] for p in ends], dtype=float)
        per_seed = [_ratio(p[metric], base_by_seed[r['seed']][metric], lower_is_better)
                    if r['seed'] in base_by_seed else float('nan') for r, p in zip(runs, ends)]
        rows.append(dict(variant=v, seeds=[r['seed'] for r in runs], values=vals.tolist(),
                         mean=float(vals.mean()), std=float(vals.std()),
                         time=float(times.mean()),
                         ratio=_ratio(float(vals.mean()), b_metric, lower_is_better),
                         per_seed_ratio=per_seed, time_ratio=float(times.mean() / b_time)))
    return rows


def equal_time_check(recipe: dict, baseline: dict, lower_is_better: bool = False,
                     skip_fraction: float = SKIP_FRACTION) -> dict:
    """The recipe's and the baseline's mean curves (:func:`mean_curve`) at equal training
    time (see the module doc). Returns ``holds`` (never below), ``worst`` (the smallest
    recipe-minus-baseline margin, sign flipped for lower-is-better metrics), ``at`` (the time
    of it) and ``compared`` (how many times were compared)."""
    t_end = float(recipe['time'][-1])
    t_start = skip_fraction * t_end
    tb, mb = np.asarray(baseline['time']), np.asarray(baseline['mean'])
    tr, mr = np.asarray(recipe['time']), np.asarray(recipe['mean'])
    times = sorted({float(t) for t in np.concatenate([tr, tb])
                    if t_start <= t <= t_end and tb[0] <= t <= tb[-1] and tr[0] <= t})
    worst, at = float('inf'), float('nan')
    for t in times:
        margin = float(np.interp(t, tr, mr) - np.interp(t, tb, mb))
        if lower_is_better:
            margin = -margin
        if margin < worst:
            worst, at = margin, t
    return dict(holds=bool(times) and worst >= 0, worst=worst, at=at, compared=len(times))


def criterion_rows(results: list[dict], tasks: list[str], recipe: str = 'winwin_ft',
                   baseline: str = 'fullres', metric: str = 'mIoU',
                   lower_is_better: bool = False) -> list[dict]:
    """Per task: the equal-time check and the end-of-schedule ratios (module doc)."""
    rows = []
    for task in tasks:
        r_runs, b_runs = runs_of(results, task, recipe), runs_of(results, task, baseline)
        if not r_runs or not b_runs:
            continue
        rc, bc = mean_curve(r_runs, metric), mean_curve(b_runs, metric)
        check = equal_time_check(rc, bc, lower_is_better)
        end = final_rows(results, task, [recipe], baseline, metric, lower_is_better)[0]
        end_ok = end['ratio'] >= END_RATIO and end['time_ratio'] <= TIME_RATIO
        rows.append(dict(task=task, seeds=len(r_runs), equal_time=check, end=end,
                         end_holds=end_ok, holds=check['holds'] and end_ok))
    return rows


def _fmt_seeds(values, fmt='{:.1f}') -> str:
    return ' / '.join(fmt.format(v) for v in values)


def final_table(results: list[dict], task: str, variants: list[str], label_fn=str,
                metric: str = 'mIoU', baseline: str = 'fullres',
                lower_is_better: bool = False) -> str:
    """Markdown: one row per variant at the end of its schedule (see :func:`final_rows`)."""
    lines = [f'| variant | {metric} mean +- std | per seed | training CPU s | '
             f'of full resolution ({metric}, mean) | per seed | of its time |',
             '|---|---:|---:|---:|---:|---:|---:|']
    for r in final_rows(results, task, variants, baseline, metric, lower_is_better):
        lines.append(f'| {label_fn(r["variant"])} | {r["mean"]:.1f} +- {r["std"]:.1f} | '
                     f'{_fmt_seeds(r["values"])} | {r["time"]:.0f} | {r["ratio"]:.2f} | '
                     f'{_fmt_seeds(r["per_seed_ratio"], "{:.2f}")} | {r["time_ratio"]:.2f} |')
    return '\n'.join(lines)


def criterion_table(results: list[dict], tasks: list[str], recipe: str = 'winwin_ft',
                    baseline: str = 'fullres', metric: str = 'mIoU',
                    lower_is_better: bool = False, recipes: list[str] | None = None,
                    label_fn=None, task_label=str, metric_in_cells: bool = False,
                    header: bool = True, recipe_column: bool | None = None) -> str:
    """Markdown: per task (and per recipe of ``recipes``, a column then), whether the
    criterion holds, with its figures. ``metric_in_cells``: the ratio cells name the metric
    (``EPE 1 / 0.91``: full resolution's over the recipe's for a lower-is-better metric), for
    a table of several metrics; ``header=False``: the rows only; ``recipe_column``: name the
    recipe in a column (default: when there are several)."""
    recipes = list(recipes) if recipes else [recipe]
    many = len(recipes) > 1 if recipe_column is None else recipe_column
    end = 'end: metric, of full resolution' if metric_in_cells else f'end: {metric} ratio'
    lines = ['| task | ' + ('recipe | ' if many else '') + 'seeds | never below at equal time '
             f'(worst margin, at CPU s) | {end} (per seed) | end: time ratio | criterion |',
             '|---|' + ('---|' if many else '') + '---:|---|---|---:|---|'] if header else []
    digits = 2 if lower_is_better else 1
    for task in tasks:
        for rec in recipes:
            for r in criterion_rows(results, [task], rec, baseline, metric, lower_is_better):
                c, e = r['equal_time'], r['end']
                name = f'{(label_fn or str)(rec)} | ' if many else ''
                ratio = (f'{metric} {"1 / " if lower_is_better else ""}' if metric_in_cells
                         else '') + f'{e["ratio"]:.2f}'
                lines.append(
                    f'| {task_label(r["task"])} | {name}{r["seeds"]} | '
                    f'{"yes" if c["holds"] else "no"} '
                    f'({c["worst"]:+.{digits}f} at {c["at"]:.0f} s; {c["compared"]} times) | '
                    f'{ratio} ({_fmt_seeds(e["per_seed_ratio"], "{:.2f}")}) | '
                    f'{e["time_ratio"]:.2f} | {"holds" if r["holds"] else "fails"} |')
    return '\n'.join(lines)


def peers_table(results: list[dict], task: str, peers: list[str], recipe: str = 'winwin_ft',
                label_fn=str, metric: str = 'mIoU', lower_is_better: bool = False) -> str:
    """Markdown: the recipe against each same-budget peer at equal training time (the
    recipe's mean curve against the peer's, :func:`equal_time_check` with the peer as the
    baseline) and at the end of each schedule."""
    r_runs = runs_of(results, task, recipe)
    if not r_runs:
        return ''
    rc = mean_curve(r_runs, metric)
    lines = [f'| against | recipe never below at equal time (worst margin, at CPU s) | '
             f'peer end {metric} (CPU s) | recipe end {metric} (CPU s) |',
             '|---|---|---:|---:|']
    for peer in peers:
        p_runs = runs_of(results, task, peer)
        if not p_runs:
            continue
        pc = mean_curve(p_runs, metric)
        c = equal_time_check(rc, pc, lower_is_better)
        lines.append(f'| {label_fn(peer)} | {"yes" if c["holds"] else "no"} '
                     f'({c["worst"]:+.1f} at {c["at"]:.0f} s) | {pc["mean"][-1]:.1f} '
                     f'({pc["time"][-1]:.0f}) | {rc["mean"][-1]:.1f} ({rc["time"][-1]:.0f}) |')
    return '\n'.join(lines)


def first_reach(points: list[dict], level: float, metric: str = 'mIoU',
                after: int = 0) -> dict | None:
    """The first validation point past iteration ``after`` whose metric is at least
    ``level`` (``None``: never)."""
    return next((p for p in points if p['iter'] > after and p[metric] >= level), None)


def cue_rows(results: list[dict], task: str, recipe: str, phase_begin,
             baseline: str = 'fullres', metric: str = 'mIoU') -> list[dict]:
    """Per seed: when the baseline and the recipe (whose whole-image phase begins at
    ``phase_begin(iters)``) first reach the midpoint of the baseline's rise, from its first
    validation to its end (on the long-range tasks, the jump of learning the distant cue)."""
    rows = []
    recipe_runs = {r['seed']: r for r in runs_of(results, task, recipe)}
    for base in runs_of(results, task, baseline):
        run = recipe_runs.get(base['seed'])
        if run is None:
            continue
        pts = base['points']
        level = (pts[0][metric] + pts[-1][metric]) / 2
        begin = phase_begin(run['iters'])
        before = [p for p in run['points'] if p['iter'] <= begin]
        rows.append(dict(seed=base['seed'], level=level, start=pts[0][metric],
                         end=pts[-1][metric], base=first_reach(pts, level, metric),
                         begin=begin, before=before[-1][metric] if before else float('nan'),
                         recipe=first_reach(run['points'], level, metric),
                         recipe_end=run['points'][-1][metric]))
    return rows


def cue_table(results: list[dict], tasks: list[str], recipe: str, phase_begin,
              task_label=str, metric: str = 'mIoU') -> str:
    """Markdown of :func:`cue_rows`: per task and seed, the level, where full resolution
    reaches it (iteration, CPU s), the recipe before its phase, where the recipe reaches it
    (iteration, whole-image steps into the phase, CPU s) and which is first in CPU time."""
    lines = [f'| task | seed | full resolution {metric}: first validation -> end (midpoint) | '
             'full resolution reaches it at | recipe before its phase | recipe reaches it at '
             '(whole-image steps) | first in CPU time |',
             '|---|---:|---|---|---:|---|---|']
    for task in tasks:
        for r in cue_rows(results, task, recipe, phase_begin, metric=metric):
            b, w = r['base'], r['recipe']
            base = f'it {b["iter"]}, {b["cpu_s"]:.0f} s' if b else 'never'
            rec = (f'it {w["iter"]} ({w["iter"] - r["begin"]:+d}), {w["cpu_s"]:.0f} s'
                   if w else f'never (end {r["recipe_end"]:.1f})')
            first = 'recipe' if w and (not b or w['cpu_s'] < b['cpu_s']) else \
                'full resolution' if b else '-'
            lines.append(f'| {task_label(task)} | {r["seed"]} | {r["start"]:.1f} -> '
                         f'{r["end"]:.1f} ({r["level"]:.1f}) | {base} | {r["before"]:.1f} | '
                         f'{rec} | {first} |')
    return '\n'.join(lines)
