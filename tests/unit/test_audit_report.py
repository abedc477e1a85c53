# -*- coding: utf-8 -*-
"""Unit tests for plugins/filter/audit_report.py and the HTML report template, on hand-made audit results.

The results have the shape rail_audit returns (rails, findings, checks, summary). The text table is
checked character for character on a small host and for width on a large one; the fleet summary and
the JSON document on a fleet of every health; the template is rendered the way Ansible's template
module renders it (no autoescape) with hostile text in every field.
"""

import json
import os
import re
from html.parser import HTMLParser

import jinja2
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.roce.multirail.plugins.filter.audit_report import (
    SHORT,
    FilterModule,
    audit_fleet,
    audit_json,
    audit_table,
)
from ansible_collections.roce.multirail.plugins.module_utils.audit import CHECKS as MODULE_CHECKS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = os.path.join(REPO, 'playbooks', 'templates', 'audit_report.html.j2')
CHECKS = ['rule', 'rule_order', 'table', 'gateway', 'route_get', 'arp', 'rp_filter', 'accept_local', 'duplicate',
          'link', 'mtu', 'sysctl_files', 'boot', 'martians']
GENERATED = '2026-01-02T03:04:05Z'


def finding(check, device, severity, message='something is wrong', hint='fix it'):
    return {'check': check, 'device': device, 'severity': severity, 'message': message, 'hint': hint}


def result(devices, findings=(), checks=tuple(CHECKS)):
    """A rail_audit result; the summary is what the module would say."""
    counts = {s: sum(1 for f in findings if f['severity'] == s) for s in ('error', 'warning', 'info')}
    status = 'error' if counts['error'] else 'warning' if counts['warning'] else 'ok'
    rails = [{'device': device, 'addresses': ['10.0.%d.14/24' % (index + 1)], 'state': 'up', 'carrier': True,
              'mtu': 4200, 'table': 101 + index, 'rules': [], 'routes': [], 'route_get': [], 'sysctls': {}}
             for index, device in enumerate(devices)]
    return {'changed': False, 'rails': rails, 'findings': list(findings), 'checks': list(checks),
            'summary': {'status': status, 'errors': counts['error'], 'warnings': counts['warning'],
                        'infos': counts['info']}}


SMALL = result(['ib0', 'ib1'], [
    finding('arp', 'ib1', 'warning', 'ib1 answers ARP for 10.0.1.14', 'sysctl -w net.ipv4.conf.ib1.arp_ignore=1'),
    finding('rule', 'ib1', 'error', 'no rule from 10.0.2.14', 'ip rule add priority 1002 from 10.0.2.14 lookup 102'),
    finding('sysctl_files', None, 'error', '/etc/sysctl.d/99-zz-cloud.conf sets net.ipv4.conf.all.rp_filter = 1',
            'delete the line'),
])

SMALL_TABLE = '''\
rail audit: error (2 errors, 1 warning, 0 infos)
rail  rule order table   gw  rtget  arp   rpf  local  dup   link  mtu   sysd  boot  mart
ib0    ✓     ✓     ✓     ✓     ✓     ✓     ✓     ✓     ✓     ✓     ✓     ✗     ✓     ✓
ib1    ✗     ✓     ✓     ✓     ✓     !     ✓     ✓     ✓     ✓     ✓     ✗     ✓     ✓
✓ ok  ✗ error  ! warning  i info;  order=rule_order  gw=gateway  rtget=route_get  rpf=rp_filter
  local=accept_local  dup=duplicate  sysd=sysctl_files  mart=martians

✗ (host) sysctl_files: /etc/sysctl.d/99-zz-cloud.conf sets net.ipv4.conf.all.rp_filter = 1
    fix: delete the line
✗ ib1 rule: no rule from 10.0.2.14
    fix: ip rule add priority 1002 from 10.0.2.14 lookup 102
! ib1 arp: ib1 answers ARP for 10.0.1.14
    fix: sysctl -w net.ipv4.conf.ib1.arp_ignore=1'''


def rows(table):
    """{device: [cell symbols]} of the table part of audit_table's text."""
    lines = table.splitlines()
    assert lines[1].startswith('rail '), table
    grid = {}
    for line in lines[2:]:
        if line.startswith('\u2713 ok'):
            break
        device, *cells = line.split()
        grid[device] = cells
    return grid


# ---------------------------------------------------------------- audit_table

def test_table_of_a_small_broken_host_reads_exactly_so():
    assert audit_table(SMALL) == SMALL_TABLE


