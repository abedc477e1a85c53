"""A rollback puts back everything it can, and names exactly what it could not.

Foreign routes of the kinds a restore used to lose, in a table a rail uses (so
a run empties it): a multipath route one of whose nexthops is link-down (the
kernel reports that nexthop with RTNH_F_LINKDOWN, a flag it refuses in a
request), and two routes sharing table, destination and metric made with
`ip route append`. A run that fails at verify must leave the host exactly as
before, those routes included; a restore called directly must do the same,
and when one object cannot be re-created (its NIC was deleted meanwhile) it
must fail naming exactly that object and what it is now, with everything else
restored.
"""

import sys

from collection_path import COLLECTIONS
from lab import roce_lab
from roleruns import REASON_TASK, assert_same, full_dump, inventory, site
from roleruns import lab_host  # noqa: F401 pylint: disable=unused-import

sys.path.insert(0, COLLECTIONS)
from ansible_collections.roce.multirail.plugins.module_utils.plan import build_plan  # noqa: E402 pylint: disable=wrong-import-position

MULTIPATH = ('10.60.0.0/16', 'table', '101', 'nexthop', 'via', '10.0.1.1', 'dev', 'ib0', 'weight', '2',
             'nexthop', 'via', '10.9.0.1', 'dev', 'fx0')
APPENDED = (('10.70.0.0/16', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '101', 'metric', '7'),
            ('10.70.0.0/16', 'via', '10.0.1.2', 'dev', 'ib0', 'table', '101', 'metric', '7'),
            ('10.70.0.0/16', 'dev', 'ib0', 'table', '101', 'metric', '7', 'proto', 'boot'))


def put_foreign_routes(ip, add_nic):
    """The link-down multipath route and three appended routes, all in table 101.

    fx0 is up without carrier (its veth peer is down): the kernel marks the
    nexthop through it `linkdown`.
    """
    add_nic()
    ip('route', 'add', *MULTIPATH)
    ip('route', 'add', *APPENDED[0])
    for route in APPENDED[1:]:
        ip('route', 'append', *route)
    shown = ip('-4', 'route', 'show', 'table', '101')
    assert 'dev fx0 weight 1 linkdown' in shown and shown.count('10.70.0.0/16') == 3, shown


def lab_fx0(host):
    def add():
        roce_lab.ip(host, 'link', 'add', 'fx0', 'type', 'veth', 'peer', 'name', 'fx0p')
        roce_lab.ip(host, 'addr', 'add', '10.9.0.14/24', 'dev', 'fx0')
        roce_lab.ip(host, 'link', 'set', 'fx0', 'up')
    return add


def test_a_run_failing_at_verify_puts_back_linkdown_multipath_and_appended_routes(lab_host, tmp_path):
    """The run empties table 101 and changes sysctls, then fails at verify: everything comes back."""
    lab = lab_host(2)
    host = lab['host']
    put_foreign_routes(lambda *argv: roce_lab.ip(host, *argv), lab_fx0(host))
    roce_lab.write_sysctls(host, {'net.ipv4.conf.all.arp_ignore': 8})     # the audit fails the run after the apply
    before = full_dump(lab)
    run = site(lab, tmp_path, inventory(lab))
    assert run.proc.returncode != 0 and run.recap['rescued'] == 1, run.output
    assert REASON_TASK in run.fatal, 'the restore itself failed: %s' % run.fatal
    message = ' '.join(run.fatal[REASON_TASK]['msg'])
    assert message.startswith('the host was put back as it was before the run'), message
    assert_same(before, full_dump(lab), 'although the run was rolled back')


# --- rail_guard restore, called directly -----------------------------------------------

