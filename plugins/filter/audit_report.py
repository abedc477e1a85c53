# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters turning rail_audit results into a terminal table, a fleet summary and a JSON report.

Pure Python on the controller. One grid (rails x checks, each cell the worst severity of the
findings on it) is computed per host and serves the text table, the JSON document and the HTML
template alike. A finding whose device is null is host-wide: it marks its check on every rail.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError

SEVERITIES = ('error', 'warning', 'info')
RANK = {'ok': 0, 'info': 1, 'warning': 2, 'error': 3}
SYMBOLS = {'ok': '\u2713', 'error': '\u2717', 'warning': '!', 'info': 'i'}
PLURAL = {'error': 'errors', 'warning': 'warnings', 'info': 'infos'}
# Column headers (5 characters at most) of the checks rail_audit runs; others are cut to 5.
SHORT = {
    'rule': 'rule', 'rule_order': 'order', 'table': 'table', 'gateway': 'gw', 'route_get': 'rtget',
    'arp': 'arp', 'rp_filter': 'rpf', 'accept_local': 'local', 'duplicate': 'dup', 'link': 'link',
    'mtu': 'mtu', 'sysctl_files': 'sysd', 'boot': 'boot', 'martians': 'mart', 'kept_routes': 'kept',
}
SHORT_MAX = 5
HOST_WIDE = '(host)'
DEFAULT_WIDTH = 100
REPORT_FORMAT = 'roce.multirail.audit_report/1'


# ---------------------------------------------------------------- one host

def _is_list(value):
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _not_audited(result):
    """Why a host has no usable audit result, or None when it has one."""
    if not isinstance(result, Mapping):
        return 'no audit result (unreachable, or the audit did not run)'
    message = result.get('msg')
    if result.get('unreachable'):
        return 'unreachable: %s' % message if message else 'unreachable'
    if result.get('failed'):
        return 'rail_audit failed: %s' % message if message else 'rail_audit failed'
    if result.get('skipped'):
        return 'rail_audit skipped: %s' % message if message else 'rail_audit skipped'
    if 'findings' not in result:
        return 'no audit result (no findings in it)'
    return None


def _checked(result, where):
    """(rails, findings, checks) of a usable result, validated; AnsibleFilterError names the culprit."""
    rails, findings, checks = result.get('rails') or [], result.get('findings') or [], result.get('checks') or []
    for field, value in (('rails', rails), ('findings', findings), ('checks', checks)):
        if not _is_list(value):
            raise AnsibleFilterError('%s: %s must be a list, got %r' % (where, field, value))
    for index, rail in enumerate(rails):
        if not isinstance(rail, Mapping) or not isinstance(rail.get('device'), str) or not rail.get('device'):
            raise AnsibleFilterError('%s: rails[%d] has no device name: %r' % (where, index, rail))
    for index, finding in enumerate(findings):
        if not isinstance(finding, Mapping):
            raise AnsibleFilterError('%s: findings[%d] must be a mapping, got %r' % (where, index, finding))
        if finding.get('severity') not in SEVERITIES:
            raise AnsibleFilterError('%s: findings[%d] (check %s): severity %r is not one of %s'
                                     % (where, index, finding.get('check'), finding.get('severity'),
                                        ', '.join(SEVERITIES)))
        if not isinstance(finding.get('check'), str) or not finding.get('check'):
            raise AnsibleFilterError('%s: findings[%d]: check %r must be a non-empty string'
                                     % (where, index, finding.get('check')))
        device = finding.get('device')
        if device is not None and not isinstance(device, str):
            raise AnsibleFilterError('%s: findings[%d] (check %s): device %r must be a string or null'
                                     % (where, index, finding['check'], device))
    for index, check in enumerate(checks):
        if not isinstance(check, str) or not check:
            raise AnsibleFilterError('%s: checks[%d] %r must be a non-empty string' % (where, index, check))
    return list(rails), list(findings), list(checks)


def _short_names(checks):
    """{check: column header}: SHORT, else the first SHORT_MAX characters, made unique with a digit."""
    names, taken = {}, set()
    for check in checks:
        short = SHORT.get(check, check[:SHORT_MAX])
        number = 2
        while short in taken:
            short = '%s%d' % (check[:SHORT_MAX - len(str(number))], number)
            number += 1
        names[check] = short
        taken.add(short)
    return names


