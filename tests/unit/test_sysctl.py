"""Unit tests for plugins/module_utils/sysctl.py: effective values, names, validation, decision.

desired_settings() runs against a fake net.ipv4.conf tree built in tmp_path (root=...).
"""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument
from ansible_collections.roce.multirail.plugins.module_utils.sysctl import (
    AND_KEYS,
    MAX_KEYS,
    OR_KEYS,
    Setting,
    SysctlChange,
    apply_sysctls,
    check_sysctl_lines,
    conf_path,
    decide_sysctls,
    desired_settings,
    device_dir,
    effective,
    explain,
    key_name,
    needed_pairs,
    read_value,
    render_sysctl_file,
    write_value,
)
from ansible_collections.roce.multirail.plugins.module_utils.plan import build_plan

KEYS = ('rp_filter', 'arp_ignore', 'arp_announce', 'accept_local', 'arp_filter', 'accept_redirects',
        'forwarding', 'log_martians', 'tag')
TARGETS = ('all', 'default', 'ib0', 'ib1', 'eth0.100')


@pytest.fixture
def conf(tmp_path):
    """A fake /proc/sys/net/ipv4/conf: every target has every key, all set to 0."""
    root = tmp_path / 'ipv4' / 'conf'
    for target in TARGETS:
        (root / target).mkdir(parents=True)
        for key in KEYS:
            (root / target / key).write_text('0\n')
    return str(root)


# --- effective ---------------------------------------------------------------

@pytest.mark.parametrize('all_value, dev_value, expected', [
    (1, 2, (2, 'max', 'dev')),
    (1, 0, (1, 'max', 'all')),
    (2, 0, (2, 'max', 'all')),
    (0, 0, (0, 'max', 'both')),
    (2, 2, (2, 'max', 'both')),
])
def test_effective_rp_filter_is_max(all_value, dev_value, expected):
    assert effective('rp_filter', all_value, dev_value) == expected


@pytest.mark.parametrize('key', ['arp_ignore', 'arp_announce', 'arp_accept', 'arp_notify'])
def test_effective_other_max_keys(key):
    assert effective(key, 0, 1) == (1, 'max', 'dev')
    assert effective(key, 2, 1) == (2, 'max', 'all')


@pytest.mark.parametrize('all_value, dev_value, expected', [
    (1, 0, (1, 'or', 'all')),
    (0, 1, (1, 'or', 'dev')),
    (1, 1, (1, 'or', 'both')),
    (0, 0, (0, 'or', 'both')),
    (2, 1, (1, 'or', 'both')),
])
def test_effective_accept_local_is_or(all_value, dev_value, expected):
    assert effective('accept_local', all_value, dev_value) == expected


@pytest.mark.parametrize('key', ['arp_filter', 'src_valid_mark', 'log_martians', 'proxy_arp'])
def test_effective_other_or_keys(key):
    assert effective(key, 0, 1) == (1, 'or', 'dev')


@pytest.mark.parametrize('all_value, dev_value, expected', [
    (1, 0, (0, 'and', 'dev')),
    (0, 1, (0, 'and', 'all')),
    (1, 1, (1, 'and', 'both')),
    (0, 0, (0, 'and', 'both')),
])
def test_effective_and_keys(all_value, dev_value, expected):
    assert effective('accept_source_route', all_value, dev_value) == expected
    assert effective('bootp_relay', all_value, dev_value) == expected


def test_key_families_are_disjoint():
    assert not (MAX_KEYS & OR_KEYS) and not (MAX_KEYS & AND_KEYS) and not (OR_KEYS & AND_KEYS)
    assert 'accept_redirects' not in MAX_KEYS | OR_KEYS | AND_KEYS


def test_effective_accept_redirects_host_is_or():
    assert effective('accept_redirects', 1, 0, forwarding=0) == (1, 'or', 'all')
    assert effective('accept_redirects', 0, 1, forwarding=0) == (1, 'or', 'dev')
    assert effective('accept_redirects', 0, 1) == (1, 'or', 'dev')


def test_effective_accept_redirects_router_is_and():
    assert effective('accept_redirects', 1, 0, forwarding=1) == (0, 'and', 'dev')
    assert effective('accept_redirects', 0, 1, forwarding=1) == (0, 'and', 'all')
    assert effective('accept_redirects', 1, 1, forwarding=1) == (1, 'and', 'both')


