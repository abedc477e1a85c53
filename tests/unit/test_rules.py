"""Unit tests for plugins/module_utils/rules.py: dump normalization, parsing, the decision.

The header/attrs pairs below are real RTM_NEWRULE dumps (pyroute2, kernel 6.x) of rules
made with `ip rule add ...`; the expected texts are what `ip rule` printed for them.
"""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument, parse_prefix
from ansible_collections.roce.multirail.plugins.module_utils.rules import (
    Rule,
    add_conflicts,
    canonical_prefix,
    check_priority_range,
    ipv4_host,
    decide_rules,
    delete_hits,
    desired_rules,
    plan_rule_ops,
    render_rules,
    rule_from_dump,
)

SUPPRESS = 0xFFFFFFFF


def hdr(**kw):
    base = {'family': 2, 'src_len': 0, 'dst_len': 0, 'tos': 0, 'table': 0, 'action': 1, 'flags': 0}
    base.update(kw)
    return base


# `ip rule add priority 1001 from 10.0.1.14 lookup 101 proto static`
RAIL_RULE = (hdr(src_len=32, table=101),
             {'FRA_TABLE': 101, 'FRA_SUPPRESS_PREFIXLEN': 4294967295, 'FRA_PROTOCOL': 4,
              'FRA_PRIORITY': 1001, 'FRA_SRC': '10.0.1.14'})
# `ip rule add priority 1002 from 10.0.1.14 lookup 300000 proto static`
BIG_TABLE_RULE = (hdr(src_len=32, table=252),
                  {'FRA_TABLE': 300000, 'FRA_SUPPRESS_PREFIXLEN': 4294967295, 'FRA_PROTOCOL': 4,
                   'FRA_PRIORITY': 1002, 'FRA_SRC': '10.0.1.14'})
# The kernel's own rules.
LOCAL_RULE = (hdr(table=255), {'FRA_TABLE': 255, 'FRA_SUPPRESS_PREFIXLEN': 4294967295, 'FRA_PROTOCOL': 2})
MAIN_RULE = (hdr(table=254), {'FRA_TABLE': 254, 'FRA_SUPPRESS_PREFIXLEN': 4294967295, 'FRA_PROTOCOL': 2,
                              'FRA_PRIORITY': 32766})
# `ip rule add priority 1003 fwmark 0x10 lookup 102`
FWMARK_RULE = (hdr(table=102), {'FRA_TABLE': 102, 'FRA_SUPPRESS_PREFIXLEN': 4294967295, 'FRA_PROTOCOL': 0,
                                'FRA_PRIORITY': 1003, 'FRA_FWMARK': 16, 'FRA_FWMASK': 4294967295})
# `ip rule add priority 1004 fwmark 0/0xff lookup 102` (the kernel sends no FRA_FWMARK for mark 0)
FWMARK_ZERO_RULE = (hdr(table=102), {'FRA_TABLE': 102, 'FRA_SUPPRESS_PREFIXLEN': 4294967295,
                                     'FRA_PROTOCOL': 0, 'FRA_PRIORITY': 1004, 'FRA_FWMASK': 255})
# `ip rule add priority 1005 not from 10.0.2.0/24 lookup 103`
INVERT_RULE = (hdr(src_len=24, table=103, flags=2),
               {'FRA_TABLE': 103, 'FRA_SUPPRESS_PREFIXLEN': 4294967295, 'FRA_PROTOCOL': 0,
                'FRA_PRIORITY': 1005, 'FRA_SRC': '10.0.2.0'})
# `ip rule add priority 1006 from 10.0.1.14 iif ib0 lookup 104 uidrange 100-200`
UID_RULE = (hdr(src_len=32, table=104),
            {'FRA_TABLE': 104, 'FRA_SUPPRESS_PREFIXLEN': 4294967295, 'FRA_PROTOCOL': 0,
             'FRA_IIFNAME': 'ib0', 'FRA_PRIORITY': 1006, 'FRA_UID_RANGE': '100:200', 'FRA_SRC': '10.0.1.14'})
# `ip rule add priority 1007 to 10.0.9.0/24 oif ib0 tos 0x10 lookup 105 proto boot`
TOS_BOOT_RULE = (hdr(dst_len=24, tos=16, table=105),
                 {'FRA_TABLE': 105, 'FRA_SUPPRESS_PREFIXLEN': 4294967295, 'FRA_PROTOCOL': 3,
                  'FRA_OIFNAME': 'ib0', 'FRA_PRIORITY': 1007, 'FRA_DST': '10.0.9.0'})


def static(priority=1001, src='10.0.1.14/32', table=101, **kw):
    return Rule(family=4, priority=priority, src=src, table=table, **kw)


# --- rule_from_dump ----------------------------------------------------------

def test_rule_from_dump_rail_rule():
    expected = Rule(family=4, priority=1001, src='10.0.1.14/32', table=101, action='lookup', proto=4, extra=())
    assert rule_from_dump(*RAIL_RULE) == expected


