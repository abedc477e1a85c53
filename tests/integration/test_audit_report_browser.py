# -*- coding: utf-8 -*-
"""The HTML audit report in a real headless Chromium.

A mixed-health fleet (healthy, warnings only, broken with a host-wide finding, broken, unreachable)
is made from hand-made rail_audit results with the collection's filters; Ansible's template module
renders playbooks/templates/audit_report.html.j2 from it exactly as playbooks/audit.yml does; Chromium
loads the file, and the DOM it built is checked for every host, every finding and the colour class of
every cell; a screenshot proves that the page renders. Needs /usr/bin/chromium (Debian `chromium`,
installed by `make test`); skipped without it.
"""

import json
import os
import struct
import subprocess
from html.parser import HTMLParser

import pytest

from collection_path import REPO
from roleruns import ansible_env

CHROMIUM = '/usr/bin/chromium'
TEMPLATE = os.path.join(REPO, 'playbooks', 'templates', 'audit_report.html.j2')
GENERATED = '2026-01-02T03:04:05Z'
CHECKS = ['rule', 'rule_order', 'table', 'gateway', 'route_get', 'arp', 'rp_filter', 'accept_local', 'duplicate',
          'link', 'mtu', 'sysctl_files', 'boot', 'martians']
WINDOW = (1280, 2400)

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                reason='%s is missing (Debian package chromium; `make test` installs it)' % CHROMIUM)


def finding(check, device, severity, message, hint):
    return {'check': check, 'device': device, 'severity': severity, 'message': message, 'hint': hint}


def result(rails, findings=()):
    return {'changed': False, 'checks': CHECKS, 'findings': list(findings),
            'rails': [{'device': 'ib%d' % index, 'addresses': ['10.0.%d.14/24' % (index + 1)], 'state': 'up',
                       'carrier': True, 'mtu': 4200, 'table': 101 + index} for index in range(rails)],
            'summary': {}}


FLEET = {
    'gpu01': result(4),
    'gpu02': result(4, [
        finding('arp', 'ib3', 'warning', 'ib3 answers ARP requests for 10.0.1.14',
                'sysctl -w net.ipv4.conf.ib3.arp_ignore=1'),
        finding('martians', None, 'info', 'no reverse-path drops in 1 s', '')]),
    'gpu03': result(4, [
        finding('rule', 'ib1', 'error', 'no rule from 10.0.2.14: it leaves through ib0',
                'ip rule add priority 1002 from 10.0.2.14 lookup 102'),
        finding('route_get', 'ib2', 'error', 'route get from 10.0.3.14 goes out of ib0 via <none>',
                'run playbooks/site.yml'),
        finding('sysctl_files', None, 'error', '/etc/sysctl.d/99-zz-cloud.conf sets all.rp_filter = 1 after ours',
                'delete that line'),
        finding('mtu', 'ib3', 'warning', 'mtu 1500 differs from the other rails (4200)', 'ip link set ib3 mtu 4200')]),
    'gpu04': {'unreachable': True, 'changed': False, 'msg': 'netns: network namespace gpu04 does not exist'},
    'gpu10': result(2, [
        finding('rp_filter', 'ib0', 'error', 'rp_filter 1 on ib0 drops replies',
                'sysctl -w net.ipv4.conf.ib0.rp_filter=2'),
        finding('rp_filter', 'ib0', 'warning', 'rp_filter of all is 1', 'sysctl -w net.ipv4.conf.all.rp_filter=2'),
        finding('link', 'ib1', 'error', 'ib1 has no carrier', 'check the cable of ib1')]),
}
# Counted by hand: gpu03 rule/ib1, route_get/ib2, sysctl_files on its 4 rails; gpu10 rp_filter/ib0, link/ib1.
ERROR_CELLS = 8
WARNING_CELLS = 2      # gpu02 arp/ib3, gpu03 mtu/ib3 (gpu10's rp_filter warning sits under an error)
INFO_CELLS = 4         # gpu02 martians on its 4 rails


