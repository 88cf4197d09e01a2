"""python -m mmwinwin.experiments.token_reduction: the Pareto rule on hand-made data, the tables
and plots of a hand-made data dict, and one toy end-to-end run (segmentor only)."""
import json
import os.path as osp

import pytest

from mmwinwin.experiments import token_reduction as tr


def _pt(method, knob, gmacs, metric, lat=None, agreement=None):
    p = dict(method=method, knob=knob, gmacs=gmacs, metric=metric,
             agreement=100.0 if method == 'unreduced' else agreement, mac_ratio=gmacs / 10.0,
             latency_1t_ms=gmacs if lat is None else lat, memory=dict(peak_growth_mib=1.5))
    p['latency_1t_ratio'] = p['latency_1t_ms'] / 10.0
    return p


def _data(points):
    return dict(machine=dict(platform='test', usable_cpus=2, torch='x'),
                models=dict(m=dict(metric_name='mIoU', tokens=1024, alpha=3, points=points,
                                   skipped=[dict(method='tome', knob='9', reason='why')])))


# unreduced (10, 50); Expedite (5, 45), (7, 48): its curve is 45 -> 48 -> 50 over 5 -> 7 -> 10
MIXED = [_pt('unreduced', '-', 10, 50), _pt('expedite', '8x8', 5, 45, agreement=90.0),
         _pt('expedite', '12x12', 7, 48, agreement=95.0),
         _pt('tome', '256', 6, 44),      # E(6) = 46.5 >= 44: below
         _pt('tome', '128', 8, 49.5),    # E(8) = 48 + 2/3 = 48.67 < 49.5: above Expedite
         _pt('pool', '4', 3, 40),        # cheaper than every Expedite setting
         _pt('pool', '2', 9, 47)]        # E(9) = 49.33 >= 47


def test_pareto_mixed():
    r = tr.pareto_check(_data(MIXED), 'm', 'gmacs')
    assert r['expedite_on_front'] is False
    assert sorted(r['compared']) == ['pool', 'tome']
    got = {(f['setting'], f['why']) for f in r['failures']}
    assert got == {('tome 128', "above Expedite's front"),
                   ('pool 4', 'cheaper than every Expedite setting')}
    f = next(f for f in r['failures'] if f['setting'] == 'tome 128')
    assert f['expedite_accuracy'] == pytest.approx(48 + 2 / 3)


def test_pareto_expedite_dominates_and_expedite_point_below():
    good = [p for p in MIXED if p['knob'] not in ('128', '4')]
    r = tr.pareto_check(_data(good), 'm', 'gmacs')
    assert r['expedite_on_front'] is True and r['failures'] == []
    # tome (6, 46.5) lies exactly on Expedite's line: "on" counts
    assert tr.pareto_check(_data(good + [_pt('tome', '300', 6, 46.5)]), 'm')['expedite_on_front']
    # tome front (4, 44) -> (10, 50): 45 at x=5 (Expedite a: 44, below), 47 at x=7 (b: 48)
    pts = [_pt('unreduced', '-', 10, 50), _pt('expedite', 'a', 5, 44), _pt('expedite', 'b', 7, 48),
           _pt('tome', 't', 4, 44)]
    r = tr.pareto_check(_data(pts), 'm')
    got = {(f['setting'], f['why']) for f in r['failures']}
    # tome 4 is cheaper than Expedite's cheapest (5); Expedite a (5, 44) < tome(5) = 45
    assert got == {('tome t', 'cheaper than every Expedite setting'),
                   ('expedite a', 'Expedite point below the tome front')}
    assert next(f for f in r['failures'] if f['setting'] == 'expedite a')[
        'other_accuracy'] == pytest.approx(45.0)


def test_pareto_latency_axis_uses_its_costs():
    # by latency, tome 128 is cheap (2 ms) and beats everything Expedite has at 2 ms (none)
    pts = [dict(p) for p in MIXED if p['method'] != 'pool']
    for p in pts:
        if p['knob'] == '128':
            p['latency_1t_ms'] = 12.0  # slower than unreduced: E(12) = 50 >= 49.5
    r = tr.pareto_check(_data(pts), 'm', 'latency_1t_ms')
    assert r['expedite_on_front'] is True


def test_tables_and_plots(tmp_path):
    data = _data(MIXED)
    t = tr.tables(data)
    assert list(t) == ['m']
    md = t['m']
    assert '| method | knob | GMACs | MAC ratio | mIoU | agreement |' in md
    rows = [line for line in md.splitlines() if line.startswith('| ') and 'GMACs' not in line]
    assert len(rows) == len(MIXED)
    assert '| Expedite (clustering) | 12x12 | 7.000 | 0.700 | 48.00 | 95.00 | 7.0 (0.70x) | n/a |' \
        in md
    assert 'Skipped tome 9: why' in md
    assert 'NOT on the front' in md and 'tome 128' in md and 'pool 4' in md
    paths = tr.plots(data, str(tmp_path / 'img'))
    assert sorted(osp.basename(p) for p in paths) == ['m_accuracy_vs_latency.png',
                                                       'm_accuracy_vs_macs.png']
    assert all(osp.getsize(p) > 1000 for p in paths)


def test_toy_end_to_end(tmp_path):
    data_file = tmp_path / 'd.json'
    tr.main(['--toy', '--models', 'segmentor', '--work-dir', str(tmp_path / 'w'),
             '--data', str(data_file), '--tables', str(tmp_path / 't.md'),
             '--images', str(tmp_path / 'img'), '--threads', '1'])
    data = json.loads(data_file.read_text())
    assert {'command', 'machine', 'arguments', 'models', 'wall_s'} <= set(data)
    assert {'platform', 'cpu_count', 'torch'} <= set(data['machine'])
    m = data['models']['segmentor']
    assert {'config', 'seed', 'tokens', 'alpha', 'train', 'points', 'skipped',
            'agreement_rule', 'memory_rule'} <= set(m)
    base, *reduced = m['points']
    assert base['method'] == 'unreduced' and base['agreement'] == 100.0
    assert base['mac_ratio'] == 1.0
    assert any(p['method'] == 'expedite' for p in reduced)
    for p in m['points']:
        assert {'method', 'knob', 'setting', 'metric', 'agreement', 'gmacs', 'mac_ratio',
                'latency_1t_ms', 'latency_1t_ratio', 'memory'} <= set(p)
    assert all(p['mac_ratio'] < 1 for p in reduced)
    # methods missing from this checkout are skipped with a reason, not a crash
    done = {p['method'] for p in m['points']} | {s['method'] for s in m['skipped']}
    assert done == {'unreduced', 'expedite', 'tome', 'pool'}
    assert (tmp_path / 't.md').exists() and (tmp_path / 'img').is_dir()
    # the report regenerates from the data alone
    tr.main(['--report-only', '--data', str(data_file), '--tables', str(tmp_path / 't2.md'),
             '--images', str(tmp_path / 'img2')])
    assert (tmp_path / 't2.md').read_text() == (tmp_path / 't.md').read_text()