def test_rule_from_dump_takes_table_from_attribute_not_header():
    rule = rule_from_dump(*BIG_TABLE_RULE)
    assert rule.table == 300000
    assert rule == static(priority=1002, table=300000)


def test_rule_from_dump_table_from_header_when_no_attribute():
    header, attrs = RAIL_RULE
    attrs = dict(attrs)
    del attrs['FRA_TABLE']
    assert rule_from_dump(header, attrs).table == 101


def test_rule_from_dump_local_rule_has_priority_zero():
    rule = rule_from_dump(*LOCAL_RULE)
    assert rule == Rule(family=4, priority=0, table=255, proto=2)
    assert rule.src == '' and rule.dst == ''


@pytest.mark.parametrize('family', [128, 7, 0, None])
def test_rule_from_dump_ignores_other_families(family):
    header, attrs = RAIL_RULE
    assert rule_from_dump(dict(header, family=family), attrs) is None


def test_rule_from_dump_ipv6():
    rule = rule_from_dump(hdr(family=10, src_len=128, table=101),
                          {'FRA_TABLE': 101, 'FRA_PROTOCOL': 4, 'FRA_PRIORITY': 1001,
                           'FRA_SRC': '2001:db8::1', 'FRA_SUPPRESS_PREFIXLEN': SUPPRESS})
    assert rule == Rule(family=6, priority=1001, src='2001:db8::1/128', table=101)


def test_rule_from_dump_canonical_prefixes():
    rule = rule_from_dump(hdr(src_len=24, dst_len=16, table=101),
                          {'FRA_TABLE': 101, 'FRA_PRIORITY': 5, 'FRA_SRC': '10.0.1.0', 'FRA_DST': '10.9.0.0'})
    assert (rule.src, rule.dst) == ('10.0.1.0/24', '10.9.0.0/16')


def test_rule_from_dump_fwmark_forms():
    assert rule_from_dump(*FWMARK_RULE)[6:8] == (0x10, SUPPRESS)
    assert rule_from_dump(*FWMARK_ZERO_RULE)[6:8] == (0, 0xFF)
    # A mark without a mask attribute means the full mask.
    only_mark = rule_from_dump(hdr(table=102), {'FRA_TABLE': 102, 'FRA_PRIORITY': 1, 'FRA_FWMARK': 7})
    assert (only_mark.fwmark, only_mark.fwmask) == (7, SUPPRESS)
    assert rule_from_dump(*RAIL_RULE)[6:8] == (0, 0)


def test_rule_from_dump_default_valued_attributes_are_not_extra():
    header, attrs = RAIL_RULE
    attrs = dict(attrs, FRA_SUPPRESS_IFGROUP=SUPPRESS, FRA_L3MDEV=0, FRA_TUN_ID=0, FRA_IP_PROTO=0,
                 FRA_PAD=None)
    assert rule_from_dump(header, attrs) == rule_from_dump(*RAIL_RULE)


@pytest.mark.parametrize('name, value', [
    ('FRA_UID_RANGE', '100:200'),
    ('FRA_SUPPRESS_PREFIXLEN', 0),
    ('FRA_SUPPRESS_IFGROUP', 3),
    ('FRA_L3MDEV', 1),
    ('FRA_IP_PROTO', 6),
    ('FRA_SPORT_RANGE', '1000:2000'),
    ('FRA_GOTO', 2000),
])
def test_rule_from_dump_extra_selectors_make_the_rule_different(name, value):
    header, attrs = RAIL_RULE
    rule = rule_from_dump(header, dict(attrs, **{name: value}))
    plain = rule_from_dump(*RAIL_RULE)
    assert rule != plain
    assert rule.selector() != plain.selector()
    assert (name, str(value)) in rule.extra


def test_rule_from_dump_tos_is_extra():
    rule = rule_from_dump(*TOS_BOOT_RULE)
    assert ('FRA_TOS', '0x10') in rule.extra
    assert rule.dst == '10.0.9.0/24' and rule.oif == 'ib0' and rule.proto == 3
    assert rule != rule_from_dump(dict(TOS_BOOT_RULE[0], tos=0), TOS_BOOT_RULE[1])


def test_rule_from_dump_invert_flag():
    rule = rule_from_dump(*INVERT_RULE)
    assert ('FRA_FLAGS', 'not') in rule.extra
    plain = rule_from_dump(dict(INVERT_RULE[0], flags=0), INVERT_RULE[1])
    assert plain.extra == ()
    assert rule != plain


def test_rule_from_dump_iif_and_action():
    rule = rule_from_dump(*UID_RULE)
    assert rule.iif == 'ib0' and rule.oif == ''
    blackhole = rule_from_dump(hdr(action=6), {'FRA_PRIORITY': 50})
    assert blackhole.action == 'blackhole'


