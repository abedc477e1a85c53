"""The source_routing role through real ansible-playbook (playbooks/site.yml) on namespace lab hosts.

Each test builds a lab host with tests/lab/roce_lab.py (a textbook host in the
state of a freshly installed machine), writes an inventory into tmp_path that
reaches it with the roce.multirail.netns connection, and runs site.yml. The
host's private /etc (/etc/netns/HOST) receives the keyfiles and the sysctl.d
file, never the machine's /etc. Where the claim is "nothing changed", the full
dump (rules, every table, net.ipv4.conf, and the persisted files with their
stat) is compared before and after. A playbook run costs seconds: the runs are
few, and a test reuses one lab host for several of them.
"""

import os

import pytest

from lab import nm, roce_lab
from roleruns import (  # noqa: F401 pylint: disable=unused-import
    AUDIT_TASK, PERSIST_TASK, PLAN_TASK, PREFLIGHT_TASK, REASON_TASK, RESTORE_TASK, RULE_TASK,
    SYSCTL_FILE, SYSCTL_TASK, TABLE_TASK, VERIFY_TASK,
    assert_ok, assert_proven, assert_same, etc, full_dump, inventory, keyfile, lab_host, persisted_files, rules_at,
    site, table)


# --- tests -----------------------------------------------------------------

def test_converge_persist_prove_then_nothing_to_do(lab_host, tmp_path):
    lab = lab_host(3)
    host_vars = inventory(lab)

    first = site(lab, tmp_path, host_vars)
    assert_ok(first)
    assert first.changed_tasks() == sorted([TABLE_TASK, RULE_TASK, SYSCTL_TASK, PERSIST_TASK])
    assert_proven(lab)

    files = persisted_files(lab)
    for position, rail in enumerate(lab['rails'], start=1):
        mode, uid, gid, _ino, _mtime, content = files[keyfile(rail['device'])]
        assert (mode, uid, gid) == (0o600, 0, 0), rail['device']
        lines = content.splitlines()
        ip, table_id, priority = roce_lab.rail_ip(rail), 100 + position, 1000 + position
        for line in ('interface-name=%s' % rail['device'], 'type=ethernet', 'address1=%s' % rail['address'],
                     'route1=%s,0.0.0.0,100' % rail['subnet'], 'route1_options=src=%s,table=%d' % (ip, table_id),
                     'route2=0.0.0.0/0,%s,100' % rail['gateway'], 'route2_options=table=%d' % table_id,
                     'routing-rule1=priority %d from %s table %d' % (priority, ip, table_id)):
            assert line in lines, '%r not in the keyfile of %s:\n%s' % (line, rail['device'], content)
    assert sorted(path for path in files if path.startswith('NetworkManager/system-connections/')) == sorted(
        keyfile(rail['device']) for rail in lab['rails'])

    mode, uid, _gid, _ino, _mtime, content = files[SYSCTL_FILE]
    assert (mode, uid) == (0o644, 0)
    settings = [line for line in content.splitlines() if line and not line.startswith('#')]
    assert settings == ['net.ipv4.conf.all.accept_local = 1', 'net.ipv4.conf.all.rp_filter = 2'] + [
        'net.ipv4.conf.%s.%s' % (rail['device'], setting) for rail in lab['rails']
        for setting in ('arp_announce = 2', 'arp_ignore = 1', 'rp_filter = 2')]

    converged = full_dump(lab)
    second = site(lab, tmp_path, host_vars)
    assert_ok(second, changed=0)
    assert_same(converged, full_dump(lab), 'on a second run')


# An nmcli stand-in: NetworkManager "runs", and every other call is logged and succeeds (no profile is
# active on any device, so the handler brings each changed rail's connection up).
def test_a_sysctl_file_or_keyfile_edited_by_hand_is_rewritten_and_nothing_else(lab_host, tmp_path):
    """NetworkManager does not run here: the files are all there is to heal (test_stacks.py has the daemons)."""
    lab = lab_host(2)
    host_vars = inventory(lab)
    first = site(lab, tmp_path, host_vars)
    assert_ok(first)
    converged = persisted_files(lab)

    # The sysctl.d file edited by hand (a value and the mode): rewritten, nothing else.
    sysctl_file = etc(lab, SYSCTL_FILE)
    with open(sysctl_file, 'a') as handle:
        handle.write('net.ipv4.conf.ib1.rp_filter = 1\n')
    os.chmod(sysctl_file, 0o600)
    run = site(lab, tmp_path, host_vars)
    assert_ok(run, changed=1)
    assert run.changed_tasks() == [PERSIST_TASK], run.output
    healed = persisted_files(lab)
    assert healed[SYSCTL_FILE][:3] + healed[SYSCTL_FILE][5:] == converged[SYSCTL_FILE][:3] + \
        converged[SYSCTL_FILE][5:]                                      # mode, owner, content
    assert {path: entry for path, entry in healed.items() if path != SYSCTL_FILE} == \
        {path: entry for path, entry in converged.items() if path != SYSCTL_FILE}

    # A keyfile edited by hand: rewritten, the other one untouched.
    path = etc(lab, keyfile('ib1'))
    with open(path) as handle:
        content = handle.read()
    with open(path, 'w') as handle:
        handle.write(content.replace('may-fail=false', 'may-fail=true'))
    run = site(lab, tmp_path, host_vars)
    assert_ok(run, changed=1)
    assert run.changed_tasks() == [PERSIST_TASK], run.output
    after = persisted_files(lab)
    assert after[keyfile('ib1')][-1] == content
    assert after[keyfile('ib0')] == converged[keyfile('ib0')]


