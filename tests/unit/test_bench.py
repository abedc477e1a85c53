"""The benchmark's pure parts: what each tool is given, and how figures become ratios and goals."""

import os
import sys

import pytest

from collection_path import REPO

sys.path.insert(0, os.path.join(REPO, 'bench'))

import modules  # noqa: E402  pylint: disable=wrong-import-position
import run  # noqa: E402  pylint: disable=wrong-import-position
from lab import roce_lab  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope='module')
def plan():
    return run.plan_for(roce_lab.describe('benchunit', 'textbook', 4, sources=2))


def test_the_recipe_holds_every_route_rule_and_sysctl_of_the_plan(plan):
    recipe = run.recipe_vars(plan)['bench_recipe']
    routes = [line for line in recipe if line.startswith('ip route replace')]
    rules = [line for line in recipe if line.startswith('ip rule add')]
    assert len(routes) == sum(len(table['routes']) for table in plan['tables']) == 8
    assert len(rules) == len(plan['rules']) == 12
    assert 'ip route replace 10.0.1.0/24 dev ib0 table 101 metric 100 proto static src 10.0.1.14' in routes
    assert 'ip route replace 0.0.0.0/0 via 10.0.1.1 dev ib0 table 101 metric 100 proto static' in routes
    assert 'ip rule add from 10.0.2.41 lookup 102 pref 1002 proto static' in rules
    sysctl = [line for line in recipe if line.startswith('sysctl')]
    assert sysctl == ['sysctl -q -w ' + ' '.join(line.replace(' ', '') for line in plan['sysctl_lines'])]
    # In each table the direct route comes before the gateway route that needs it.
    for table in (101, 102, 103, 104):
        kinds = ['via' in line for line in routes if ' table %d ' % table in line]
        assert kinds == [False, True], (table, routes)


def test_nmcli_gets_the_same_tables_rules_addresses_and_sysctls(plan):
    given = run.nmcli_vars(plan)
    rail = given['bench_rails'][1]
    assert rail == {
        'device': 'ib1',
        'addresses': ['10.0.2.14/24', '10.0.2.40/32', '10.0.2.41/32'],
        'routes': [{'ip': '10.0.2.0/24', 'metric': 100, 'table': 102},
                   {'ip': '0.0.0.0/0', 'metric': 100, 'table': 102, 'next_hop': '10.0.2.1'}],
        'rules': ['priority 1002 from 10.0.2.14 table 102', 'priority 1002 from 10.0.2.40 table 102',
                  'priority 1002 from 10.0.2.41 table 102'],
    }
    assert {'name': 'net.ipv4.conf.ib3.arp_ignore', 'value': '1'} in given['bench_sysctls']
    assert len(given['bench_sysctls']) == len(plan['sysctl_lines']) == 14


def test_ratios_are_taken_pair_by_pair():
    # Medians alone would give 2/4 = 0.5; the pairs are 0.25, 1.0 and 0.5.
    assert run.paired([1, 2, 3], [4, 2, 6]) == 0.5
    assert run.paired([1, 3, 2], [4, 3, 4]) == 0.5


def test_goals_say_met_only_within_their_limit():
    results = {'converge_ratio_vs_nmcli': 0.5, 'noop_ratio_vs_nmcli': 0.51, 'rules_1024_ratio_vs_ip': 0.05,
               'rail_rule_noop_1024_seconds': 0.2,
               'module_calls_per_host': {'4': {'ours': {'fresh': 7, 'noop': 6}},
                                         '8': {'ours': {'fresh': 7, 'noop': 6}}}}
    goals = run.goals(results)
    assert [name for name, goal in goals.items() if goal['met']] == [
        'converge_ratio_vs_nmcli', 'rules_1024_ratio_vs_ip', 'module_calls_per_host_equal_for_R']
    results['module_calls_per_host']['8']['ours']['fresh'] = 8
    assert not run.goals(results)['module_calls_per_host_equal_for_R']['met']


def test_module_scale_objects_number_exactly_n():
    for count in (16, 128, 1024):
        rules = modules.rule_objects(count)
        assert len(rules) == len(set(rules)) == count
        assert len(set(modules.route_objects(count))) == count
        assert len(modules.rule_commands(count)) == len(modules.rule_args(count)['rules']) == count
        assert sum(len(t['routes']) for t in modules.table_args(count)['tables']) == count
    with pytest.raises(ValueError, match='multiple of 8'):
        modules.rails(100)