def test_rule_from_dump_matches_desired_rule():
    """The heart of idempotency: what the kernel reports equals what the operator asked for."""
    assert desired_rules([{'priority': 1001, 'from': '10.0.1.14', 'table': 101}]) == [rule_from_dump(*RAIL_RULE)]
    assert desired_rules([{'priority': 1002, 'from': '10.0.1.14/32', 'table': 300000}]) == \
        [rule_from_dump(*BIG_TABLE_RULE)]
    fw = rule_from_dump(*FWMARK_RULE)._replace(proto=4)
    assert desired_rules([{'priority': 1003, 'fwmark': '0x10', 'table': 102}]) == [fw]
    fw0 = rule_from_dump(*FWMARK_ZERO_RULE)._replace(proto=4)
    assert desired_rules([{'priority': 1004, 'fwmark': '0/0xff', 'table': 102}]) == [fw0]


@pytest.mark.parametrize('word', ['0.0.0.0/0', 'default', 'any'])
def test_desired_from_everything_equals_kernel_from_all(word):
    # The kernel stores "from 0.0.0.0/0" as src_len 0 and dumps it as "from all".
    kernel = rule_from_dump(hdr(table=101), {'FRA_TABLE': 101, 'FRA_PROTOCOL': 4, 'FRA_PRIORITY': 1001,
                                             'FRA_SUPPRESS_PREFIXLEN': SUPPRESS})
    desired = desired_rules([{'priority': 1001, 'from': word, 'table': 101}])
    assert decide_rules([kernel], desired).add == ()


@pytest.mark.parametrize('word', ['default', 'any', '::/0'])
def test_desired_ipv6_rule_to_default(word):
    kernel = rule_from_dump(hdr(family=10, table=101), {'FRA_TABLE': 101, 'FRA_PROTOCOL': 4,
                                                        'FRA_PRIORITY': 1001, 'FRA_SUPPRESS_PREFIXLEN': SUPPRESS})
    desired = desired_rules([{'priority': 1001, 'family': 'ipv6', 'to': word, 'table': 101}])
    assert decide_rules([kernel], desired).add == ()


# --- render ------------------------------------------------------------------

@pytest.mark.parametrize('dump, text', [
    (RAIL_RULE, '1001:\tfrom 10.0.1.14 lookup 101 proto static'),
    (BIG_TABLE_RULE, '1002:\tfrom 10.0.1.14 lookup 300000 proto static'),
    (FWMARK_RULE, '1003:\tfrom all fwmark 0x10 lookup 102'),
    (INVERT_RULE, '1005:\tnot from 10.0.2.0/24 lookup 103'),
    # `ip rule` hides proto kernel and unspec, and shows proto boot.
    (LOCAL_RULE, '0:\tfrom all lookup local'),
    (MAIN_RULE, '32766:\tfrom all lookup main'),
    ((hdr(src_len=32, table=101), {'FRA_TABLE': 101, 'FRA_PROTOCOL': 3, 'FRA_PRIORITY': 1001,
                                   'FRA_SRC': '10.0.1.14'}),
     '1001:\tfrom 10.0.1.14 lookup 101 proto boot'),
    # iproute2 prints a zero mark as "0" (C's %#x), not "0x0".
    (FWMARK_ZERO_RULE, '1004:\tfrom all fwmark 0/0xff lookup 102'),
], ids=['rail', 'table>255', 'fwmark', 'not', 'local', 'main', 'proto-boot', 'fwmark-zero'])
def test_render_matches_ip_rule(dump, text):
    assert rule_from_dump(*dump).render() == text


def test_render_fwmark_with_mask_and_selectors():
    rule = Rule(family=4, priority=1200, dst='10.9.0.0/16', iif='ib0', oif='ib1', fwmark=0x10, fwmask=0xff,
                table=300)
    assert rule.render() == '1200:\tfrom all to 10.9.0.0/16 fwmark 0x10/0xff iif ib0 oif ib1 lookup 300 proto static'


def test_render_ipv6_prefix():
    rule = Rule(family=6, priority=1001, src='2001:db8::1/128', table=101)
    assert rule.render() == '[ipv6] 1001:\tfrom 2001:db8::1 lookup 101 proto static'


def test_render_non_lookup_action():
    assert Rule(family=4, priority=10, action='blackhole', proto=0).render() == '10:\tfrom all blackhole'


def test_render_rules_and_as_dict():
    rules = [static(), static(priority=1002, src='10.0.1.16/32', table=102)]
    assert render_rules(rules) == ('1001:\tfrom 10.0.1.14 lookup 101 proto static\n'
                                   '1002:\tfrom 10.0.1.16 lookup 102 proto static\n')
    assert render_rules([]) == ''
    d = Rule(family=4, priority=1200, iif='ib0', fwmark=0x10, fwmask=0xff, table=300).as_dict()
    assert d == {'family': 'ipv4', 'priority': 1200, 'from': 'all', 'table': 300, 'action': 'lookup',
                 'proto': 'static', 'iif': 'ib0', 'fwmark': '0x10/0xff',
                 'text': '1200:\tfrom all fwmark 0x10/0xff iif ib0 lookup 300 proto static'}


# --- desired_rules -----------------------------------------------------------

