"""Sysctl writes with side effects, and the host's own addresses outside the rails.

all.forwarding rewrites forwarding on every interface and on default and flips
all.accept_redirects; a write to default.<key> is copied into every interface
whose own key was never written. A diff or a rollback of the one key would
miss the rest, so the planner, rail_sysctl's validation and rail_persist's
sysctl_lines check refuse them, naming the key, what else it changes and where
to set it instead. tests/integration/test_sysctl_side_effects.py checks the
table against the running kernel.

The management path is every address the host owns outside its rails: a rail
rule that captures an address of a non-rail NIC (or lo's prefix) is refused.
"""

import pytest

from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument
from ansible_collections.roce.multirail.plugins.module_utils.guard import host_addresses, management_findings
from ansible_collections.roce.multirail.plugins.module_utils.plan import PlanError, build_plan
from ansible_collections.roce.multirail.plugins.module_utils.routes import Link
from ansible_collections.roce.multirail.plugins.module_utils.rules import desired_rules
from ansible_collections.roce.multirail.plugins.module_utils.sysctl import (
    ALLOWED,
    check_sysctl_lines,
    desired_settings,
    side_effects,
)

RAILS = [{'device': 'ib0', 'address': '10.0.1.14/24'}, {'device': 'ib1', 'address': '10.0.2.14/24'}]


# --- which writes have side effects -------------------------------------------

def test_all_forwarding_names_everything_it_also_changes():
    text = side_effects('all', 'forwarding')
    for words in ('every interface', 'default', 'all.accept_redirects', 'net.ipv4.conf.<nic>.forwarding'):
        assert words in text


@pytest.mark.parametrize('key', sorted(ALLOWED) + ['accept_redirects', 'log_martians', 'proxy_arp'])
def test_default_keys_are_copied_into_interfaces(key):
    text = side_effects('default', key)
    assert 'copies it into every interface whose own %s was never written' % key in text
    assert 'net.ipv4.conf.<nic>.%s' % key in text


@pytest.mark.parametrize('target, key', [
    ('default', 'forwarding'), ('default', 'disable_policy'), ('default', 'route_localnet'),
    ('all', 'rp_filter'), ('all', 'accept_local'), ('all', 'accept_redirects'),
    ('ib0', 'forwarding'), ('ib0', 'rp_filter'), ('eth0.100', 'arp_ignore'),
])
def test_writes_without_side_effects(target, key):
    assert side_effects(target, key) == ''


# --- the planner ----------------------------------------------------------------

def test_plan_refuses_all_forwarding():
    with pytest.raises(PlanError) as caught:
        build_plan(RAILS, all_sysctls={'rp_filter': 2, 'accept_local': 1, 'forwarding': 1})
    message = str(caught.value)
    assert message.startswith('source_routing_all_sysctls: net.ipv4.conf.all.forwarding is refused: ')
    assert 'all.accept_redirects' in message


@pytest.mark.parametrize('value', [0, 1])
def test_plan_refuses_all_forwarding_whatever_the_value(value):
    with pytest.raises(PlanError, match='net.ipv4.conf.all.forwarding is refused'):
        build_plan(RAILS, all_sysctls={'forwarding': value})


def test_plan_keeps_forwarding_of_one_rail():
    rails = [dict(RAILS[0], sysctls={'forwarding': 1}), RAILS[1]]
    plan = build_plan(rails, rail_sysctls={'rp_filter': 2, 'forwarding': 0})
    assert plan['conf']['ib0']['forwarding'] == 1
    assert plan['conf']['ib1']['forwarding'] == 0
    assert 'net.ipv4.conf.ib0.forwarding = 1' in plan['sysctl_lines']


# --- rail_persist's sysctl_lines --------------------------------------------------

@pytest.mark.parametrize('line, key', [
    ('net.ipv4.conf.all.forwarding = 1', 'net.ipv4.conf.all.forwarding'),
    ('net.ipv4.conf.default.rp_filter = 2', 'net.ipv4.conf.default.rp_filter'),
    ('net.ipv4.conf.default.arp_ignore=1', 'net.ipv4.conf.default.arp_ignore'),
])
def test_sysctl_lines_refuse_side_effects(line, key):
    lines = ['net.ipv4.conf.all.rp_filter = 2', line]
    with pytest.raises(InvalidArgument) as caught:
        check_sysctl_lines(lines)
    assert str(caught.value).startswith("sysctl_lines[1]: %r: %s is refused: " % (line, key))