def test_every_check_of_the_module_has_its_own_short_header():
    # kept_routes runs (and is listed in a result) only when the caller passes the routes to keep.
    assert list(MODULE_CHECKS) == CHECKS + ['kept_routes'], 'rail_audit changed its checks: update SHORT and these tests'
    shorts = [SHORT[check] for check in MODULE_CHECKS]
    assert len(set(shorts)) == len(shorts) and all(1 <= len(short) <= 5 for short in shorts), shorts


def test_a_cell_holds_the_worst_severity_on_its_rail_and_check():
    host = result(['ib0', 'ib1', 'ib2', 'ib3'], [
        finding('rule', 'ib0', 'info'), finding('rule', 'ib0', 'error'), finding('rule', 'ib0', 'warning'),
        finding('rule', 'ib1', 'info'), finding('rule', 'ib1', 'warning'),
        finding('rule', 'ib2', 'info'),
    ])
    assert [cells[0] for cells in rows(audit_table(host)).values()] == ['\u2717', '!', 'i', '\u2713']
    assert audit_table(host).splitlines()[0] == 'rail audit: error (1 error, 2 warnings, 3 infos)'


def test_a_host_wide_finding_marks_its_column_on_every_rail_and_no_other():
    host = result(['ib0', 'ib1', 'ib2'], [finding('rp_filter', None, 'warning', 'all.rp_filter is 1')])
    grid = rows(audit_table(host))
    column = CHECKS.index('rp_filter')
    for device, cells in grid.items():
        assert cells[column] == '!', device
        assert cells[:column] + cells[column + 1:] == ['\u2713'] * (len(CHECKS) - 1), device
    assert '! (host) rp_filter: all.rp_filter is 1' in audit_table(host).splitlines()


def test_eight_rails_fourteen_checks_and_long_findings_fit_in_120_columns():
    devices = ['enp%ds0f0np0' % (index + 10) for index in range(8)]
    findings = [finding(check, devices[index % 8], ('error', 'warning', 'info')[index % 3],
                        'a long explanation of what is wrong with this rail and why it matters ' * 3,
                        'sysctl -w net.ipv4.conf.%s.rp_filter=2 && ' % devices[index % 8] * 4)
                for index, check in enumerate(CHECKS)]
    table = audit_table(result(devices, findings))
    lines = table.splitlines()
    # The default callback prints each line indented by 8, quoted and followed by a comma.
    assert max(len(line) for line in lines) + 11 <= 120, max(lines, key=len)
    grid = rows(table)
    assert list(grid) == devices and all(len(cells) == len(CHECKS) for cells in grid.values())
    # Every finding is there, its fix indented under it.
    starts = [line for line in lines if line[:1] in ('\u2717', '!', 'i') and ': ' in line and ' ok ' not in line]
    assert len(starts) == len(CHECKS)
    assert sum(1 for line in lines if line.startswith('    fix: ')) == len(CHECKS)
    narrow = audit_table(result(devices, findings), width=60)
    assert max(len(line) for line in narrow.splitlines()[len(devices) + 2:]) <= 60


def test_findings_are_listed_errors_first_then_by_rail_and_check():
    host = result(['ib0', 'ib1'], [
        finding('mtu', 'ib0', 'info', 'i-mtu'), finding('arp', 'ib1', 'warning', 'w-arp'),
        finding('rule', 'ib1', 'error', 'e-rule', ''), finding('table', 'ib0', 'error', 'e-table'),
        finding('rule', 'ib0', 'error', 'e-rule0'), finding('boot', None, 'error', 'e-host'),
    ])
    listed = [line for line in audit_table(host).splitlines() if re.match(r'^\S \S+ \w+: ', line)]
    assert listed == ['\u2717 (host) boot: e-host', '\u2717 ib0 rule: e-rule0', '\u2717 ib0 table: e-table',
                      '\u2717 ib1 rule: e-rule', '! ib1 arp: w-arp', 'i ib0 mtu: i-mtu']
    lines = audit_table(host).splitlines()
    # No hint, no fix line.
    assert lines[lines.index('\u2717 ib1 rule: e-rule') + 1] == '! ib1 arp: w-arp'


def test_a_finding_on_a_device_that_is_no_rail_gets_its_own_row():
    host = result(['ib0'], [finding('duplicate', 'eth0', 'error', '10.0.1.14 is also on eth0')])
    grid = rows(audit_table(host))
    assert list(grid) == ['ib0', 'eth0']
    assert grid['eth0'][CHECKS.index('duplicate')] == '\u2717' and grid['ib0'] == ['\u2713'] * len(CHECKS)