@pytest.mark.parametrize('key', ['forwarding', 'tag', 'medium_id', 'no_such_key'])
def test_effective_dev_only_keys(key):
    assert effective(key, 1, 0) == (0, 'dev', 'dev')
    assert effective(key, 0, 5) == (5, 'dev', 'dev')


# --- names -------------------------------------------------------------------

def test_key_name_and_device_dir():
    assert key_name('ib0', 'rp_filter') == 'net.ipv4.conf.ib0.rp_filter'
    assert key_name('all', 'accept_local') == 'net.ipv4.conf.all.accept_local'
    assert key_name('eth0.100', 'rp_filter') == 'net.ipv4.conf.eth0/100.rp_filter'
    assert key_name('eth0/100', 'rp_filter') == 'net.ipv4.conf.eth0/100.rp_filter'
    assert device_dir('eth0/100') == 'eth0.100'
    assert device_dir('eth0.100') == 'eth0.100'
    assert device_dir('ib0') == 'ib0'
    assert conf_path('eth0/100', 'arp_ignore', root='/r') == '/r/eth0.100/arp_ignore'


def test_read_and_write_value(conf):
    write_value('eth0/100', 'rp_filter', 2, root=conf)
    assert open(os.path.join(conf, 'eth0.100', 'rp_filter')).read() == '2\n'
    assert read_value('eth0.100', 'rp_filter', root=conf) == 2
    with open(os.path.join(conf, 'ib0', 'tag'), 'w') as handle:
        handle.write('7\t\n')
    assert read_value('ib0', 'tag', root=conf) == 7


# --- desired_settings --------------------------------------------------------

def test_desired_settings_rail_defaults(conf):
    settings_ = desired_settings({
        'all': {'rp_filter': 2, 'accept_local': 1},
        'ib0': {'arp_ignore': 1, 'arp_announce': 2, 'rp_filter': '2'},
        'eth0/100': {'arp_ignore': '0x1'},
        'default': {'forwarding': 1},
    }, root=conf)
    assert settings_ == [
        Setting('all', 'rp_filter', 2), Setting('all', 'accept_local', 1),
        Setting('ib0', 'arp_ignore', 1), Setting('ib0', 'arp_announce', 2), Setting('ib0', 'rp_filter', 2),
        Setting('eth0.100', 'arp_ignore', 1),
        Setting('default', 'forwarding', 1),
    ]


def test_desired_settings_dotted_name_as_is(conf):
    assert desired_settings({'eth0.100': {'rp_filter': 1}}, root=conf) == [Setting('eth0.100', 'rp_filter', 1)]


def test_desired_settings_keys_without_allowed_values(conf):
    assert desired_settings({'ib0': {'tag': 12345, 'log_martians': '1'}}, root=conf) == [
        Setting('ib0', 'tag', 12345), Setting('ib0', 'log_martians', 1)]


@pytest.mark.parametrize('value', [None, {}, [], 'ib0', [{'ib0': {'rp_filter': 2}}]])
def test_desired_settings_empty_or_not_a_mapping(conf, value):
    with pytest.raises(InvalidArgument, match=r'^conf: expected a mapping of interface'):
        desired_settings(value, root=conf)


def test_desired_settings_unknown_interface(conf):
    with pytest.raises(InvalidArgument) as err:
        desired_settings({'ib0': {'rp_filter': 2}, 'ib9': {'rp_filter': 2}}, root=conf)
    assert str(err.value) == ('conf.ib9: no interface ib9 in this network namespace (%s/ib9 does not exist)'
                              % conf)


@pytest.mark.parametrize('target', ['.', '..', ''])
def test_desired_settings_refuses_path_like_targets(conf, tmp_path, target):
    # /proc/sys/net/ipv4/conf/.. is /proc/sys/net/ipv4, which holds ip_forward & co:
    # a target must be an interface, never a way out of net.ipv4.conf.
    (tmp_path / 'ipv4' / 'ip_forward').write_text('0\n')
    (tmp_path / 'ipv4' / 'conf' / 'ip_forward').write_text('0\n')
    (tmp_path / 'ipv4' / 'conf' / 'all' / 'ip_forward').write_text('0\n')
    with pytest.raises(InvalidArgument):
        desired_settings({target: {'ip_forward': 1}}, root=conf)