def _unique(items):
    return list(dict.fromkeys(items))


def host_report(result, host='host'):
    """The normalized audit of one host: status, summary, columns, grid, sorted findings.

    Raises AnsibleFilterError on a malformed result. A result of an audit that did not run is
    {host, status: 'failed', reason}.
    """
    reason = _not_audited(result)
    if reason is not None:
        return {'host': host, 'status': 'failed', 'reason': reason}
    rails, findings, checks = _checked(result, host)
    checks = _unique(checks + [finding['check'] for finding in findings])
    devices = _unique([rail['device'] for rail in rails]
                      + [finding['device'] for finding in findings if finding.get('device') is not None])
    rail_devices = {rail['device'] for rail in rails}
    worst = {(device, check): 'ok' for device in devices for check in checks}
    for finding in findings:
        targets = devices if finding.get('device') is None else [finding['device']]
        for device in targets:
            key = (device, finding['check'])
            if RANK[finding['severity']] > RANK[worst[key]]:
                worst[key] = finding['severity']
    short = _short_names(checks)
    grid = [{'device': device, 'rail': device in rail_devices,
             'cells': [{'check': check, 'status': worst[(device, check)],
                        'symbol': SYMBOLS[worst[(device, check)]]} for check in checks]}
            for device in devices]
    row = {device: index for index, device in enumerate(devices)}
    column = {check: index for index, check in enumerate(checks)}
    ordered = sorted(findings, key=lambda f: (-RANK[f['severity']],
                                              -1 if f.get('device') is None else row[f['device']],
                                              column[f['check']]))
    counts = {severity: sum(1 for f in findings if f['severity'] == severity) for severity in SEVERITIES}
    status = next((severity for severity in SEVERITIES if counts[severity] and severity != 'info'), 'ok')
    return {
        'host': host,
        'status': status,
        'summary': {'status': status, 'errors': counts['error'], 'warnings': counts['warning'],
                    'infos': counts['info']},
        'checks': checks,
        'columns': [{'check': check, 'short': short[check]} for check in checks],
        'grid': grid,
        'rails': [dict(rail) for rail in rails],
        'findings': [{'check': f['check'], 'device': f.get('device'), 'severity': f['severity'],
                      'symbol': SYMBOLS[f['severity']], 'message': str(f.get('message') or ''),
                      'hint': str(f.get('hint') or '')} for f in ordered],
    }


def _counts_text(summary):
    return ', '.join('%d %s' % (summary[PLURAL[severity]], PLURAL[severity] if summary[PLURAL[severity]] != 1
                                else severity) for severity in SEVERITIES)


def _wrap(text, width, first, rest):
    return textwrap.wrap(text, width=width, initial_indent=first, subsequent_indent=rest,
                         break_long_words=False, break_on_hyphens=False) or [first.rstrip()]


def audit_table(result, width=DEFAULT_WIDTH):
    """One host's rail_audit result as fixed-width text: status line, rails x checks, legend, findings."""
    if not isinstance(width, int) or isinstance(width, bool) or width < 40:
        raise AnsibleFilterError('audit_table: width must be an integer of at least 40, got %r' % (width,))
    report = host_report(result)
    if report['status'] == 'failed':
        return 'rail audit did not run: %s' % report['reason']
    lines = ['rail audit: %s (%s)' % (report['status'], _counts_text(report['summary']))]
    if not report['grid']:
        lines.append('no rails found')
    else:
        shorts = [column['short'] for column in report['columns']]
        cell = max([len(short) for short in shorts] + [1])
        first = max([len('rail')] + [len(row['device']) for row in report['grid']])
        lines.append(' '.join(['rail'.ljust(first)] + [short.center(cell) for short in shorts]).rstrip())
        for row in report['grid']:
            lines.append(' '.join([row['device'].ljust(first)]
                                  + [entry['symbol'].center(cell) for entry in row['cells']]).rstrip())
        legend = '%s ok  %s error  %s warning  %s info' % tuple(SYMBOLS[s] for s in ('ok', 'error', 'warning', 'info'))
        spelled = ['%s=%s' % (c['short'], c['check']) for c in report['columns'] if c['short'] != c['check']]
        if spelled:
            legend += ';  ' + '  '.join(spelled)
        lines.extend(_wrap(legend, width, '', '  '))
    if report['findings']:
        lines.append('')
    for finding in report['findings']:
        device = finding['device'] if finding['device'] is not None else HOST_WIDE
        lines.extend(_wrap('%s %s %s: %s' % (finding['symbol'], device, finding['check'], finding['message']),
                           width, '', '    '))
        if finding['hint']:
            lines.extend(_wrap('fix: %s' % finding['hint'], width, '    ', '         '))
    return '\n'.join(lines)