def test_where_networkmanager_runs_the_rails_are_activated_and_nothing_is_duplicated(lab_host, tmp_path):
    """A real NetworkManager manages the rails; the modules reach it through its bus (nm.bus_address)."""
    lab = lab_host(2)
    host = lab['host']
    host_vars = inventory(lab)
    env = {'DBUS_SYSTEM_BUS_ADDRESS': nm.bus_address(host)}
    # The lab's main default route through ib0 is held by no profile: activating the role's profile would
    # take it away, which fails the run (tests/integration/test_activation.py). A host's own default route
    # belongs on its management NIC.
    roce_lab.ip(host, '-4', 'route', 'del', 'default')
    nm.start(host, managed=['ib0', 'ib1'])
    try:
        first = site(lab, tmp_path, host_vars, env=env)
        assert_ok(first)
        assert first.changed_tasks() == sorted([TABLE_TASK, RULE_TASK, SYSCTL_TASK, PERSIST_TASK])
        assert sorted(nm.nmcli(host, '-t', '-f', 'NAME,DEVICE', 'connection', 'show', '--active').split()) == [
            'roce-multirail-ib0:ib0', 'roce-multirail-ib1:ib1']
        assert_proven(lab)
        # NetworkManager, activating the keyfiles, made the same kernel objects the modules had made.
        for position, rail in enumerate(lab['rails'], start=1):
            wanted = '%d:\tfrom %s lookup %d proto static' % (1000 + position, roce_lab.rail_ip(rail), 100 + position)
            assert rules_at(lab, 1000 + position) == [wanted], rail['device']
        converged = full_dump(lab)
        second = site(lab, tmp_path, host_vars, env=env)
        assert_ok(second, changed=0)
        assert_same(converged, full_dump(lab), 'on a second run with NetworkManager running')
    finally:
        nm.stop(host)


def _gateway_outside(host_vars, _lab):
    host_vars['source_routing_rails'][1]['gateway'] = '10.0.9.1'


def _duplicate_table(host_vars, _lab):
    host_vars['source_routing_rails'][1]['table'] = 101


def _main_priority(host_vars, _lab):
    host_vars['source_routing_rails'][1]['priority'] = 32766


def _unknown_key(host_vars, _lab):
    host_vars['source_routing_rails'][1]['colour'] = 'blue'


def _missing_device(host_vars, _lab):
    host_vars['source_routing_rails'].append({'device': 'ib9', 'address': '10.0.9.14/24'})


FOREIGN_1001 = '1001:\tfrom 10.0.1.14 lookup 200'


def _foreign_rule(_host_vars, lab):
    roce_lab.ip(lab['host'], 'rule', 'add', 'pref', '1001', 'from', '10.0.1.14', 'lookup', '200')


ARG_SPEC_TASK = "Validating arguments against arg spec 'main' - Source-based routing for a multi-rail RoCE host"
BAD_INVENTORIES = {
    # case: (how to break it, the task that must fail, words its message must hold)
    'gateway_outside_subnet': (_gateway_outside, PLAN_TASK, ['rail ib1: gateway 10.0.9.1 is outside 10.0.2.0/24']),
    'duplicate_table': (_duplicate_table, PLAN_TASK, ['rail ib1', 'table 101', 'rail ib0']),
    'priority_of_main': (_main_priority, PLAN_TASK, ['rail ib1', 'priority 32766']),
    'unknown_rail_key': (_unknown_key, ARG_SPEC_TASK, ['source_routing_rails', 'colour']),
    'device_not_on_host': (_missing_device, PREFLIGHT_TASK, ['rail ib9: the host has no NIC ib9']),
    'foreign_rule_on_a_rail_priority': (_foreign_rule, PREFLIGHT_TASK, ['1001', '10.0.1.14', 'lookup 200']),
}