@pytest.mark.parametrize('keys', [{}, None, 2, ['rp_filter']])
def test_desired_settings_keys_must_be_a_mapping(conf, keys):
    with pytest.raises(InvalidArgument, match=r'^conf.ib0: expected a mapping of key to value, got '):
        desired_settings({'ib0': keys}, root=conf)


@pytest.mark.parametrize('key', ['rp_filtre', '../all/rp_filter', 'rp_filter/x', '', '.', '..'])
def test_desired_settings_unknown_key(conf, key):
    with pytest.raises(InvalidArgument) as err:
        desired_settings({'ib0': {key: 1}}, root=conf)
    # An empty key is quoted so the message still shows one.
    assert str(err.value).startswith('conf.ib0: %s is not a key of net.ipv4.conf (no ' % (key or "''"))


def test_desired_settings_key_that_is_a_directory(conf):
    os.mkdir(os.path.join(conf, 'ib0', 'neigh'))
    with pytest.raises(InvalidArgument, match=r'^conf.ib0: neigh is not a key of net.ipv4.conf'):
        desired_settings({'ib0': {'neigh': 1}}, root=conf)


@pytest.mark.parametrize('value', ['loose', '', '2.0', 2.0, None, True, [2]])
def test_desired_settings_non_integer(conf, value):
    with pytest.raises(InvalidArgument) as err:
        desired_settings({'ib0': {'rp_filter': value}}, root=conf)
    assert str(err.value) == 'conf.ib0: rp_filter %r is not an integer' % (value,)


@pytest.mark.parametrize('key, value, allowed', [
    ('rp_filter', 3, '0, 1, 2'),
    ('rp_filter', -1, '0, 1, 2'),
    ('arp_ignore', 4, '0, 1, 2, 3, 8'),
    ('arp_ignore', '9', '0, 1, 2, 3, 8'),
    ('arp_announce', 3, '0, 1, 2'),
    ('accept_local', 2, '0, 1'),
    ('arp_filter', '0x2', '0, 1'),
])
def test_desired_settings_out_of_range(conf, key, value, allowed):
    with pytest.raises(InvalidArgument) as err:
        desired_settings({'ib1': {key: value}}, root=conf)
    assert str(err.value) == 'conf.ib1: %s %r is not one of %s' % (key, value, allowed)


@pytest.mark.parametrize('key, value', [('arp_ignore', 8), ('arp_ignore', 3), ('rp_filter', 0), ('accept_local', 1)])
def test_desired_settings_allowed_edges(conf, key, value):
    assert desired_settings({'ib1': {key: value}}, root=conf) == [Setting('ib1', key, value)]


def test_desired_settings_same_interface_twice(conf):
    with pytest.raises(InvalidArgument) as err:
        desired_settings({'eth0.100': {'rp_filter': 2}, 'eth0/100': {'arp_ignore': 1}}, root=conf)
    assert str(err.value) == 'conf: eth0.100 and eth0/100 name the same interface'


@pytest.mark.skipif(not os.path.isfile('/proc/sys/net/ipv4/conf/all/mc_forwarding'),
                    reason='no /proc/sys/net/ipv4/conf/all/mc_forwarding here')
def test_desired_settings_read_only_key_in_proc():
    # mc_forwarding is 0444 in procfs, and procfs enforces modes even for root (a chmod 0444 file in
    # tmp_path would not do: root's access(W_OK) ignores mode bits there). Nothing is written.
    with pytest.raises(InvalidArgument) as err:
        desired_settings({'all': {'mc_forwarding': 1}})
    assert str(err.value) == 'conf.all: net.ipv4.conf.all.mc_forwarding is read-only'


# --- decide_sysctls ----------------------------------------------------------

def test_decide_sysctls():
    settings_ = [Setting('all', 'rp_filter', 2), Setting('ib0', 'arp_ignore', 1), Setting('ib0', 'rp_filter', 2)]
    current = {('all', 'rp_filter'): 1, ('ib0', 'arp_ignore'): 1, ('ib0', 'rp_filter'): 0, ('ib1', 'x'): 9}
    assert decide_sysctls(current, settings_) == (SysctlChange('all', 'rp_filter', 1, 2),
                                                  SysctlChange('ib0', 'rp_filter', 0, 2))
    done = dict(current)
    done[('all', 'rp_filter')] = 2
    done[('ib0', 'rp_filter')] = 2
    assert decide_sysctls(done, settings_) == ()
    assert decide_sysctls({}, []) == ()


