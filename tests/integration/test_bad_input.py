"""Every malformed inventory fails in validation, with a message naming the field, before anything changes.

ONE ansible-playbook run of playbooks/site.yml with every case of bad_inventories.py
as its own inventory host (bad_001_<case>, ...), all of them reaching the SAME lab
host through the roce.multirail.netns connection. Per host: it failed, in the task
its case names (the role's argument_specs validation or the planner), with a message
holding the object, the field and the value; no other task reported for it, so nothing
after validation ran. The lab host's full dump (every rule, every table, net.ipv4.conf,
the persisted files with their stat) is the same before and after the run.

Then the modules themselves, one playbook in check mode on another lab host: bad
arguments fail through fail_json with a message naming the field, never with an
exception the module did not handle.
"""

import json
import os
import subprocess

import pytest

from bad_inventories import ARGUMENT_SPECS, CASES, PLANNER
from lab import roce_lab
import roleruns
from roleruns import PLAN_TASK, assert_same, full_dump, lab_host, site_hosts  # noqa: F401 pylint: disable=unused-import

ARG_SPEC_TASK = "Validating arguments against arg spec 'main' - Source-based routing for a multi-rail RoCE host"
# What reports for a host refused by each layer: the validation task, and the planner after it. No other
# task: nothing after validation runs (the guard, the apply, the persist, the audit).
REPORTED = {ARGUMENT_SPECS: {ARG_SPEC_TASK: 'fatal'}, PLANNER: {ARG_SPEC_TASK: 'ok', PLAN_TASK: 'fatal'}}


def host_name(number, case):
    return 'bad_%03d_%s' % (number, case.name)


def test_every_bad_inventory_fails_in_validation_and_changes_nothing(lab_host, tmp_path, monkeypatch):
    # Lab hosts named for this file, so that a leftover says where it came from.
    monkeypatch.setattr(roleruns, 'PREFIX', 'bi%d' % (os.getpid() % 100000))
    lab = lab_host(2)
    hosts = dict((host_name(number, case), case.role_vars) for number, case in enumerate(CASES, start=1))
    before = full_dump(lab)

    runs = site_hosts(lab, tmp_path, hosts)

    problems = []
    for number, case in enumerate(CASES, start=1):
        name = host_name(number, case)
        run = runs[name]
        if (run.recap['failed'], run.recap['changed']) != (1, 0):
            problems.append('%s: recap %s' % (name, run.recap))
        if run.tasks != REPORTED[case.caught_by]:
            problems.append('%s: tasks %s, want %s' % (name, run.tasks, REPORTED[case.caught_by]))
            continue
        message = run.fatal[list(run.fatal)[0]]['msg']
        missing = [word for word in case.words if word not in message]
        if missing:
            problems.append('%s: %r not in the message %r' % (name, missing, message[:2000]))
    assert runs and next(iter(runs.values())).proc.returncode != 0
    assert not problems, '%d of %d hosts:\n%s' % (len(problems), len(CASES), '\n'.join(problems))
    assert_same(before, full_dump(lab), 'although every host failed in validation')


# --- the modules themselves: bad arguments fail with fail_json, never with a traceback -------------

# Ansible reports an exception a module did not handle as "Module failed: <the exception's text>";
# a module refusing its arguments through fail_json reports its own message.
UNHANDLED = 'Module failed:'
RAILS_KEYFILE = {'device': 'ib0', 'address': '10.0.1.14/24', 'table': 101, 'rules': [],
                 'routes': [{'dst': '10.0.1.0/24', 'src': '10.0.1.14', 'metric': 100}]}