class Dom(HTMLParser):
    """What the tests look for in Chromium's DOM: cells by class, texts by class, hosts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.cells, self.texts, self.tags = [], {}, []
        self._open = []

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get('class') or '').split()
        self.tags.append(tag)
        if tag in ('meta', 'br', 'link', 'img', 'input', 'hr'):
            return
        self._open.append((tag, classes, []))

    def handle_data(self, data):
        for _tag, _classes, parts in self._open:
            parts.append(data)

    def handle_endtag(self, tag):
        while self._open:
            name, classes, parts = self._open.pop()
            text = ''.join(parts)
            if name == 'td' and 'cell' in classes:
                self.cells.append((classes[1], text))
            for cls in classes:
                self.texts.setdefault(cls, []).append(text)
            if name == tag:
                break


def chromium(tmp_path, *args):
    """Run headless Chromium on its own profile; return its stdout."""
    home = tmp_path / 'chromium-home'
    home.mkdir(exist_ok=True)
    proc = subprocess.run(
        [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--user-data-dir=%s' % (tmp_path / 'chromium-profile')] + list(args),
        capture_output=True, text=True, timeout=60, check=False,
        env=dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home), XDG_CACHE_HOME=str(home)))
    assert proc.returncode == 0, 'chromium failed (rc %d): %s' % (proc.returncode, proc.stderr[-2000:])
    return proc.stdout


def render_with_ansible(tmp_path):
    """Template the report as playbooks/audit.yml does: audit_json, then the template module."""
    (tmp_path / 'results.json').write_text(json.dumps({'results': FLEET}))
    html = tmp_path / 'report.html'
    playbook = tmp_path / 'render.yml'
    playbook.write_text(json.dumps([{
        'name': 'Render the audit report', 'hosts': 'localhost', 'gather_facts': False,
        'tasks': [{'name': 'Render', 'ansible.builtin.template': {'src': TEMPLATE, 'dest': str(html), 'mode': '0644'},
                   'vars': {'rail_audit_report': "{{ results | roce.multirail.audit_json('%s') }}" % GENERATED}}],
    }]))
    env = dict(ansible_env(tmp_path), ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    proc = subprocess.run([os.path.join(REPO, '.venv', 'bin', 'ansible-playbook'),
                           '-e', '@' + str(tmp_path / 'results.json'), str(playbook)],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return html


def png_size(path):
    """(width, height) from the IHDR chunk of a PNG file."""
    with open(path, 'rb') as handle:
        head = handle.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n' and head[12:16] == b'IHDR', head
    return struct.unpack('>II', head[16:24])


def test_report_loads_in_chromium_with_every_host_finding_and_coloured_cell(tmp_path):
    html = render_with_ansible(tmp_path)
    source = html.read_text(encoding='utf-8')
    assert source.startswith('<!DOCTYPE html>')

    dom = Dom()
    dom.feed(chromium(tmp_path, '--dump-dom', html.as_uri()))

    assert dom.texts['hostname'] == ['gpu01', 'gpu02', 'gpu03', 'gpu04', 'gpu10']
    messages = [f['message'] for r in FLEET.values() for f in r.get('findings', [])]
    hints = ['fix: ' + f['hint'] for r in FLEET.values() for f in r.get('findings', []) if f['hint']]
    assert sorted(dom.texts['message']) == sorted(messages)
    assert sorted(text.strip() for text in dom.texts['hint']) == sorted(hints)
    # The <none> of a message is text, not an element.
    assert 'none' not in dom.tags and 'route get from 10.0.3.14 goes out of ib0 via <none>' in dom.texts['message']
    assert dom.texts['reason'] == ['unreachable: netns: network namespace gpu04 does not exist']

    assert [text for cls, text in dom.cells if cls == 'error'] == ['\u2717'] * ERROR_CELLS
    assert [text for cls, text in dom.cells if cls == 'warning'] == ['!'] * WARNING_CELLS
    assert [text for cls, text in dom.cells if cls == 'info'] == ['i'] * INFO_CELLS
    rails = 4 + 4 + 4 + 2
    assert len(dom.cells) == rails * len(CHECKS)
    assert {text for cls, text in dom.cells if cls == 'ok'} == {'\u2713'}

    # The fleet summary at the top: counts and the broken hosts.
    counts = [text.strip() for text in dom.texts['badge'][1:5]]
    assert counts == ['1 ok', '1 with warnings', '2 broken', '1 not audited'], dom.texts['badge']
    groups = dom.texts['groups'][0]
    for line in ('Broken', 'gpu03, gpu10', 'With warnings', 'gpu02', 'Not audited',
                 'gpu04 (unreachable: netns: network namespace gpu04 does not exist)'):
        assert line in [text.strip() for text in groups.splitlines()], (line, groups)
    assert not {'script', 'link', 'img', 'iframe'} & set(dom.tags)


def test_report_screenshot_renders(tmp_path):
    html = render_with_ansible(tmp_path)
    shot = tmp_path / 'report.png'
    chromium(tmp_path, '--hide-scrollbars', '--window-size=%d,%d' % WINDOW, '--screenshot=%s' % shot, html.as_uri())
    assert shot.is_file()
    assert png_size(shot) == WINDOW
    # A blank page of this size compresses to a few kilobytes; text, tables and colours do not.
    assert shot.stat().st_size > 60000, shot.stat().st_size