@pytest.mark.parametrize('case', sorted(BAD_INVENTORIES))
def test_bad_inventory_fails_before_any_change(lab_host, tmp_path, case):
    lab = lab_host(2)
    breaks, failing_task, words = BAD_INVENTORIES[case]
    host_vars = inventory(lab)
    breaks(host_vars, lab)
    before = full_dump(lab)

    run = site(lab, tmp_path, host_vars)
    assert run.proc.returncode != 0 and run.recap['failed'] == 1, run.output
    assert run.recap['changed'] == 0, run.output
    assert list(run.fatal) == [failing_task], run.output
    message = run.fatal[failing_task]['msg']
    for word in words:
        assert word in message, '%r not in %r' % (word, message)
    for later in (RULE_TASK, SYSCTL_TASK, PERSIST_TASK):
        assert later not in run.tasks, run.output
    after = full_dump(lab)
    assert_same(before, after, 'although the play failed (%s)' % case)
    # Nothing at all was applied: no rail rule, no rail table, no rail sysctl, no persisted file.
    assert rules_at(lab, 1001, 1002, 1003) == ([FOREIGN_1001] if breaks is _foreign_rule else [])
    assert [table(lab, number) for number in (101, 102, 103)] == ['', '', '']
    assert roce_lab.read_sysctl(lab['host'], 'net.ipv4.conf.ib1.arp_ignore') == 0
    assert roce_lab.read_sysctl(lab['host'], 'net.ipv4.conf.all.rp_filter') == 1
    assert [path for path, entry in after['files'].items() if entry[-1] is not None] == []


def test_removed_rail_is_purged_foreign_rules_and_tables_survive(lab_host, tmp_path):
    lab = lab_host(3)
    host = lab['host']
    # Foreign state outside what the role owns (priorities 1000-1999, tables of its rails).
    roce_lab.ip(host, 'rule', 'add', 'pref', '500', 'from', '192.168.50.0/24', 'lookup', '300')
    roce_lab.ip(host, 'rule', 'add', 'pref', '2500', 'to', '192.168.52.0/24', 'lookup', '300')
    roce_lab.ip(host, 'route', 'add', '192.168.51.0/24', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '300')
    foreign = (rules_at(lab, 500, 2500), table(lab, 300))
    assert len(foreign[0]) == 2 and foreign[1], foreign

    three = site(lab, tmp_path, inventory(lab))
    assert_ok(three)
    assert (rules_at(lab, 500, 2500), table(lab, 300)) == foreign
    assert len(rules_at(lab, 1003)) == 1 and table(lab, 103), 'rail ib2 was not installed:\n%s' % three.output
    kept = {'rules': rules_at(lab, 1001, 1002), 'table 101': table(lab, 101), 'table 102': table(lab, 102)}
    files = persisted_files(lab)
    kept_files = {path: files[path] for path in (keyfile('ib0'), keyfile('ib1'))}
    assert keyfile('ib2') in files

    host_vars = inventory(lab)
    del host_vars['source_routing_rails'][2]
    two = site(lab, tmp_path, host_vars)
    assert_ok(two)
    assert rules_at(lab, 1003) == [], two.output
    assert table(lab, 103) == '', two.output
    files = persisted_files(lab)
    assert keyfile('ib2') not in files, two.output
    assert 'ib2' not in files[SYSCTL_FILE][-1], files[SYSCTL_FILE][-1]
    assert {'rules': rules_at(lab, 1001, 1002), 'table 101': table(lab, 101), 'table 102': table(lab, 102)} == kept
    assert {path: files[path] for path in kept_files} == kept_files
    assert (rules_at(lab, 500, 2500), table(lab, 300)) == foreign


def test_check_diff_on_drifted_host_changes_nothing_then_a_run_heals(lab_host, tmp_path):
    lab = lab_host(2)
    host, host_vars = lab['host'], inventory(lab)
    assert_ok(site(lab, tmp_path, host_vars))
    converged = full_dump(lab)

    roce_lab.ip(host, 'rule', 'del', 'pref', '1002')
    roce_lab.write_sysctls(host, {'net.ipv4.conf.all.rp_filter': 1})
    drifted = full_dump(lab)
    assert drifted != converged

    check = site(lab, tmp_path, host_vars, '--check', '--diff')
    assert_ok(check)
    assert check.changed_tasks() == sorted([RULE_TASK, SYSCTL_TASK]), check.output
    lines = check.output.splitlines()
    for expected in ('+1002:\tfrom 10.0.2.14 lookup 102 proto static',
                     '-net.ipv4.conf.all.rp_filter = 1',
                     '+net.ipv4.conf.all.rp_filter = 2'):
        assert expected in lines, '%r not in the diff:\n%s' % (expected, check.output)
    assert_same(drifted, full_dump(lab), 'in check mode')

    heal = site(lab, tmp_path, host_vars)
    assert_ok(heal)
    assert heal.changed_tasks() == sorted([RULE_TASK, SYSCTL_TASK]), heal.output
    assert_same(converged, full_dump(lab), 'after healing (compared with the converged host)')
    assert_proven(lab)