# --- explain / needed_pairs --------------------------------------------------

def test_explain_shape():
    settings_ = [Setting('all', 'rp_filter', 2), Setting('all', 'accept_local', 1),
                 Setting('default', 'rp_filter', 2),
                 Setting('ib0', 'arp_ignore', 1), Setting('ib0', 'rp_filter', 2),
                 Setting('eth0.100', 'arp_announce', 2)]
    values = {('all', 'rp_filter'): 1, ('all', 'accept_local'): 1, ('all', 'arp_ignore'): 0,
              ('all', 'arp_announce'): 0, ('default', 'rp_filter'): 2,
              ('ib0', 'rp_filter'): 2, ('ib0', 'accept_local'): 0, ('ib0', 'arp_ignore'): 1,
              ('eth0.100', 'rp_filter'): 0, ('eth0.100', 'accept_local'): 0, ('eth0.100', 'arp_announce'): 2}
    assert explain(settings_, values) == {
        'eth0.100': {
            'accept_local': {'value': 1, 'all': 1, 'dev': 0, 'rule': 'or', 'decided_by': 'all'},
            'arp_announce': {'value': 2, 'all': 0, 'dev': 2, 'rule': 'max', 'decided_by': 'dev'},
            'rp_filter': {'value': 1, 'all': 1, 'dev': 0, 'rule': 'max', 'decided_by': 'all'},
        },
        'ib0': {
            'accept_local': {'value': 1, 'all': 1, 'dev': 0, 'rule': 'or', 'decided_by': 'all'},
            'arp_ignore': {'value': 1, 'all': 0, 'dev': 1, 'rule': 'max', 'decided_by': 'dev'},
            'rp_filter': {'value': 2, 'all': 1, 'dev': 2, 'rule': 'max', 'decided_by': 'dev'},
        },
    }


def test_explain_accept_redirects_uses_the_devices_forwarding():
    settings_ = [Setting('ib0', 'accept_redirects', 1), Setting('ib1', 'accept_redirects', 1)]
    values = {('all', 'accept_redirects'): 0, ('ib0', 'accept_redirects'): 1, ('ib1', 'accept_redirects'): 1,
              ('ib0', 'forwarding'): 1, ('ib1', 'forwarding'): 0}
    result = explain(settings_, values)
    assert result['ib0']['accept_redirects'] == {'value': 0, 'all': 0, 'dev': 1, 'rule': 'and', 'decided_by': 'all'}
    assert result['ib1']['accept_redirects'] == {'value': 1, 'all': 0, 'dev': 1, 'rule': 'or', 'decided_by': 'dev'}


def test_explain_without_devices_is_empty():
    assert explain([Setting('all', 'rp_filter', 2), Setting('default', 'rp_filter', 2)],
                   {('all', 'rp_filter'): 2, ('default', 'rp_filter'): 2}) == {}


def test_needed_pairs():
    settings_ = [Setting('all', 'rp_filter', 2), Setting('default', 'arp_ignore', 1),
                 Setting('ib0', 'arp_ignore', 1), Setting('eth0.100', 'accept_redirects', 0)]
    assert needed_pairs(settings_) == sorted({
        ('all', 'rp_filter'), ('all', 'arp_ignore'), ('all', 'accept_redirects'),
        ('default', 'arp_ignore'),
        ('ib0', 'rp_filter'), ('ib0', 'arp_ignore'), ('ib0', 'accept_redirects'), ('ib0', 'forwarding'),
        ('eth0.100', 'rp_filter'), ('eth0.100', 'arp_ignore'), ('eth0.100', 'accept_redirects'),
        ('eth0.100', 'forwarding'),
    })
    assert needed_pairs([Setting('all', 'rp_filter', 2)]) == [('all', 'rp_filter')]
    assert needed_pairs([]) == []


_SETTINGS = st.lists(st.builds(Setting, st.sampled_from(TARGETS), st.sampled_from(KEYS), st.integers(0, 2)),
                     max_size=8)


