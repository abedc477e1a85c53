"""Unit tests for the gateway check of plugins/module_utils/audit.py when rail_audit probed the gateways."""

import pytest

from test_audit import healthy, kinds, run, says


def probed(snapshot, **errors):
    probes = {}
    for device, number in (('ib0', 1), ('ib1', 2)):
        probes[device] = {'source': '10.0.%d.14' % number, 'gateway': '10.0.%d.1' % number,
                          'error': errors.get(device, '')}
    return snapshot._replace(probes=probes)


def test_gateways_that_answer_are_fine_and_reported_per_rail():
    rails, findings, _summary = run(probed(healthy()))
    assert findings == []
    assert rails[1]['probe'] == {'source': '10.0.2.14', 'gateway': '10.0.2.1', 'error': ''}


def test_a_gateway_answering_neither_ping_nor_arp_is_an_error():
    snapshot = probed(healthy(), ib1='no echo reply within 1.0 s')
    snapshot.neighbours[('ib1', '10.0.2.1')] = 'INCOMPLETE'
    _rails, findings, summary = run(snapshot)
    assert kinds(findings) == [('gateway', 'ib1', 'error')]
    says(findings[0]['message'], 'gateway 10.0.2.1 is not reachable from 10.0.2.14 on ib1',
         'no echo reply within 1.0 s', 'neighbour state INCOMPLETE')
    assert summary['status'] == 'error'


def test_no_neighbour_entry_at_all_is_an_error_too():
    snapshot = probed(healthy(), ib0='the echo request could not be sent: Network is unreachable')
    del snapshot.neighbours[('ib0', '10.0.1.1')]
    _rails, findings, _summary = run(snapshot)
    assert kinds(findings) == [('gateway', 'ib0', 'error')]
    says(findings[0]['message'], 'Network is unreachable', 'neighbour state none')


def test_a_gateway_answering_arp_but_not_ping_is_an_error():
    # The probe dropped the cached entry first: REACHABLE now is a fresh ARP answer, but no echo came.
    _rails, findings, _summary = run(probed(healthy(), ib1='no echo reply within 1.0 s'))
    assert kinds(findings) == [('gateway', 'ib1', 'error')]
    says(findings[0]['message'], 'answers ARP on ib1 but not a ping from 10.0.2.14')


@pytest.mark.parametrize('state', ['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT'])
def test_a_gateway_without_an_echo_reply_is_dead_whatever_the_neighbour_cache_says(state):
    """The gateway's address was removed from the leaf; the host still caches its neighbour entry."""
    snapshot = probed(healthy(), ib0='no echo reply within 1.0 s')
    snapshot.neighbours[('ib0', '10.0.1.1')] = state
    _rails, findings, summary = run(snapshot)
    assert kinds(findings) == [('gateway', 'ib0', 'error')] and summary['status'] == 'error'


def test_a_gateway_that_is_another_rails_address_is_an_error_even_when_it_answers():
    """The shared layout with ib0's gateway set to ib1's own address: the host answers its own ping."""
    snapshot = healthy()
    snapshot.links['ib1'] = snapshot.links['ib1']._replace(addresses=('10.0.2.14/24', '10.0.1.16/24'))
    snapshot = snapshot._replace(routes=[r._replace(gateway='10.0.1.16') if r.gateway == '10.0.1.1' and r.table == 101
                                         else r for r in snapshot.routes])
    snapshot = probed(snapshot)
    snapshot.probes['ib0']['gateway'] = '10.0.1.16'
    _rails, findings, _summary = run(snapshot)
    assert ('gateway', 'ib0', 'error') in kinds(findings), findings
    says([f for f in findings if f['check'] == 'gateway'][0]['message'],
         'gateway 10.0.1.16 of table 101 is an address of this host (on ib1)')


def test_a_gateway_on_a_nic_that_is_no_rail_is_an_error_without_a_probe():
    snapshot = healthy()
    snapshot.links['mg0'] = snapshot.links['ib1']._replace(name='mg0', index=9, addresses=('10.0.2.1/32',))
    _rails, findings, _summary = run(snapshot)
    assert kinds(findings) == [('gateway', 'ib1', 'error')], findings
    says(findings[0]['message'], 'gateway 10.0.2.1 of table 102 is an address of this host (on mg0)')


def test_a_probe_of_another_gateway_than_the_tables_is_ignored():
    snapshot = probed(healthy(), ib1='no echo reply within 1.0 s')
    snapshot.probes['ib1']['gateway'] = '10.0.2.254'
    assert run(snapshot)[1] == []