def test_sysctl_lines_keep_what_has_no_side_effect():
    lines = ['net.ipv4.conf.all.rp_filter = 2', 'net.ipv4.conf.ib0.forwarding = 1',
             'net.ipv4.conf.default.forwarding = 0']
    assert check_sysctl_lines(lines) == lines


# --- rail_sysctl's validation (a fake /proc/sys/net/ipv4/conf) ---------------------

def conf_root(tmp_path):
    for target in ('all', 'default', 'ib0'):
        for key in ('forwarding', 'rp_filter', 'accept_redirects'):
            path = tmp_path / target / key
            path.parent.mkdir(exist_ok=True)
            path.write_text('0\n')
    return str(tmp_path)


@pytest.mark.parametrize('conf, obj, key', [
    ({'ib0': {'rp_filter': 2}, 'all': {'forwarding': 1}}, 'conf.all', 'net.ipv4.conf.all.forwarding'),
    ({'ib0': {'rp_filter': 2}, 'default': {'rp_filter': 2}}, 'conf.default', 'net.ipv4.conf.default.rp_filter'),
])
def test_rail_sysctl_refuses_side_effects(tmp_path, conf, obj, key):
    with pytest.raises(InvalidArgument) as caught:
        desired_settings(conf, conf_root(tmp_path))
    assert str(caught.value).startswith('%s: %s is refused: ' % (obj, key))


def test_rail_sysctl_keeps_what_has_no_side_effect(tmp_path):
    conf = {'ib0': {'forwarding': 1}, 'all': {'accept_redirects': 0}, 'default': {'forwarding': 1}}
    assert len(desired_settings(conf, conf_root(tmp_path))) == 3


# --- the host's own addresses ------------------------------------------------------

def host_links(**extra):
    found = {'lo': Link('lo', 1, True, ('127.0.0.1/8',)),
             'mg0': Link('mg0', 2, True, ('192.168.50.5/24',)),
             'ib0': Link('ib0', 3, True, ('10.0.1.14/24', '10.0.1.40/32')),
             'ib1': Link('ib1', 4, True, ('10.0.2.14/24',))}
    found.update(extra)
    return found


def findings(sources, links=None, protected=()):
    rails = [dict(RAILS[0], sources=sources), RAILS[1]]
    plan = build_plan(rails)
    links = host_links() if links is None else links
    protected = list(protected) + host_addresses(links, plan['rails'])
    return management_findings(desired_rules(plan['rules']), plan['rails'], protected, [], links)


def test_host_addresses_are_those_outside_the_rails():
    plan = build_plan(RAILS)
    found = host_addresses(host_links(), plan['rails'])
    assert [(p.address, p.why) for p in found] == [
        ('127.0.0.0/8', 'of lo'), ('192.168.50.5', 'of mg0, a NIC that is not a rail')]


def test_a_source_prefix_covering_a_non_rail_nic_is_refused():
    errors, _warnings = findings(['192.168.0.0/16'])
    assert errors == ['rule "1001:\tfrom 192.168.0.0/16 lookup 101 proto static" (rail ib0) would capture '
                      '192.168.50.5, the address of mg0, a NIC that is not a rail: its traffic would be looked up '
                      'in table 101 and leave through the rail']


@pytest.mark.parametrize('source', ['127.0.0.0/8', '127.0.0.0/16', '127.0.0.53', '96.0.0.0/3'])
def test_a_source_in_the_loopback_prefix_is_refused(source):
    errors, _warnings = findings([source])
    assert len(errors) == 1
    assert 'would capture 127.0.0.0/8, the address of lo' in errors[0], errors


def test_a_narrower_source_passes():
    assert findings(['192.168.60.0/24', '10.0.1.40']) == ([], [])


def test_a_vf_address_named_exactly_is_the_rails():
    links = host_links(vf0=Link('vf0', 5, True, ('192.168.70.9/24',)))
    assert findings(['192.168.70.9'], links) == ([], [])
    errors, _warnings = findings(['192.168.70.0/24'], links)
    assert len(errors) == 1 and 'would capture 192.168.70.9, the address of vf0' in errors[0]


def test_the_first_capturing_rule_in_plan_order_is_named():
    errors, _warnings = findings(['192.168.48.0/20', '192.168.50.0/24'])
    assert len(errors) == 1 and 'from 192.168.48.0/20 lookup 101' in errors[0]