def test_desired_rules_parses_every_field():
    rules = desired_rules([
        {'priority': 1001, 'from': '10.0.1.14', 'table': 101},
        {'priority': 1002, 'from': '10.0.2.0/24', 'to': '10.9.0.0/16', 'table': 102, 'iif': 'ib0', 'oif': 'ib1'},
        {'priority': 1200, 'fwmark': '0x10/0xff', 'family': 'ipv4', 'table': 300},
        {'priority': 1201, 'fwmark': 16, 'table': 300},
        {'priority': 1300, 'family': 'ipv6', 'table': 101},
        {'priority': 1301, 'from': '2001:db8::1', 'table': 101},
        {'priority': 1302, 'from': 'all', 'to': '', 'table': 101},
    ])
    assert rules == [
        Rule(family=4, priority=1001, src='10.0.1.14/32', table=101),
        Rule(family=4, priority=1002, src='10.0.2.0/24', dst='10.9.0.0/16', iif='ib0', oif='ib1', table=102),
        Rule(family=4, priority=1200, fwmark=0x10, fwmask=0xff, table=300),
        Rule(family=4, priority=1201, fwmark=16, fwmask=0xFFFFFFFF, table=300),
        Rule(family=6, priority=1300, table=101),
        Rule(family=6, priority=1301, src='2001:db8::1/128', table=101),
        Rule(family=4, priority=1302, table=101),
    ]
    assert all(rule.proto == 4 and rule.action == 'lookup' for rule in rules)


def test_desired_rules_empty():
    assert desired_rules([]) == []


@pytest.mark.parametrize('spec, message', [
    ({'table': 101}, r'^rules\[1\]: priority is required$'),
    ({'priority': 32766, 'table': 101}, r'^rules\[1\]: priority 32766 is reserved'),
    ({'priority': 0, 'table': 101}, r'^rules\[1\]: priority 0 is reserved'),
    ({'priority': '1001', 'table': 101}, r"^rules\[1\]: priority '1001' is not an integer$"),
    ({'priority': 2 ** 32, 'table': 101}, r'^rules\[1\]: priority 4294967296 is out of range'),
    ({'priority': 1001}, r'^rules\[1\] \(priority 1001\): table is required$'),
    ({'priority': 1001, 'table': 254}, r'^rules\[1\] \(priority 1001\): table 254 is reserved \(main\)'),
    ({'priority': 1001, 'table': 0}, r'^rules\[1\] \(priority 1001\): table 0 is reserved'),
    ({'priority': 1001, 'table': 2 ** 32}, r'^rules\[1\] \(priority 1001\): table 4294967296 is out of range'),
    ({'priority': 1001, 'table': True}, r'^rules\[1\] \(priority 1001\): table True is not an integer'),
    ({'priority': 1001, 'table': 101, 'from': '10.0.1.14/24'},
     r'^rules\[1\] \(priority 1001\): from 10.0.1.14/24 has host bits set; use 10.0.1.0/24 .* or 10.0.1.14 '),
    ({'priority': 1001, 'table': 101, 'from': 'ib0'},
     r"^rules\[1\] \(priority 1001\): from 'ib0' is not an address or prefix$"),
    ({'priority': 1001, 'table': 101, 'to': '10.0.0.0/33'},
     r"^rules\[1\] \(priority 1001\): to '10.0.0.0/33' is not an address or prefix$"),
    ({'priority': 1001, 'table': 101, 'from': '10.0.1.14', 'to': '2001:db8::/32'},
     r'^rules\[1\] \(priority 1001\): to 2001:db8::/32 is IPv6 but the rule is IPv4$'),
    ({'priority': 1001, 'table': 101, 'family': 'ipv6', 'from': '10.0.1.14'},
     r'^rules\[1\] \(priority 1001\): from 10.0.1.14/32 is IPv4 but the rule is IPv6$'),
    ({'priority': 1001, 'table': 101, 'family': 'ipv4', 'to': '2001:db8::1'},
     r'^rules\[1\] \(priority 1001\): to 2001:db8::1/128 is IPv6 but the rule is IPv4$'),
    ({'priority': 1001, 'table': 101, 'fwmark': '0x10/0'},
     r"^rules\[1\] \(priority 1001\): fwmark mask in '0x10/0' is 0, which matches every packet$"),
    ({'priority': 1001, 'table': 101, 'fwmark': 'high'},
     r"^rules\[1\] \(priority 1001\): fwmark 'high' is not an integer$"),
    ({'priority': 1001, 'table': 101, 'fwmark': '0x10/zz'},
     r"^rules\[1\] \(priority 1001\): fwmark mask 'zz' is not an integer$"),
    ({'priority': 1001, 'table': 101, 'fwmark': '0x100000000'},
     r'^rules\[1\] \(priority 1001\): fwmark 4294967296 is out of range'),
    ({'priority': 1001, 'table': 101, 'fwmark': -1},
     r'^rules\[1\] \(priority 1001\): fwmark -1 is out of range'),
    ({'priority': 1001, 'table': 101, 'iif': 'ib0:1'},
     r"^rules\[1\] \(priority 1001\): iif 'ib0:1' is not a valid interface name"),
    ({'priority': 1001, 'table': 101, 'oif': 'x' * 16},
     r"^rules\[1\] \(priority 1001\): oif 'x{16}' is not a valid interface name"),
    ({'priority': 1001, 'table': 101, 'oif': 7},
     r'^rules\[1\] \(priority 1001\): oif 7 is not an interface name$'),
    ({'priority': 1001, 'table': 101, 'family': 'inet6'},
     r"^rules\[1\] \(priority 1001\): family 'inet6'"),
])
def test_desired_rules_errors_name_rule_field_and_value(spec, message):
    good = {'priority': 1000, 'from': '10.0.1.2', 'table': 100}
    with pytest.raises(InvalidArgument, match=message):
        desired_rules([good, spec])