def test_checks_the_module_did_not_list_get_a_column_with_a_unique_header():
    host = result(['ib0'], [finding('rule_extra_a', 'ib0', 'warning'), finding('rule_extra_b', 'ib0', 'error')],
                  checks=['rule'])
    lines = audit_table(host).splitlines()
    assert lines[1].split() == ['rail', 'rule', 'rule_', 'rule2']
    assert rows(audit_table(host))['ib0'] == ['\u2713', '!', '\u2717']
    assert 'rule_=rule_extra_a' in lines[3] and 'rule2=rule_extra_b' in lines[3]


def test_a_healthy_host_is_all_ticks_and_no_findings():
    table = audit_table(result(['ib0', 'ib1']))
    assert table.splitlines()[0] == 'rail audit: ok (0 errors, 0 warnings, 0 infos)'
    assert all(cells == ['\u2713'] * len(CHECKS) for cells in rows(table).values())
    # The table and its legend, nothing under it.
    assert len(table.splitlines()) == 1 + 1 + 2 + 2 and 'fix:' not in table, table


def test_a_host_without_rails_says_so():
    assert audit_table(result([])) == 'rail audit: ok (0 errors, 0 warnings, 0 infos)\nno rails found'


@pytest.mark.parametrize('value, words', [
    ({'failed': True, 'msg': 'pyroute2 is missing'}, 'rail audit did not run: rail_audit failed: pyroute2 is missing'),
    ({'unreachable': True, 'msg': 'netns: no gpu05'}, 'rail audit did not run: unreachable: netns: no gpu05'),
    ({'skipped': True, 'changed': False}, 'rail audit did not run: rail_audit skipped'),
    (None, 'rail audit did not run: no audit result'),
    ({'changed': False}, 'rail audit did not run: no audit result (no findings in it)'),
])
def test_an_audit_that_did_not_run_is_one_line_saying_why(value, words):
    assert audit_table(value).startswith(words) and '\n' not in audit_table(value)


@pytest.mark.parametrize('broken, words', [
    (lambda r: r['findings'].append(finding('rule', 'ib0', 'critical')), ['findings[0]', 'rule', "'critical'"]),
    (lambda r: r['findings'].append('no rule'), ['findings[0]', "'no rule'"]),
    (lambda r: r['findings'].append(finding('', 'ib0', 'error')), ['findings[0]', "check ''"]),
    (lambda r: r['findings'].append(finding('rule', 7, 'error')), ['findings[0]', 'device 7']),
    (lambda r: r.update(rails='ib0'), ['rails must be a list', "'ib0'"]),
    (lambda r: r['rails'].append({'mtu': 1500}), ['rails[1]', 'no device']),
    (lambda r: r['checks'].append(None), ['checks[14]', 'None']),
])
def test_a_malformed_result_is_refused_naming_the_field_and_value(broken, words):
    value = result(['ib0'])
    broken(value)
    with pytest.raises(AnsibleFilterError) as caught:
        audit_table(value)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


@pytest.mark.parametrize('width', [39, '100', True, None])
def test_table_width_must_be_an_integer_of_at_least_40(width):
    with pytest.raises(AnsibleFilterError, match='width'):
        audit_table(SMALL, width=width)


# ---------------------------------------------------------------- the fleet

def fleet_results():
    """gpu1 ok, gpu2 only an info (ok), gpu3 warnings, gpu10 and gpu4 broken, gpu5 unreachable, gpu6 failed."""
    return {
        'gpu10': result(['ib0', 'ib1'], [finding('rp_filter', None, 'error', 'all.rp_filter=1'),
                                         finding('arp', 'ib1', 'warning')]),
        'gpu1': result(['ib0', 'ib1']),
        'gpu2': result(['ib0', 'ib1'], [finding('martians', None, 'info')]),
        'gpu3': result(['ib0', 'ib1'], [finding('arp', 'ib0', 'warning'), finding('arp', 'ib1', 'warning'),
                                        finding('mtu', 'ib1', 'warning')]),
        'gpu4': result(['ib0', 'ib1'], [finding('rule', 'ib1', 'error'), finding('rp_filter', 'ib1', 'warning')]),
        'gpu5': {'unreachable': True, 'msg': 'netns: no namespace gpu5', 'changed': False},
        'gpu6': {'failed': True, 'msg': 'pyroute2 is missing'},
    }


