"""One small round of `make bench`: the three tools on one lab host with NetworkManager running.

It runs bench/run.py's own compare() (site.yml, the community.general.nmcli playbook and the ip recipe
from the bench virtualenv, `make bench-venv`) on a 2-rail host per tool, so a change that breaks a
tool's playbook, the module count or the proof breaks here and not only in a benchmark run. The
lab hosts and their NetworkManagers are removed even when it fails. No figure is checked: timing
belongs to the benchmark.
"""

import os
import sys

from collection_path import REPO

sys.path.insert(0, os.path.join(REPO, 'bench'))

import run  # noqa: E402  pylint: disable=wrong-import-position
from lab import nm, roce_lab  # noqa: E402  pylint: disable=wrong-import-position


def test_one_round_of_each_tool_converges_proves_and_counts_its_modules(tmp_path):
    assert os.path.exists(os.path.join(run.VENV, 'bin', 'ansible-playbook')), 'run `make bench-venv` first'
    runner = run.Runner(str(tmp_path))
    try:
        summary = run.compare(runner, 'it', 1, 2, 1, run.FORKS)
    finally:
        left = [name for name in roce_lab.list_hosts() if name.startswith(run.PREFIX)]
        for name in left:
            nm.stop(name)
            roce_lab.destroy_host(name)
    assert not left, 'the bench left lab hosts behind: %s' % left
    for tool in run.TOOLS:
        assert summary[tool]['proof'] == '2/2', (tool, summary[tool])
    assert summary['ours']['noop_changed'] == summary['nmcli']['noop_changed'] == [0]
    # ours: guard (which also decides the stack), table, rule, sysctl, audit, persist, whatever R; on a
    # fresh host the stack took the rails, so the audit runs once more.
    assert (summary['ours']['module_calls_fresh'], summary['ours']['module_calls_noop']) == ([7], [6])
    # nmcli: a connection per rail and a sysctl per key: 2 rails x 3 keys + 2 `all` keys.
    assert (summary['nmcli']['module_calls_fresh'], summary['nmcli']['module_calls_noop']) == ([10], [10])
    assert summary['recipe']['module_calls_noop'] == [1] and summary['recipe']['rules_added_by_noop'] == [0]
    assert set(summary) == set(run.TOOLS) | {'ratio_vs_nmcli', 'ratio_vs_recipe'}
