# -*- coding: utf-8 -*-
"""playbooks/audit.yml through real ansible-playbook on namespace lab hosts and the real rail_audit.

Two textbook lab hosts in the state of a freshly installed machine; playbooks/site.yml fixes the
first one; the audit then finds the first one healthy and the second one broken (no rules, ARP flux,
strict rp_filter), prints a table per host and the fleet summary, writes the JSON and HTML reports,
and exits non-zero naming the broken host. A host whose namespace is gone is reported as not audited.
"""

import json
import os
import re
import subprocess

from collection_path import REPO
from lab import roce_lab
# lab_host is a fixture: imported so that pytest finds it here, used as an argument only.
from roleruns import ansible_env, assert_ok, inventory, lab_host, site  # noqa: F401 pylint: disable=unused-import

AUDIT = os.path.join(REPO, 'playbooks', 'audit.yml')
TICK, CROSS = '\u2713', '\u2717'


def audit(tmp_path, hosts, *options):
    """Run playbooks/audit.yml against {name: host vars}; return (process, output)."""
    data = {'all': {'children': {'roce_hosts': {'hosts': {
        name: dict(host_vars, ansible_connection='roce.multirail.netns',
                   ansible_python_interpreter=os.path.join(REPO, '.venv', 'bin', 'python'))
        for name, host_vars in hosts.items()}}}}}
    path = tmp_path / 'audit-inventory.json'
    path.write_text(json.dumps(data, indent=2))
    proc = subprocess.run([os.path.join(REPO, '.venv', 'bin', 'ansible-playbook'), '-i', str(path), AUDIT]
                          + list(options), capture_output=True, text=True, env=ansible_env(tmp_path),
                          cwd=str(tmp_path), timeout=300, check=False)
    return proc, proc.stdout + proc.stderr


def debug_lines(output, task, host):
    """The msg lines a debug task printed for a host (the default callback prints them as JSON)."""
    section = output.split('TASK [%s] ' % task, 1)[1]
    match = re.search(r'^ok: \[%s\] => (\{.*?^\})$' % re.escape(host), section, re.M | re.S)
    assert match, 'no output of %r for %s:\n%s' % (task, host, output)
    return json.loads(match.group(1))['msg']


def grid(lines):
    """{device: cells} of an audit_table."""
    assert lines[1].split()[0] == 'rail', lines
    found = {}
    for line in lines[2:]:
        if not line.startswith('ib'):
            break
        device, *cells = line.split()
        found[device] = cells
    return found


def test_audit_finds_the_fixed_host_healthy_and_fails_on_the_broken_one(lab_host, tmp_path):
    fixed, broken = lab_host(2), lab_host(2)
    (tmp_path / 'site').mkdir()
    assert_ok(site(fixed, tmp_path / 'site', inventory(fixed)))
    json_file, html_file = tmp_path / 'audit.json', tmp_path / 'audit.html'

    proc, output = audit(tmp_path, {fixed['host']: inventory(fixed), broken['host']: inventory(broken)},
                         '-e', 'audit_json_file=%s' % json_file, '-e', 'audit_html_file=%s' % html_file)

    assert proc.returncode == 2, output
    healthy = debug_lines(output, 'Show the audit of the host', fixed['host'])
    assert healthy[0] == 'rail audit: ok (0 errors, 0 warnings, 0 infos)', healthy
    assert grid(healthy) == {'ib0': [TICK] * 14, 'ib1': [TICK] * 14}
    sick = debug_lines(output, 'Show the audit of the host', broken['host'])
    assert sick[0].startswith('rail audit: error ('), sick
    cells = grid(sick)
    rule = sick[1].split().index('rule') - 1
    assert [cells['ib0'][rule], cells['ib1'][rule]] == [CROSS, CROSS], sick
    for device, address in (('ib0', '10.0.1.14'), ('ib1', '10.0.2.14')):
        line = next(line for line in sick if line.startswith('%s %s rule: ' % (CROSS, device)))
        assert address in line, sick
    assert any(line.startswith('    fix: ') for line in sick)

    summary = debug_lines(output, 'Show the fleet summary', 'localhost')
    assert summary[:2] == ['rail audit of 2 hosts: 1 ok, 0 with warnings, 1 broken, 0 not audited',
                           '  broken:      %s' % broken['host']], summary
    assert re.search(r'^  %s rule +1  %s$' % (CROSS, broken['host']), '\n'.join(summary), re.M), summary
    assert 'rail audit failed: broken: %s"' % broken['host'] in output, output

    report = json.loads(json_file.read_text())
    assert (report['fleet']['ok'], report['fleet']['broken']) == ([fixed['host']], [broken['host']])
    hosts = {entry['host']: entry for entry in report['hosts']}
    assert hosts[fixed['host']]['findings'] == [] and hosts[fixed['host']]['summary']['errors'] == 0
    assert {(f['check'], f['device']) for f in hosts[broken['host']]['findings'] if f['severity'] == 'error'} >= {
        ('rule', 'ib0'), ('rule', 'ib1')}
    assert [rail['device'] for rail in hosts[broken['host']]['rails']] == ['ib0', 'ib1']
    assert re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$', report['generated'])
    html = html_file.read_text()
    assert html.startswith('<!DOCTYPE html>') and fixed['host'] in html and broken['host'] in html


def test_a_healthy_fleet_passes_and_a_host_that_cannot_be_audited_fails_it(lab_host, tmp_path):
    fixed = lab_host(2)
    (tmp_path / 'site').mkdir()
    assert_ok(site(fixed, tmp_path / 'site', inventory(fixed)))

    proc, output = audit(tmp_path, {fixed['host']: inventory(fixed)})
    assert proc.returncode == 0, output
    assert debug_lines(output, 'Show the fleet summary', 'localhost') == [
        'rail audit of 1 host: 1 ok, 0 with warnings, 0 broken, 0 not audited']

    gone = fixed['host'] + 'x'
    assert gone not in roce_lab.netns_list()
    proc, output = audit(tmp_path, {fixed['host']: inventory(fixed), gone: {}})
    assert proc.returncode == 2, output
    assert debug_lines(output, 'Show the audit of the host', gone)[0].startswith(
        'rail audit did not run: unreachable: '), output
    summary = debug_lines(output, 'Show the fleet summary', 'localhost')
    assert summary[0] == 'rail audit of 2 hosts: 1 ok, 0 with warnings, 0 broken, 1 not audited', summary
    assert summary[1].startswith('  not audited: %s (unreachable: ' % gone), summary
    assert 'rail audit failed: not audited: %s"' % gone in output, output