def test_fleet_sorts_hosts_by_health_in_natural_name_order():
    fleet = audit_fleet(fleet_results())
    assert (fleet['hosts'], fleet['audited']) == (7, 5)
    assert fleet['ok'] == ['gpu1', 'gpu2']
    assert fleet['warning'] == ['gpu3']
    assert fleet['broken'] == ['gpu4', 'gpu10']
    assert fleet['failed'] == ['gpu5', 'gpu6']
    assert fleet['reasons'] == {'gpu5': 'unreachable: netns: no namespace gpu5',
                                'gpu6': 'rail_audit failed: pyroute2 is missing'}
    assert fleet['status'] == 'error'


def test_fleet_counts_hosts_per_check_most_hosts_first_then_worst():
    common = audit_fleet(fleet_results())['common']
    assert [(entry['check'], entry['count'], entry['severity'], entry['findings']) for entry in common] == [
        ('rp_filter', 2, 'error', 2), ('arp', 2, 'warning', 3), ('rule', 1, 'error', 1), ('mtu', 1, 'warning', 1),
        ('martians', 1, 'info', 1)]
    assert [entry['hosts'] for entry in common[:2]] == [['gpu4', 'gpu10'], ['gpu3', 'gpu10']]


def test_fleet_text_reads_so():
    assert audit_fleet(fleet_results())['text'] == '\n'.join([
        'rail audit of 7 hosts: 2 ok, 1 with warnings, 2 broken, 2 not audited',
        '  broken:      gpu4, gpu10',
        '  warnings:    gpu3',
        '  not audited: gpu5 (unreachable: netns: no namespace gpu5)',
        '  not audited: gpu6 (rail_audit failed: pyroute2 is missing)',
        'most common findings (hosts affected):',
        '  \u2717 rp_filter    2  gpu4, gpu10',
        '  ! arp          2  gpu3, gpu10',
        '  \u2717 rule         1  gpu4',
        '  ! mtu          1  gpu3',
        '  i martians     1  gpu2',
    ])


@pytest.mark.parametrize('hosts, status', [
    ({'a': result(['ib0'])}, 'ok'),
    ({'a': result(['ib0']), 'b': result(['ib0'], [finding('mtu', 'ib0', 'warning')])}, 'warning'),
    ({'a': result(['ib0']), 'b': None}, 'error'),
    ({'a': result(['ib0'], [finding('mtu', 'ib0', 'error')])}, 'error'),
    ({}, 'error'),
])
def test_fleet_status_is_an_error_for_a_broken_or_unaudited_host_or_no_host(hosts, status):
    assert audit_fleet(hosts)['status'] == status


def test_an_empty_fleet_says_no_host_was_audited():
    fleet = audit_fleet({})
    assert fleet['text'].splitlines()[-1] == 'no host was audited' and fleet['hosts'] == 0


def test_fleet_input_must_be_a_mapping_and_a_bad_host_is_named():
    with pytest.raises(AnsibleFilterError, match='mapping of host name'):
        audit_fleet([result(['ib0'])])
    bad = result(['ib0'], [finding('rule', 'ib0', 'fatal')])
    with pytest.raises(AnsibleFilterError, match="^gpu7: findings\\[0\\]"):
        audit_fleet({'gpu1': result(['ib0']), 'gpu7': bad})


# ---------------------------------------------------------------- audit_json

def test_json_document_is_deterministic_and_serializable():
    one, two = audit_json(fleet_results(), GENERATED), audit_json(fleet_results(), GENERATED)
    assert one == two
    assert json.loads(json.dumps(one, sort_keys=True)) == one
    assert one['format'] == 'roce.multirail.audit_report/1' and one['generated'] == GENERATED
    assert one['fleet'] == audit_fleet(fleet_results())


def test_json_document_holds_every_host_with_rails_findings_grid_and_summary():
    document = audit_json(fleet_results(), GENERATED)
    hosts = {entry['host']: entry for entry in document['hosts']}
    assert [entry['host'] for entry in document['hosts']] == ['gpu1', 'gpu2', 'gpu3', 'gpu4', 'gpu5', 'gpu6',
                                                              'gpu10']
    assert hosts['gpu5'] == {'host': 'gpu5', 'status': 'failed', 'reason': 'unreachable: netns: no namespace gpu5'}
    gpu10 = hosts['gpu10']
    assert gpu10['summary'] == {'status': 'error', 'errors': 1, 'warnings': 1, 'infos': 0}
    assert gpu10['rails'] == fleet_results()['gpu10']['rails']
    assert gpu10['checks'] == CHECKS and [c['short'] for c in gpu10['columns']][:3] == ['rule', 'order', 'table']
    assert [f['message'] for f in gpu10['findings']] == ['all.rp_filter=1', 'something is wrong']
    # The host-wide rp_filter error sits on both rails; the arp warning on ib1 only.
    cells = {(row['device'], cell['check']): cell['status'] for row in gpu10['grid'] for cell in row['cells']}
    assert sorted(key for key, status in cells.items() if status != 'ok') == [
        ('ib0', 'rp_filter'), ('ib1', 'arp'), ('ib1', 'rp_filter')]
    assert cells[('ib1', 'arp')] == 'warning' and cells[('ib0', 'rp_filter')] == 'error'
    assert hosts['gpu2']['status'] == 'ok' and hosts['gpu2']['summary']['infos'] == 1