def two_rails(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.add_nic('ib1', '10.0.2.14/24')
    return build_plan([{'device': 'ib0', 'address': '10.0.1.14/24'}, {'device': 'ib1', 'address': '10.0.2.14/24'}])


def ns_fx0(ns):
    def add():
        ns.add_nic('fx0', '10.9.0.14/24')
        ns.ip('link', 'set', 'fx0p', 'down')
    return add


def apply(ns, plan):
    ns.module('rail_table', {'tables': plan['tables'], 'purge': True})
    ns.module('rail_rule', {'rules': plan['rules'], 'purge': True, 'priority_range': plan['priority_range']})
    ns.module('rail_sysctl', {'conf': plan['conf']})


def test_restore_brings_back_linkdown_multipath_and_appended_routes_in_order(ns):
    plan = two_rails(ns)
    put_foreign_routes(ns.ip, ns_fx0(ns))
    before = ns.dump()
    snapshot = ns.module('rail_guard', {'plan': plan})['snapshot']
    apply(ns, plan)
    applied = ns.dump()
    assert '10.60.0.0/16' not in applied and '10.70.0.0/16' not in applied
    checked = ns.module('rail_guard', {'restore': snapshot}, check_mode=True)
    assert ns.dump() == applied
    result = ns.module('rail_guard', {'restore': snapshot})
    assert result['changed'] is True and result['restored'] == checked['restored']
    assert len(result['restored']['routes_added']) == 4 and result['restored']['not_restored'] == []
    assert ns.dump() == before
    assert ns.module('rail_guard', {'restore': snapshot})['changed'] is False


def test_restore_reorders_appended_routes_that_drifted(ns):
    """Same-key routes are told apart by gateway and device, and their order is the kernel's order."""
    plan = two_rails(ns)
    put_foreign_routes(ns.ip, ns_fx0(ns))
    before = ns.dump()
    snapshot = ns.module('rail_guard', {'plan': plan})['snapshot']
    ns.ip('route', 'del', *APPENDED[0])
    ns.ip('route', 'append', *APPENDED[0])          # now last of the three
    ns.ip('route', 'del', *APPENDED[1])
    ns.ip('route', 'append', '10.70.0.0/16', 'via', '10.0.1.9', 'dev', 'ib0', 'table', '101', 'metric', '7')
    assert ns.dump() != before
    ns.module('rail_guard', {'restore': snapshot})
    assert ns.dump() == before


def test_restore_names_exactly_what_it_could_not_restore(ns):
    """ib1 is deleted after the snapshot: its route and sysctls cannot come back, everything else does."""
    plan = two_rails(ns)
    put_foreign_routes(ns.ip, ns_fx0(ns))
    ns.ip('route', 'add', '10.80.0.0/16', 'via', '10.0.2.1', 'dev', 'ib1', 'table', '101', 'proto', 'boot')
    ns.ip('rule', 'add', 'pref', '1500', 'from', '10.0.3.0/24', 'lookup', '101', 'proto', 'static')
    ns.sysctl('net.ipv4.conf.ib0.arp_announce=1')
    values = dict((key, ns.read_sysctl('net.ipv4.conf.ib1.' + key)) for key in ('arp_announce', 'arp_ignore', 'rp_filter'))
    before = ns.dump()
    snapshot = ns.module('rail_guard', {'plan': plan})['snapshot']
    apply(ns, plan)
    ns.ip('link', 'del', 'ib1')
    result = ns.module('rail_guard', {'restore': snapshot}, expect_failure=True)
    missing = ['route "10.80.0.0/16 via 10.0.2.1 dev ib1" (table 101): not restored (dev ib1 is gone); '
               'now absent'] + [
        'sysctl net.ipv4.conf.ib1.%s: not restored to %d (ib1 is gone); now absent' % (key, values[key])
        for key in sorted(values)]
    assert result['msg'] == ('restore: the host was put back as in the snapshot except for 4 object(s): '
                             + '; '.join(missing)), result['msg']
    assert result['restored']['not_restored'] == missing
    assert result['changed'] is True
    gone = [line for line in before.splitlines() if 'ib1' not in line]
    assert ns.dump().splitlines() == gone


def test_restore_follows_a_nic_re_created_under_its_name(ns):
    """fx0 is deleted and made again (another ifindex): its routes go back through the new fx0."""
    plan = two_rails(ns)
    put_foreign_routes(ns.ip, ns_fx0(ns))
    ns.ip('route', 'add', '10.81.0.0/16', 'via', '10.9.0.1', 'dev', 'fx0', 'table', '101', 'onlink')
    before = ns.dump()
    snapshot = ns.module('rail_guard', {'plan': plan})['snapshot']
    apply(ns, plan)
    ns.ip('link', 'del', 'fx0')
    ns_fx0(ns)()
    result = ns.module('rail_guard', {'restore': snapshot})
    assert result['restored']['not_restored'] == []
    assert ns.dump() == before