@settings(max_examples=200, deadline=None)
@given(settings_=_SETTINGS, data=st.data())
def test_explain_reads_only_needed_pairs(settings_, data):
    """What the module reads (needed_pairs) is always enough for explain() and decide_sysctls()."""
    pairs = needed_pairs(settings_)
    assert len(pairs) == len(set(pairs))
    values = {pair: data.draw(st.integers(0, 2)) for pair in pairs}
    decide_sysctls(values, settings_)
    result = explain(settings_, values)
    assert set(result) == {s.target for s in settings_ if s.target not in ('all', 'default')}
    for device, entry in result.items():
        for key, facts in entry.items():
            assert (facts['all'], facts['dev']) == (values[('all', key)], values[(device, key)])
            assert facts['decided_by'] in ('all', 'dev', 'both')


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(sorted(MAX_KEYS | OR_KEYS | AND_KEYS | {'accept_redirects'})),
       all_value=st.integers(0, 3), dev_value=st.integers(0, 3), forwarding=st.integers(0, 1))
def test_effective_decided_by_is_honest(key, all_value, dev_value, forwarding):
    """'dev' (or 'all'): making that side agree with the other changes the result; 'both': either side alone
    would give the result."""
    value, rule, side = effective(key, all_value, dev_value, forwarding)
    assert rule in ('max', 'or', 'and')
    if side == 'dev':
        assert effective(key, all_value, all_value, forwarding)[0] != value
    elif side == 'all':
        assert effective(key, dev_value, dev_value, forwarding)[0] != value
    else:
        assert side == 'both'
        assert effective(key, all_value, all_value, forwarding)[0] == value
        assert effective(key, dev_value, dev_value, forwarding)[0] == value


def test_a_refused_write_puts_back_the_keys_already_written(tmp_path):
    """The kernel refusing a write (here: the key is a directory) leaves every key as it was.

    Validation now refuses every value the kernel would refuse, so the real kernel
    gives no such write to test with; a conf tree in tmp_path does.
    """
    for target, key, value in (('all', 'rp_filter', 1), ('ib0', 'arp_ignore', 0), ('ib0', 'rp_filter', 1)):
        (tmp_path / target).mkdir(exist_ok=True)
        (tmp_path / target / key).write_text('%d\n' % value)
    (tmp_path / 'ib1').mkdir()
    (tmp_path / 'ib1' / 'rp_filter').mkdir()
    changes = [SysctlChange('all', 'rp_filter', 1, 2), SysctlChange('ib0', 'arp_ignore', 0, 1),
               SysctlChange('ib1', 'rp_filter', 1, 2), SysctlChange('ib0', 'rp_filter', 1, 2)]
    with pytest.raises(InvalidArgument) as caught:
        apply_sysctls(changes, root=str(tmp_path))
    assert str(caught.value).startswith('writing net.ipv4.conf.ib1.rp_filter = 2 failed: ')
    assert str(caught.value).endswith('; 2 earlier key(s) restored')
    kept = (('all', 'rp_filter'), ('ib0', 'arp_ignore'), ('ib0', 'rp_filter'))
    assert [read_value(t, k, root=str(tmp_path)) for t, k in kept] == [1, 0, 1]


# --- the sysctl.d file ---------------------------------------------------------

SYSCTL_D_TEXTBOOK = """\
# Written by roce.multirail.rail_persist (source_routing role); local changes are overwritten.
# Per-rail ARP and reverse-path settings, applied at boot by systemd-sysctl.
# A later file in /etc/sysctl.d setting the same key wins over this one.
net.ipv4.conf.all.accept_local = 1
net.ipv4.conf.all.rp_filter = 2
net.ipv4.conf.eth0/100.arp_announce = 2
net.ipv4.conf.eth0/100.arp_ignore = 1
net.ipv4.conf.eth0/100.rp_filter = 2
net.ipv4.conf.ib0.arp_announce = 2
net.ipv4.conf.ib0.arp_ignore = 1
net.ipv4.conf.ib0.rp_filter = 2
"""


def test_sysctl_file_of_a_plan_is_its_lines_under_the_header():
    lines = build_plan([{'device': 'ib0', 'address': '10.0.1.14/24'},
                        {'device': 'eth0.100', 'address': '10.0.2.14/24'}])['sysctl_lines']
    assert check_sysctl_lines(lines) == lines
    assert render_sysctl_file(check_sysctl_lines(lines)) == SYSCTL_D_TEXTBOOK


