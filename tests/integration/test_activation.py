"""After the stack activates anything, the host is verified again.

A NetworkManager image host (real NetworkManager 1.42) whose main table has a
default route through rail ib0 that no profile holds (added by hand, as an
operator or another tool would). Persisting reapplies ib0's profile, and
NetworkManager then removes that route. The run must not report success over
it: the verification after the activation names the lost route and fails the
host, the rails themselves still carrying their own traffic.
"""

from roleruns import PERSIST_TASK, assert_ok
from roleruns import lab_host  # noqa: F401 pylint: disable=unused-import
from stacks import booted  # noqa: F401 pylint: disable=unused-import
from lab import roce_lab

ROUTE = ('198.18.0.0/15', 'via', '10.0.1.1', 'dev', 'ib0', 'metric', '50')
REVERIFY_TASK = 'Fail when the stack taking the rails broke the host'


def main_routes(host):
    return roce_lab.ip(host.host, '-4', 'route', 'show', 'table', 'main')


def test_routes_the_activation_removes_from_the_main_table_fail_the_run(booted):
    """Before, the run reported success and the route was silently gone."""
    host = booted('networkmanager')
    host.boot()
    roce_lab.ip(host.host, '-4', 'route', 'add', *ROUTE)
    assert '198.18.0.0/15 via 10.0.1.1 dev ib0 metric 50' in main_routes(host)

    run = host.site()
    assert run.tasks.get(PERSIST_TASK) == 'changed', run.output
    # NetworkManager 1.42 took the route away when it reapplied ib0's profile.
    assert '198.18.0.0/15' not in main_routes(host)
    assert run.proc.returncode != 0 and REVERIFY_TASK in run.fatal, run.output
    message = ' '.join(run.fatal[REVERIFY_TASK]['msg'])
    assert '"198.18.0.0/15 via 10.0.1.1 dev ib0 metric 50" is gone' in message and 'main table' in message, message
    host.assert_proven('the activation')

    # Put back where NetworkManager keeps it, in the profile, the next run passes.
    host.run('nmcli', 'connection', 'modify', 'ib0', '+ipv4.routes', '198.18.0.0/15 10.0.1.1 50')
    host.run('nmcli', 'connection', 'modify', 'ib0-alt', '+ipv4.routes', '198.18.0.0/15 10.0.1.1 50')
    host.run('nmcli', 'device', 'reapply', 'ib0')
    assert '198.18.0.0/15 via 10.0.1.1 dev ib0' in main_routes(host)
    assert_ok(host.site())