def test_desired_rules_duplicate():
    spec = {'priority': 1001, 'from': '10.0.1.14', 'table': 101}
    with pytest.raises(InvalidArgument) as err:
        desired_rules([spec, {'priority': 1002, 'from': '10.0.1.16', 'table': 102}, dict(spec, to='all')])
    assert str(err.value) == ('rules[2] (priority 1001): duplicates rules[0] '
                              '(1001:\tfrom 10.0.1.14 lookup 101 proto static)')


def test_desired_rules_same_priority_different_selectors_is_fine():
    rules = desired_rules([{'priority': 1001, 'from': '10.0.1.14', 'table': 101},
                           {'priority': 1001, 'from': '10.0.1.15', 'table': 101}])
    assert len(rules) == 2


_ANY = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_RULE_FIELDS = ['priority', 'table', 'from', 'to', 'family', 'fwmark', 'iif', 'oif']


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(_RULE_FIELDS + ['action', 'x']), _ANY), max_size=3))
def test_desired_rules_arbitrary_input_only_raises_invalid_argument(specs):
    try:
        rules = desired_rules(specs)
    except InvalidArgument:
        return
    assert all(isinstance(rule, Rule) for rule in rules)


_PLAUSIBLE = {
    'priority': st.one_of(st.none(), st.integers(-2, 2 ** 33), st.sampled_from([0, 32766, 1001, True, '1001'])),
    'table': st.one_of(st.none(), st.integers(-2, 2 ** 33), st.sampled_from([0, 101, 254, 255, 300000, False])),
    'from': st.one_of(st.none(), st.sampled_from(['10.0.1.14', '10.0.1.14/24', '2001:db8::1', 'all', 'default',
                                                  '', 'x']), st.text(max_size=12)),
    'to': st.one_of(st.none(), st.sampled_from(['10.0.0.0/16', '::/0', 'any', '1.2.3.4/40']), st.text(max_size=12)),
    'family': st.one_of(st.none(), st.sampled_from(['ipv4', 'ipv6', 'inet']), st.integers(0, 10)),
    'fwmark': st.one_of(st.none(), st.integers(-1, 2 ** 33), st.sampled_from(['0x10', '0x10/0xff', '0/0', '/', 'a/b']),
                        st.text(max_size=8)),
    'iif': st.one_of(st.none(), st.text(max_size=18), st.integers()),
    'oif': st.one_of(st.none(), st.text(max_size=18), st.integers()),
}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({}, optional=_PLAUSIBLE), max_size=4))
def test_desired_rules_plausible_input_only_raises_invalid_argument(specs):
    try:
        rules = desired_rules(specs)
    except InvalidArgument:
        return
    assert len(rules) == len(specs)
    for rule in rules:
        assert rule.family in (4, 6)
        assert 1 <= rule.priority <= 2 ** 32 - 1
        assert rule.table not in (0, 253, 254, 255)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries(
    {'priority': st.sampled_from([1001, 1002]), 'table': st.sampled_from([101, 300000])},
    optional={field: _ANY for field in _RULE_FIELDS if field not in ('priority', 'table')}), max_size=3))
def test_desired_rules_valid_ids_arbitrary_other_fields_only_raise_invalid_argument(specs):
    try:
        desired_rules(specs)
    except InvalidArgument:
        pass


# --- check_priority_range ----------------------------------------------------

def test_check_priority_range_ok():
    assert check_priority_range({'start': 1000, 'end': 1999}) == (1000, 1999)
    assert check_priority_range({'start': 1001, 'end': 1001}) == (1001, 1001)
    assert check_priority_range({'start': 32768, 'end': 40000}) == (32768, 40000)


@pytest.mark.parametrize('value, message', [
    ({'end': 1999}, r'^priority_range: start is required$'),
    ({'start': 1000}, r'^priority_range: end is required$'),
    ({'start': 0, 'end': 10}, r'^priority_range: start 0 is out of range 1-4294967295$'),
    ({'start': 1, 'end': 2 ** 32}, r'^priority_range: end 4294967296 is out of range 1-4294967295$'),
    ({'start': '1000', 'end': 1999}, r"^priority_range: start '1000' is not an integer$"),
    ({'start': 2000, 'end': 1000}, r'^priority_range: start 2000 is after end 1000$'),
    ({'start': 1000, 'end': 40000},
     r'^priority_range: 1000-40000 contains 32766, the kernel\'s "main" rule, which must never be purged$'),
    ({'start': 32767, 'end': 32767},
     r'^priority_range: 32767-32767 contains 32767, the kernel\'s "default" rule'),
])
def test_check_priority_range_errors(value, message):
    with pytest.raises(InvalidArgument, match=message):
        check_priority_range(value)