def test_persist_none_writes_no_files(lab_host, tmp_path):
    lab = lab_host(2)
    before = persisted_files(lab)
    assert [path for path, entry in before.items() if entry[-1] is not None] == []

    run = site(lab, tmp_path, inventory(lab, source_routing_persist='none'))
    assert_ok(run)
    assert run.tasks.get(PERSIST_TASK) == 'skipping', run.output
    # Applied live all the same.
    assert rules_at(lab, 1001, 1002) == ['1001:\tfrom 10.0.1.14 lookup 101 proto static',
                                         '1002:\tfrom 10.0.2.14 lookup 102 proto static']
    assert persisted_files(lab) == before


def test_a_rail_without_carrier_is_rolled_back_and_fails_the_host(lab_host, tmp_path):
    """The audit after applying finds ib1 without carrier: everything is put back, nothing persisted."""
    lab = lab_host(2)
    rail = lab['rails'][1]
    roce_lab.ip(rail['leaf'], 'link', 'set', 'to-' + rail['device'], 'down')
    before = full_dump(lab)
    run = site(lab, tmp_path, inventory(lab))
    assert run.proc.returncode != 0 and run.recap['failed'] == 1 and run.recap['rescued'] == 1, run.output
    assert run.tasks[VERIFY_TASK] == 'fatal', run.output
    assert run.tasks[RESTORE_TASK] == 'changed', run.output
    message = ' '.join(run.fatal[REASON_TASK]['msg'])
    assert 'ib1 has no carrier' in message and 'put back as it was before the run' in message, message
    assert PERSIST_TASK not in run.tasks, run.output
    assert_same(before, full_dump(lab), 'after a rolled back run')

    # Without the rollback the run's changes stay (and are not persisted).
    run = site(lab, tmp_path, inventory(lab, source_routing_rollback=False))
    assert run.proc.returncode != 0 and run.tasks[RESTORE_TASK] == 'skipping', run.output
    assert 'left as the run made it' in ' '.join(run.fatal[REASON_TASK]['msg']), run.output
    assert rules_at(lab, 1001, 1002), run.output
    assert persisted_files(lab) == before['files'], run.output

    run = site(lab, tmp_path, inventory(lab, source_routing_audit=False))
    assert_ok(run)
    assert run.tasks[AUDIT_TASK] == 'skipping', run.output


def test_a_plan_capturing_the_management_address_is_refused_unless_allowed(lab_host, tmp_path):
    """ansible_host is ib0's address: its rule would capture Ansible's own traffic."""
    lab = lab_host(2)
    host_vars = inventory(lab, ansible_host='10.0.1.14', ansible_netns_name=lab['host'])
    before = full_dump(lab)
    run = site(lab, tmp_path, host_vars)
    assert run.proc.returncode != 0 and list(run.fatal) == [PREFLIGHT_TASK], run.output
    message = run.fatal[PREFLIGHT_TASK]['msg']
    assert message.startswith('nothing was changed: rule "1001:\tfrom 10.0.1.14 lookup 101 proto static" (rail ib0) '
                              'would capture 10.0.1.14, the address the host is managed on (10.0.1.14)'), message
    assert_same(before, full_dump(lab), 'although the plan was refused')

    # One more management address, inside a VF prefix of ib1.
    host_vars = inventory(lab, source_routing_management_addresses=['10.0.2.36'])
    host_vars['source_routing_rails'][1]['sources'] = ['10.0.2.32/29']
    run = site(lab, tmp_path, host_vars)
    assert list(run.fatal) == [PREFLIGHT_TASK], run.output
    assert 'would capture 10.0.2.36' in run.fatal[PREFLIGHT_TASK]['msg'], run.output
    assert_same(before, full_dump(lab), 'although the plan was refused')

    run = site(lab, tmp_path, dict(host_vars, source_routing_allow_management_capture=True))
    assert_ok(run)
    assert 'allowed by allow_management_capture: rule "1002:\tfrom 10.0.2.32/29' in run.output, run.output
    assert rules_at(lab, 1001, 1002)
