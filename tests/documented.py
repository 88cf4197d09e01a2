"""The commands the tools and experiments document in their docstrings, and how the tests run
each at a tiny size (``test_documented_commands.py`` checks that the table covers them all)."""
from __future__ import annotations

import contextlib
import glob
import io
import os
import os.path as osp
import re
import runpy
import shlex
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
_PREFIXES = ('python -m mmwinwin.experiments.', 'python tools/analysis_tools/',
             'bash tools/analysis_tools/')


def documented_commands() -> dict[str, list[str]]:
    """{file: [command, ...]}: every command line in the module docstrings of
    mmwinwin/experiments/ and tools/analysis_tools/ (and the comments of its shell scripts),
    continuation lines joined, trailing comments dropped."""
    files = sorted(glob.glob(osp.join(REPO, 'mmwinwin', 'experiments', '*.py'))
                   + glob.glob(osp.join(REPO, 'tools', 'analysis_tools', '*.py'))
                   + glob.glob(osp.join(REPO, 'tools', 'analysis_tools', '*.sh')))
    out = {}
    for path in files:
        text = open(path).read()
        if path.endswith('.py'):
            m = re.match(r'\s*(?:"""|\'\'\')(.*?)(?:"""|\'\'\')', text, re.S)
            text = m.group(1) if m else ''
        lines = [re.sub(r'^\s*#?\s*', '', ln) for ln in text.splitlines()]
        cmds, i = [], 0
        while i < len(lines):
            line = lines[i]
            if line.startswith(_PREFIXES):
                while line.rstrip().endswith('\\'):
                    i += 1
                    line = line.rstrip().rstrip("\\").rstrip() + " " + lines[i].strip()
                cmds.append(' '.join(re.sub(r'\s#.*$', '', line).split()))
            i += 1
        if cmds:
            out[osp.relpath(path, REPO)] = cmds
    return out


def command_argv(command: str, replace: dict | None = None, add: list | None = None) -> list:
    """The argument list of a documented command (without ``python -m X`` / ``python X``),
    optional ``[...]`` parts dropped, ``replace``'s words (or ``--flag`` values: ``{'--iters':
    ['2']}``) substituted and ``add`` appended."""
    words = shlex.split(re.sub(r'\[[^\]]*\]', ' ', command))
    words = words[3:] if words[1] == '-m' else words[2:]
    replace = replace or {}
    out, i = [], 0
    while i < len(words):
        w = words[i]
        if w in replace and w.startswith('--'):  # a flag with new values
            out += [w] + [str(v) for v in replace[w]]
            i += 1
            while i < len(words) and not words[i].startswith('--'):
                i += 1
            continue
        out.append(str(replace.get(w, w)))
        i += 1
    return out + [str(a) for a in (add or [])]


def run_in_process(command: str, argv: list, cwd: str | None = None) -> str:
    """Run a documented command in this process (``runpy``, as ``python -m`` or ``python
    path`` would, ``sys.argv`` set), from ``cwd``; returns what it printed. A nonzero
    ``SystemExit`` is raised as an AssertionError carrying the output."""
    target = shlex.split(command)[2] if command.startswith('python -m') else \
        shlex.split(command)[1]
    buf = io.StringIO()
    old_argv, old_cwd = sys.argv, os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stdout(buf):
            if command.startswith('python -m'):
                sys.argv = [target] + [str(a) for a in argv]
                runpy.run_module(target, run_name='__main__', alter_sys=False)
            else:
                path = osp.join(REPO, target)
                sys.argv = [path] + [str(a) for a in argv]
                runpy.run_path(path, run_name='__main__')
    except SystemExit as e:
        if e.code not in (None, 0):
            raise AssertionError(f'{command} {argv} exited {e.code}:\n{buf.getvalue()[-4000:]}')
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
    return buf.getvalue()