# --- decide_rules ------------------------------------------------------------

KERNEL = [rule_from_dump(*LOCAL_RULE), rule_from_dump(*MAIN_RULE),
          Rule(family=4, priority=32767, table=253, proto=2)]


def test_decide_adds_missing_rules():
    desired = [static(), static(priority=1002, src='10.0.1.16/32', table=102)]
    changes = decide_rules(KERNEL + [static()], desired)
    assert changes.add == (desired[1],)
    assert changes.remove == ()
    assert changes.before == (static(),)
    assert changes.after == (static(), desired[1])


def test_decide_no_op_when_equal():
    current = KERNEL + [rule_from_dump(*RAIL_RULE), rule_from_dump(*BIG_TABLE_RULE)]
    desired = desired_rules([{'priority': 1001, 'from': '10.0.1.14', 'table': 101},
                             {'priority': 1002, 'from': '10.0.1.14', 'table': 300000}])
    changes = decide_rules(current, desired, priority_range=(1000, 1999))
    assert changes.add == () and changes.remove == ()
    assert changes.before == changes.after


def test_decide_purges_only_inside_the_range():
    foreign_in = static(priority=1500, src='10.0.7.7/32', table=107)
    foreign_below = static(priority=999, src='10.0.7.8/32', table=107)
    foreign_above = static(priority=2000, src='10.0.7.9/32', table=107)
    edge_low = static(priority=1000, src='10.0.7.10/32', table=107)
    edge_high = static(priority=1999, src='10.0.7.11/32', table=107)
    current = KERNEL + [foreign_in, foreign_below, foreign_above, edge_low, edge_high, static()]
    changes = decide_rules(current, [static()], priority_range=(1000, 1999))
    assert set(changes.remove) == {foreign_in, edge_low, edge_high}
    assert changes.add == ()
    assert foreign_below not in changes.before and foreign_above not in changes.before
    assert changes.after == (static(),)


def test_decide_without_range_never_removes():
    current = KERNEL + [static(priority=1500, table=107)]
    assert decide_rules(current, [static()]).remove == ()


def test_decide_present_proto_twin_with_purge_is_kept_unless_foreign_rules_go():
    boot = static(proto=3)
    changes = decide_rules(KERNEL + [boot], [static()], priority_range=(1000, 1999))
    assert changes.add == (static(),)
    assert changes.remove == ()
    changes = decide_rules(KERNEL + [boot], [static()], priority_range=(1000, 1999), remove_foreign=True)
    assert changes.add == (static(),)
    assert changes.remove == (boot,)
    assert changes.before == (boot,)
    assert changes.after == (static(),)


def test_decide_present_proto_twin_outside_range_is_kept():
    boot = static(proto=3)
    changes = decide_rules(KERNEL + [boot], [static()], priority_range=(2000, 2999))
    assert changes.add == (static(),)
    assert changes.remove == ()
    assert set(changes.after) == {boot, static()}


def test_decide_absent_removes_every_proto_twin():
    boot, kernel = static(proto=3), static(proto=2)
    other = static(src='10.0.1.15/32')
    current = KERNEL + [static(), boot, kernel, other]
    changes = decide_rules(current, [static()], state='absent')
    assert set(changes.remove) == {static(), boot, kernel}
    assert changes.add == ()
    assert changes.after == (other,)


def test_decide_absent_when_already_gone():
    changes = decide_rules(KERNEL, [static()], state='absent')
    assert changes.add == () and changes.remove == ()
    assert changes.before == () and changes.after == ()


def test_decide_absent_does_not_match_extra_selectors():
    with_uid = rule_from_dump(RAIL_RULE[0], dict(RAIL_RULE[1], FRA_UID_RANGE='100:200'))
    changes = decide_rules(KERNEL + [with_uid], [static()], state='absent')
    assert changes.remove == ()


def test_decide_absent_ignores_range_for_removal():
    foreign = static(priority=1500, table=107)
    changes = decide_rules(KERNEL + [static(), foreign], [static()], state='absent', priority_range=(1000, 1999))
    assert changes.remove == (static(),)
    assert changes.after == (foreign,)


def test_decide_scope_of_before_and_after():
    same_priority_foreign = static(src='10.0.9.9/32', table=109)
    in_range = static(priority=1500, table=107)
    elsewhere = static(priority=5000, table=108)
    current = KERNEL + [same_priority_foreign, in_range, elsewhere]
    no_range = decide_rules(current, [static()])
    assert set(no_range.before) == {same_priority_foreign}
    assert set(no_range.after) == {same_priority_foreign, static()}
    ranged = decide_rules(current, [static()], priority_range=(1000, 1999))
    assert set(ranged.before) == {same_priority_foreign, in_range}
    assert ranged.after == (static(),)