@pytest.mark.parametrize('generated', ['', None, 1700000000])
def test_json_needs_the_generation_time_as_a_string(generated):
    with pytest.raises(AnsibleFilterError, match='generated'):
        audit_json(fleet_results(), generated)


def test_the_filters_are_registered_under_their_documented_names():
    filters = FilterModule().filters()
    assert filters == {'audit_table': audit_table, 'audit_fleet': audit_fleet, 'audit_json': audit_json}
    for name in filters:
        assert os.path.isfile(os.path.join(REPO, 'plugins', 'filter', name + '.yml')), name


# ---------------------------------------------------------------- the HTML template

class Page(HTMLParser):
    """Start tags with their attributes, the text of every td.cell; fails on a misnested or unclosed tag."""

    VOID = {'meta', 'br', 'hr', 'img', 'input', 'link', 'wbr', 'col', 'area', 'base', 'source'}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.cells, self._cell, self.open = [], [], None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag not in self.VOID:
            self.open.append(tag)
        if tag == 'td' and 'cell' in attrs.get('class', '').split():
            self._cell = [attrs['class'].split()[1], '']

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, 'closing %s inside %s' % (tag, self.open)
        self.open.pop()
        if tag == 'td' and self._cell is not None:
            self.cells.append(tuple(self._cell))
            self._cell = None


def render(document):
    """The template as Ansible's template module renders it: no autoescape, trim_blocks."""
    with open(TEMPLATE, encoding='utf-8') as handle:
        source = handle.read()
    environment = jinja2.Environment(autoescape=False, trim_blocks=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(source).render(rail_audit_report=document)


def test_template_escapes_every_text_it_is_given():
    evil = '<script>alert(1)</script><b onmouseover="x">&amp;'
    results = {
        'gpu<i>1': result(['ib0', 'ib<u>1'], [
            finding('rule', 'ib<u>1', 'error', evil, evil), finding('x<em>', None, 'warning', evil, evil)]),
        'gpu<s>2': {'failed': True, 'msg': evil},
    }
    page = Page()
    page.feed(render(audit_json(results, evil)))
    tags = {tag for tag, _attrs in page.tags}
    assert not tags & {'script', 'b', 'i', 'u', 's', 'em'}, tags
    assert not [attrs for _tag, attrs in page.tags if 'onmouseover' in attrs]
    html = render(audit_json(results, evil))
    assert html.count('&lt;script&gt;alert(1)&lt;/script&gt;') >= 6


def test_template_is_self_contained_html5_with_one_cell_per_rail_and_check():
    document = audit_json(fleet_results(), GENERATED)
    html = render(document)
    assert html.startswith('<!DOCTYPE html>\n<html lang="en">')
    page = Page()
    page.feed(html)
    page.close()
    assert page.open == [], 'unclosed: %s' % page.open
    assert not [tag for tag, _attrs in page.tags if tag in ('script', 'link', 'img', 'iframe', 'object')]
    assert not re.search(r'(?:src|href)="(?!#)|url\(|@import', html)
    assert ('meta', {'charset': 'utf-8'}) in page.tags
    audited = [host for host in document['hosts'] if host['status'] != 'failed']
    assert len(page.cells) == sum(len(host['grid']) * len(host['checks']) for host in audited)
    errors = [cell for cell in page.cells if cell[0] == 'error']
    assert errors == [('error', '\u2717')] * 3                  # gpu4 rule on ib1, gpu10 rp_filter on ib0 and ib1
    assert sorted(set(page.cells)) == [('error', '\u2717'), ('info', 'i'), ('ok', '\u2713'), ('warning', '!')]
    ids = [attrs['id'] for _tag, attrs in page.tags if 'id' in attrs]
    assert len(ids) == len(set(ids))
    anchors = [attrs['href'][1:] for tag, attrs in page.tags if tag == 'a']
    assert anchors and set(anchors) <= set(ids)