def test_sysctl_file_without_lines_is_the_header_alone():
    assert check_sysctl_lines([]) == []
    assert render_sysctl_file([]) == '\n'.join(SYSCTL_D_TEXTBOOK.splitlines()[:3]) + '\n'


def test_sysctl_lines_are_written_in_canonical_form():
    assert check_sysctl_lines(['net.ipv4.conf.default.forwarding=1', 'net.ipv4.conf.ib0.arp_ignore \t=  1',
                               'net.ipv4.conf.ib1.rp_filter = -0']) == [
        'net.ipv4.conf.default.forwarding = 1', 'net.ipv4.conf.ib0.arp_ignore = 1', 'net.ipv4.conf.ib1.rp_filter = 0']


GOOD = 'net.ipv4.conf.ib0.rp_filter = 2'


@pytest.mark.parametrize('bad, words', [
    ('net.ipv4.conf.ib0.rp_filter = 2\nnet.ipv4.ip_forward = 1', ['holds a line break']),
    ('net.ipv4.conf.ib0.rp_filter = 2\r', ['holds a line break']),
    ('net.ipv4.conf.ib1.rp_filter 2', ['is not a "net.ipv4.conf.<interface, all or default>.<key> = <integer>"']),
    ('net.ipv4.ip_forward = 1', ['is not a']),
    ('net.ipv4.conf.ib1.rp_filter = loose', ['is not a']),
    ('net.ipv4.conf.ib1.rp_filter = 2 # loose', ['is not a']),
    (' net.ipv4.conf.ib1.rp_filter = 2', ['is not a']),
    ('-net.ipv4.conf.ib1.rp_filter = 2', ['is not a']),
    ('net.ipv4.conf.eth0.100.rp_filter = 2', ['is not a']),
    ('net.ipv4.conf.ib1.rp_filter = 2147483648', ['2147483648 is out of range']),
    ('net.ipv4.conf.averyveryverylongname.rp_filter = 2',
     ['interface', 'averyveryverylongname', 'is not a valid interface name']),
    ('net.ipv4.conf.ib0.rp_filter = 1', ['sets net.ipv4.conf.ib0.rp_filter again, after sysctl_lines[0]']),
    (5, ['5 is not a string']),
])
def test_a_bad_sysctl_line_is_refused_naming_its_index_and_value(bad, words):
    with pytest.raises(InvalidArgument) as caught:
        check_sysctl_lines([GOOD, 'net.ipv4.conf.all.rp_filter = 2', bad])
    message = str(caught.value)
    assert message.startswith('sysctl_lines[2]: '), message
    assert repr(bad) in message, message
    for word in words:
        assert word in message, '%r not in %r' % (word, message)


def test_sysctl_lines_must_be_a_list():
    with pytest.raises(InvalidArgument, match=r"^sysctl_lines: expected a list"):
        check_sysctl_lines(GOOD)


# Lines near the valid form, with the characters that could break a line or add a setting.
NEAR_LINES = st.builds(
    'net.ipv4.conf.{}.{}{}{}'.format,
    st.sampled_from(['all', 'default', 'ib0', 'eth0/100']) | st.text(alphabet='ib0/.= \n#-', min_size=1, max_size=6),
    st.sampled_from(['rp_filter', 'arp_ignore']) | st.text(alphabet='rp_f0.= \n#', min_size=1, max_size=6),
    st.sampled_from([' = ', '=', ' =\t', '\n', ' ', '==']),
    st.integers(-3, 3).map(str) | st.text(alphabet='012-+ \n#=', max_size=4))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=60) | NEAR_LINES, max_size=4))
def test_sysctl_file_holds_exactly_one_setting_per_accepted_line(lines):
    """Whatever is accepted, the file gains exactly one key = value line per line given, nothing more."""
    try:
        canonical = check_sysctl_lines(lines)
    except InvalidArgument:
        return
    text = render_sysctl_file(canonical)
    settings_in_file = [line for line in text.splitlines() if not line.startswith('#')]
    assert settings_in_file == canonical and len(canonical) == len(lines)