# ---------------------------------------------------------------- the fleet

def _natural(name):
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', str(name))]


def _reports(results):
    if not isinstance(results, Mapping):
        raise AnsibleFilterError('the audit results must be a mapping of host name to rail_audit result, got %s'
                                 % type(results).__name__)
    return [host_report(results[host], host=str(host)) for host in sorted(results, key=_natural)]


def _fleet(reports):
    by_status = {status: [r['host'] for r in reports if r['status'] == status]
                 for status in ('ok', 'warning', 'error', 'failed')}
    common = {}
    for report in reports:
        for finding in report.get('findings', []):
            entry = common.setdefault(finding['check'], {'check': finding['check'], 'hosts': [],
                                                         'severity': 'info', 'findings': 0})
            entry['findings'] += 1
            if report['host'] not in entry['hosts']:
                entry['hosts'].append(report['host'])
            if RANK[finding['severity']] > RANK[entry['severity']]:
                entry['severity'] = finding['severity']
    most_common = sorted(common.values(), key=lambda e: (-len(e['hosts']), -RANK[e['severity']], e['check']))
    for entry in most_common:
        entry['count'] = len(entry['hosts'])
    fleet = {
        'hosts': len(reports),
        'audited': len(reports) - len(by_status['failed']),
        'ok': by_status['ok'],
        'warning': by_status['warning'],
        'broken': by_status['error'],
        'failed': by_status['failed'],
        'reasons': {r['host']: r['reason'] for r in reports if r['status'] == 'failed'},
        'common': most_common,
    }
    fleet['status'] = ('error' if fleet['broken'] or fleet['failed'] or not reports
                       else 'warning' if fleet['warning'] else 'ok')
    fleet['text'] = _fleet_text(fleet)
    return fleet


def _fleet_text(fleet, width=DEFAULT_WIDTH):
    lines = ['rail audit of %d host%s: %d ok, %d with warnings, %d broken, %d not audited'
             % (fleet['hosts'], '' if fleet['hosts'] == 1 else 's', len(fleet['ok']), len(fleet['warning']),
                len(fleet['broken']), len(fleet['failed']))]
    for label, hosts in (('broken', fleet['broken']), ('warnings', fleet['warning'])):
        if hosts:
            lines.extend(_wrap('%-12s %s' % (label + ':', ', '.join(hosts)), width, '  ', ' ' * 15))
    for host in fleet['failed']:
        lines.extend(_wrap('%-12s %s (%s)' % ('not audited:', host, fleet['reasons'][host]), width, '  ', ' ' * 15))
    if fleet['common']:
        lines.append('most common findings (hosts affected):')
        size = max(len(entry['check']) for entry in fleet['common'])
        for entry in fleet['common']:
            lines.append('  %s %s %4d  %s' % (SYMBOLS[entry['severity']], entry['check'].ljust(size), entry['count'],
                                              ', '.join(entry['hosts'][:5]) + (', ...' if entry['count'] > 5 else '')))
    if not fleet['hosts']:
        lines.append('no host was audited')
    return '\n'.join(lines)


def audit_fleet(results):
    """The fleet summary of {host: rail_audit result}; a value that is no usable result counts as failed."""
    return _fleet(_reports(results))


def audit_json(results, generated):
    """The JSON report document: format, generation time (given), fleet summary, every host in name order."""
    if not isinstance(generated, str) or not generated:
        raise AnsibleFilterError('audit_json: generated must be a non-empty string (the report time), got %r'
                                 % (generated,))
    reports = _reports(results)
    return {'format': REPORT_FORMAT, 'generated': generated, 'fleet': _fleet(reports), 'hosts': reports}


class FilterModule:
    """roce.multirail audit report filters."""

    def filters(self):
        return {'audit_table': audit_table, 'audit_fleet': audit_fleet, 'audit_json': audit_json}