def test_decide_before_after_are_sorted():
    rules = [static(priority=p, src='10.0.1.%d/32' % (p - 1000), table=p - 900) for p in (1003, 1001, 1002)]
    changes = decide_rules([], rules)
    assert [r.priority for r in changes.after] == [1001, 1002, 1003]
    assert changes.add == tuple(rules)


# --- plan_rule_ops: the kernel's loose rule matching -------------------------

LOCAL = Rule(family=4, priority=0, table=255, proto=2)
MAIN = Rule(family=4, priority=32766, table=254, proto=2)
OURS = Rule(family=4, priority=1001, src='10.0.1.14/32', table=101)
CATCH_ALL = Rule(family=4, priority=1001, table=101, proto=0)


def test_delete_request_without_from_hits_a_more_specific_rule():
    assert delete_hits(CATCH_ALL, OURS)
    assert not delete_hits(OURS, CATCH_ALL)
    assert delete_hits(OURS, OURS)


def test_add_of_from_all_collides_with_from_x_but_not_the_reverse():
    static_catch_all = CATCH_ALL._replace(proto=4)
    assert add_conflicts(static_catch_all, OURS)
    assert not add_conflicts(OURS, static_catch_all)
    assert not add_conflicts(CATCH_ALL, OURS)      # protocols differ


def test_purging_a_catch_all_behind_our_rule_sets_ours_aside_and_back():
    current = [LOCAL, OURS, CATCH_ALL, MAIN]
    ops, final = plan_rule_ops(current, (), (CATCH_ALL,))
    assert ops == [('del', OURS), ('del', CATCH_ALL), ('add', OURS)]
    assert final == [LOCAL, OURS, MAIN]


def test_plain_delete_and_add_need_no_detour():
    stale = Rule(family=4, priority=1002, src='10.0.2.14/32', table=102)
    new = Rule(family=4, priority=1003, src='10.0.3.14/32', table=103)
    ops, final = plan_rule_ops([LOCAL, OURS, stale, MAIN], (new,), (stale,))
    assert ops == [('add', new), ('del', stale)]
    assert final == [LOCAL, OURS, new, MAIN]


def test_adding_from_all_next_to_a_kept_from_x_reorders_instead_of_failing():
    static_catch_all = CATCH_ALL._replace(proto=4)
    ops, final = plan_rule_ops([LOCAL, OURS, MAIN], (static_catch_all,), ())
    assert ops == [('del', OURS), ('add', static_catch_all), ('add', OURS)]
    assert final == [LOCAL, static_catch_all, OURS, MAIN]


def test_added_rules_go_after_rules_of_the_same_priority_like_the_kernel():
    twin = Rule(family=4, priority=1001, src='10.0.1.32/29', table=101)
    v6 = Rule(family=6, priority=1001, src='2001:db8::1/128', table=101)
    v6_main = Rule(family=6, priority=32766, table=254, proto=2)
    ops, final = plan_rule_ops([LOCAL, OURS, MAIN, v6_main], (twin, v6), ())
    assert final == [LOCAL, OURS, twin, MAIN, v6, v6_main]


def test_decide_rules_returns_kernel_order_and_the_planned_ops():
    changes = decide_rules([LOCAL, OURS, CATCH_ALL, MAIN], [OURS], 'present', (1000, 1999), remove_foreign=True)
    assert changes.remove == (CATCH_ALL,)
    assert changes.before == (OURS, CATCH_ALL)
    assert changes.after == (OURS,)
    assert changes.ops == (('del', OURS), ('del', CATCH_ALL), ('add', OURS))


# --- plan_rule_ops against the plain simulation --------------------------------

def reference_plan(current, add, remove):
    """plan_rule_ops as first written: every search scans the whole simulated list (O(n^2))."""
    state = list(current)
    removing = set(remove)
    ops = []
    set_aside = []

    def delete_exact(target, depth=0):
        if depth > len(state):
            raise InvalidArgument('no order')
        while True:
            first = next(r for r in state if delete_hits(target, r))
            if first == target:
                break
            delete_exact(first, depth + 1)
            if first not in removing:
                set_aside.append(first)
        ops.append(('del', target))
        state.remove(target)

    def insert(rule):
        for conflict in [r for r in state if add_conflicts(rule, r)]:
            delete_exact(conflict)
            if conflict not in removing:
                set_aside.append(conflict)
        ops.append(('add', rule))
        position = 0
        for index, other in enumerate(state):
            if other.family == rule.family and other.priority <= rule.priority:
                position = index + 1
            elif other.family < rule.family:
                position = index + 1
        state.insert(position, rule)

    for rule in add:
        insert(rule)
    for rule in remove:
        if rule in state:
            delete_exact(rule)
    rounds = 0
    while set_aside:
        rounds += 1
        if rounds > 4 * (len(current) + len(add)) + 4:
            raise InvalidArgument('no order')
        rule = set_aside.pop(0)
        if rule not in state:
            insert(rule)
    return ops, state