MODULE_CASES = [
    # (id, module, arguments, words the message must hold)
    pytest.param('rail_table', {'tables': [{'table': 0}]}, ['tables[0]: table 0 is reserved'],
                 id='rail_table-reserved-table'),
    pytest.param('rail_table', {'tables': [{'table': 101, 'routes': [{'dst': '10.0.1.0/24', 'dev': 'ib0;reboot'}]}]},
                 ["dev 'ib0;reboot' is not a valid interface name"], id='rail_table-device-with-metacharacters'),
    pytest.param('rail_table', {'tables': [{'table': 101, 'routes': [{'dst': 'fd00::/64', 'dev': 'ib0'}]}]},
                 ['table 101 route 0: dst fd00::/64 is IPv6'], id='rail_table-ipv6-destination'),
    pytest.param('rail_rule', {'rules': [{'priority': 32766, 'table': 101}]},
                 ['rules[0]: priority 32766 is reserved'], id='rail_rule-main-priority'),
    pytest.param('rail_rule', {'rules': [{'priority': 1001, 'table': 101, 'from': 'fd00::1', 'family': 'ipv4'}]},
                 ['rules[0] (priority 1001): from fd00::1/128 is IPv6 but the rule is IPv4'], id='rail_rule-ipv6-source'),
    pytest.param('rail_rule', {'rules': [{'priority': 1001, 'table': 101, 'from': '10.0.1.14', 'family': 'ipv6'}]},
                 ['rules[0] (priority 1001): from 10.0.1.14/32 is IPv4 but the rule is IPv6'], id='rail_rule-ipv4-source'),
    pytest.param('rail_rule', {'rules': [{'priority': 1001, 'table': 101}], 'purge': True,
                               'priority_range': {'start': 1000, 'end': 40000}},
                 ['priority_range: 1000-40000 contains 32766'], id='rail_rule-range-over-main'),
    pytest.param('rail_sysctl', {'conf': {'ib0': {'rp_filter': 7}}}, ['conf.ib0: rp_filter 7 is not one of 0, 1, 2'],
                 id='rail_sysctl-meaningless-value'),
    pytest.param('rail_sysctl', {'conf': {'ib0': {'forwarding': 2 ** 40}}},
                 ['conf.ib0: forwarding 1099511627776 is out of range'], id='rail_sysctl-value-beyond-int'),
    pytest.param('rail_sysctl', {'conf': {'ib0;x': {'rp_filter': 2}}}, ["interface 'ib0;x' is not a valid"],
                 id='rail_sysctl-device-with-metacharacters'),
    pytest.param('rail_guard', {'plan': {'rails': [], 'rules': [], 'tables': [], 'conf': {'all': {'rp_filter': 2}},
                                         'priority_range': {'start': 1000, 'end': 1999}}, 'management': ['ib0']},
                 ["management: 'ib0' is not an IP address"], id='rail_guard-management-not-an-address'),
    pytest.param('rail_guard', {'plan': {'rails': 'ib0', 'rules': [], 'tables': [], 'conf': {},
                                         'priority_range': {'start': 1000, 'end': 1999}}},
                 ['plan: rails must be a list'], id='rail_guard-plan-rails-not-a-list'),
    pytest.param('rail_keyfiles', {'rails': [dict(RAILS_KEYFILE, device='ib0\n[ipv4]')], 'directory': '/tmp'},
                 ["rails[0]: device 'ib0\\n[ipv4]' is not a valid interface name"], id='rail_keyfiles-device-with-newline'),
    pytest.param('rail_keyfiles', {'rails': [dict(RAILS_KEYFILE, routes=[None])], 'directory': '/tmp'},
                 ['rail ib0: routes[0]: expected a mapping, got None'], id='rail_keyfiles-route-not-a-mapping'),
    pytest.param('rail_keyfiles', {'rails': [dict(RAILS_KEYFILE, table='one')], 'directory': '/tmp'},
                 ["rail ib0: table 'one' is not an integer"], id='rail_keyfiles-table-not-an-integer'),
    pytest.param('rail_audit', {'plan': {'rails': ['ib0']}, 'martian_interval': 0},
                 ["plan: rails[0] must be a mapping with a device, got 'ib0'"], id='rail_audit-plan-rail-not-a-mapping'),
    pytest.param('rail_audit', {'plan': {'rails': [{}]}, 'martian_interval': 0},
                 ['plan: rails[0] must be a mapping with a device, got {}'], id='rail_audit-plan-rail-without-device'),
    pytest.param('rail_audit', {'target': 'not-an-ip', 'martian_interval': 0},
                 ["target: 'not-an-ip' is not an IPv4 address"], id='rail_audit-target-not-an-address'),
    pytest.param('rail_audit', {'plan': {'rails': [], 'sysctl_lines': [5]}, 'persisted_sysctl_file': '/tmp/x',
                                'martian_interval': 0}, ['plan: sysctl_lines must be a list of "key = value" lines'],
                 id='rail_audit-sysctl-lines-not-text'),
]


@pytest.fixture(scope='module')
def module_runs(tmp_path_factory):
    """One playbook, one task per MODULE_CASES entry (check mode, errors ignored) on one lab host."""
    name = 'bi%dm' % (os.getpid() % 100000)
    roce_lab.destroy_host(name)
    lab = roce_lab.create_host(name, 'textbook', 2, owner_pid=os.getpid())
    try:
        tmp_path = tmp_path_factory.mktemp('modules')
        tasks = [{'name': case.id, 'roce.multirail.' + case.values[0]: case.values[1], 'check_mode': True,
                  'ignore_errors': True} for case in MODULE_CASES]
        playbook = tmp_path / 'modules.yml'
        playbook.write_text(json.dumps([{'name': 'bad module arguments', 'hosts': 'lab', 'gather_facts': False,
                                         'tasks': tasks}]))
        inventory = tmp_path / 'inventory.json'
        inventory.write_text(json.dumps({'all': {'hosts': {'lab': {
            'ansible_connection': 'roce.multirail.netns', 'ansible_netns_name': name,
            'ansible_python_interpreter': os.path.join(roleruns.BIN, 'python')}}}}))
        before = full_dump(lab)
        proc = subprocess.run([os.path.join(roleruns.BIN, 'ansible-playbook'), '-i', str(inventory), str(playbook)],
                              capture_output=True, text=True, env=roleruns.ansible_env(tmp_path), cwd=str(tmp_path),
                              timeout=600, check=False)
        yield roleruns.Run('lab', proc), before, full_dump(lab)
    finally:
        roce_lab.destroy_host(name)


def test_bad_module_arguments_change_nothing(module_runs):
    run, before, after = module_runs
    assert run.recap['ignored'] == len(MODULE_CASES), run.output
    assert_same(before, after, 'although every module call failed')


@pytest.mark.parametrize('module, arguments, words', MODULE_CASES)
def test_bad_module_arguments_fail_with_a_message(module_runs, request, module, arguments, words):
    run = module_runs[0]
    task = request.node.callspec.id
    assert run.tasks.get(task) == 'fatal', '%s %s: %s\n%s' % (module, arguments, run.tasks.get(task), run.output)
    message = run.fatal[task]['msg']
    assert UNHANDLED not in message, 'an exception escaped %s: %r' % (module, message)
    for word in words:
        assert word in message, '%r not in %r' % (word, message)