# Few values per field, so that rules often share a priority and hit or collide with each other.
small_rules = st.builds(
    Rule, family=st.sampled_from([4, 4, 6]), priority=st.sampled_from([5, 1001, 1001, 1002]),
    src=st.sampled_from(['', '10.0.1.14/32', '10.0.1.0/24']), dst=st.sampled_from(['', '', '10.0.9.0/24']),
    iif=st.sampled_from(['', '', 'ib0']), oif=st.just(''), fwmark=st.just(0), fwmask=st.just(0),
    table=st.sampled_from([101, 101, 102]), action=st.sampled_from(['lookup', 'lookup', 'unspec']),
    proto=st.sampled_from([0, 4]), extra=st.sampled_from([(), (), (('FRA_FLAGS', 'not'),), (('FRA_TOS', '0x10'),)]))


@settings(max_examples=1500, deadline=None)
@given(st.lists(small_rules, max_size=10, unique=True), st.lists(small_rules, max_size=6, unique=True),
       st.data(), st.booleans())
def test_plan_rule_ops_agrees_with_the_plain_simulation(current, add, data, in_kernel_order):
    """Same ops and final list, for lists in kernel order and in any other order."""
    if in_kernel_order:
        current = sorted(current, key=lambda rule: (rule.family, rule.priority))
    add = [rule for rule in add if rule not in current]
    remove = data.draw(st.lists(st.sampled_from(current), unique=True) if current else st.just([]))
    try:
        expected = reference_plan(current, add, remove)
    except (InvalidArgument, StopIteration) as exc:
        with pytest.raises(type(exc)):
            plan_rule_ops(current, add, remove)
        return
    assert plan_rule_ops(current, add, remove) == expected


def test_plan_rule_ops_of_a_thousand_rules_sharing_a_priority_is_one_add_each():
    current = [LOCAL, MAIN]
    add = [static(src='10.1.%d.%d/32' % (i // 250, i % 250 + 1)) for i in range(1000)]
    ops, final = plan_rule_ops(current, add, ())
    assert ops == [('add', rule) for rule in add]
    assert final == [LOCAL] + add + [MAIN]


# --- canonical_prefix ----------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.one_of(st.tuples(st.ip_addresses(v=4), st.integers(0, 32)),
                 st.tuples(st.ip_addresses(v=6), st.integers(0, 128))))
def test_canonical_prefix_is_what_ipaddress_says(pair):
    address, length = pair
    prefix = '%s/%d' % (address, length)
    assert canonical_prefix(prefix) == str(ipaddress.ip_network(prefix, strict=False))


def test_canonical_prefix_of_nothing_is_nothing():
    assert canonical_prefix('') == ''


@pytest.mark.parametrize('text', ['10.0.1.14', ' 10.0.1.14', '10.0.1.14/32', '10.0.1.0/24', '2001:db8::1', 'all', ''])
def test_desired_rules_reads_a_bare_address_as_a_host_prefix(text):
    """The fast path for bare IPv4 addresses gives what parse_prefix gives."""
    rule = desired_rules([{'priority': 1001, 'from': text, 'table': 101}])[0]
    expected = '' if text in ('all', '') else str(ipaddress.ip_network(text.strip()))
    assert rule.src == expected
    assert rule.family == (6 if ':' in text else 4)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses().map(str),
                 st.tuples(st.ip_addresses(), st.sampled_from(['/32', '/24', '/128', '/032', ' ', '/', ''])).map(lambda pair: '%s%s' % pair),
                 st.text(max_size=20)))
def test_ipv4_host_is_what_parse_prefix_says_of_a_host(text):
    host = ipv4_host(text)
    if host:
        assert host == str(parse_prefix('o', 'f', text))
    else:
        try:
            net = parse_prefix('o', 'f', text)
        except InvalidArgument:
            return
        assert net.version == 6 or net.prefixlen != 32 or text != text.strip() or text.endswith('/032')


def test_purge_never_removes_a_kernel_rule_even_with_foreign_removal():
    l3mdev = Rule(family=4, priority=1000, table=0, proto=2, extra=(('FRA_L3MDEV', '1'),))
    for remove_foreign in (False, True):
        changes = decide_rules(KERNEL + [l3mdev], [static()], priority_range=(1000, 1999),
                               remove_foreign=remove_foreign)
        assert changes.remove == ()


def test_purge_removes_only_stale_rules_made_like_ours():
    stale = static(priority=1500, table=107)
    fwmark = Rule(family=4, priority=1501, table=300, fwmark=0x10, fwmask=0xFFFFFFFF)
    ipv6 = Rule(family=6, priority=1502, src='2001:db8::/64', table=300)
    changes = decide_rules(KERNEL + [stale, fwmark, ipv6], [static()], priority_range=(1000, 1999))
    assert changes.remove == (stale,)
