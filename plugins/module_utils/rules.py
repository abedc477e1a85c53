# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Policy rules: the normalized model, desired-state parsing and the decision.

Pure Python, no netlink: the kernel's dump is turned into Rule tuples by
rule_from_dump(), the operator's list by desired_rules(), and decide_rules()
says what to add and remove. Tests call these directly.
"""

from __future__ import annotations

import bisect
import ipaddress
import socket
from typing import NamedTuple, Optional, Tuple

from ansible_collections.roce.multirail.plugins.module_utils.common import (
    InvalidArgument,
    check_ifname,
    check_priority,
    check_table,
    check_u32,
    hex_c,
    host_form,
    mappings,
    parse_int,
    parse_prefix,
    required,
)

# rtnetlink protocol numbers (include/uapi/linux/rtnetlink.h).
PROTO_NAMES = {0: 'unspec', 1: 'redirect', 2: 'kernel', 3: 'boot', 4: 'static', 8: 'gated', 9: 'ra',
               10: 'mrt', 11: 'zebra', 12: 'bird', 13: 'dnrouted', 14: 'xorp', 15: 'ntk', 16: 'dhcp',
               17: 'mrouted', 18: 'keepalived', 42: 'babel', 99: 'openr', 186: 'bgp', 187: 'isis',
               188: 'ospf', 189: 'rip', 192: 'eigrp'}
PROTO_KERNEL = 2
PROTO_STATIC = 4
# fib_rules.h FR_ACT_*.
ACTION_NAMES = {0: 'unspec', 1: 'lookup', 2: 'goto', 3: 'nop', 6: 'blackhole',
                7: 'unreachable', 8: 'prohibit'}
FAMILIES = {2: 4, 10: 6}
FIB_RULE_INVERT = 0x2

# Attributes the model reads itself; anything else a foreign rule carries is
# kept in `extra` so it never compares equal to a rule we manage.
_KNOWN_ATTRS = {'FRA_TABLE', 'FRA_PRIORITY', 'FRA_SRC', 'FRA_DST', 'FRA_IIFNAME',
                'FRA_OIFNAME', 'FRA_FWMARK', 'FRA_FWMASK', 'FRA_PROTOCOL'}
# Attributes whose value, when equal to this, means "not set".
_DEFAULT_ATTRS = {'FRA_SUPPRESS_PREFIXLEN': 0xFFFFFFFF, 'FRA_SUPPRESS_IFGROUP': 0xFFFFFFFF,
                  'FRA_L3MDEV': 0, 'FRA_TUN_ID': 0, 'FRA_IP_PROTO': 0, 'FRA_PAD': None,
                  'FRA_UNSPEC': None}


class Rule(NamedTuple):
    """One policy rule as the kernel holds it, with canonical field values."""

    family: int                 # 4 or 6
    priority: int
    src: str = ''               # canonical prefix, '' for "from all"
    dst: str = ''
    iif: str = ''
    oif: str = ''
    fwmark: int = 0
    fwmask: int = 0             # 0 when no fwmark selector
    table: int = 0
    action: str = 'lookup'
    proto: int = PROTO_STATIC
    extra: Tuple[Tuple[str, str], ...] = ()

    def selector(self):
        """The rule without its protocol: what `state: absent` matches on."""
        return self._replace(proto=-1)

    def render(self):
        """The rule as `ip rule show` prints it."""
        words = ['%d:' % self.priority]
        if ('FRA_FLAGS', 'not') in self.extra:
            words.append('not')
        words += ['from', host_form(self.src) if self.src else 'all']
        if self.dst:
            words += ['to', host_form(self.dst)]
        if self.fwmark or self.fwmask:
            words.append('fwmark %s' % hex_c(self.fwmark) if self.fwmask == 0xFFFFFFFF
                         else 'fwmark %s/%s' % (hex_c(self.fwmark), hex_c(self.fwmask)))
        if self.iif:
            words += ['iif', self.iif]
        if self.oif:
            words += ['oif', self.oif]
        for name, value in self.extra:
            if name not in ('FRA_FLAGS', 'FRA_GOTO'):
                words += [name.replace('FRA_', '').lower(), value]
        if self.action == 'goto':
            words += ['goto', dict(self.extra).get('FRA_GOTO', '?')]
        elif self.action == 'lookup':
            words += ['lookup', table_name(self.table)]
        else:
            words.append(self.action)
        if self.proto not in (0, 2):     # as `ip rule`: kernel and unspec are not shown
            words += ['proto', PROTO_NAMES.get(self.proto, str(self.proto))]
        prefix = '' if self.family == 4 else '[ipv6] '
        return prefix + ' '.join(words).replace(': ', ':\t', 1)

    def as_dict(self):
        out = {'family': 'ipv%d' % self.family, 'priority': self.priority,
               'from': self.src or 'all', 'table': self.table, 'action': self.action,
               'proto': PROTO_NAMES.get(self.proto, str(self.proto)), 'text': self.render()}
        if self.dst:
            out['to'] = self.dst
        if self.iif:
            out['iif'] = self.iif
        if self.oif:
            out['oif'] = self.oif
        if self.fwmask:
            out['fwmark'] = '%s/%s' % (hex_c(self.fwmark), hex_c(self.fwmask))
        return out


def table_name(table):
    return {253: 'default', 254: 'main', 255: 'local'}.get(table, str(table))


def rule_from_dump(header, attrs):
    """Normalize one RTM_NEWRULE message.

    header: the fib_rule_hdr fields (family, src_len, dst_len, tos, table,
    action, flags); attrs: {FRA_* name: value}. Returns None for families we
    do not manage (IPv4/IPv6 multicast routing rules).
    """
    family = FAMILIES.get(header.get('family'))
    if family is None:
        return None
    zero = '0.0.0.0' if family == 4 else '::'
    src = dst = ''
    if header.get('src_len'):
        src = '%s/%d' % (attrs.get('FRA_SRC', zero), header['src_len'])
    if header.get('dst_len'):
        dst = '%s/%d' % (attrs.get('FRA_DST', zero), header['dst_len'])
    extra = []
    for name in sorted(attrs.keys() - _KNOWN_ATTRS):
        value = attrs[name]
        if name in _DEFAULT_ATTRS and _DEFAULT_ATTRS[name] in (value, None):
            continue
        extra.append((name, str(value)))
    if header.get('tos'):
        extra.append(('FRA_TOS', '%#x' % header['tos']))
    if header.get('flags', 0) & FIB_RULE_INVERT:
        extra.append(('FRA_FLAGS', 'not'))
    fwmark = attrs.get('FRA_FWMARK', 0) or 0
    fwmask = attrs.get('FRA_FWMASK', 0) or 0
    if fwmark and not fwmask:
        fwmask = 0xFFFFFFFF
    return Rule(
        family=family,
        priority=attrs.get('FRA_PRIORITY', 0) or 0,
        src=canonical_prefix(src),
        dst=canonical_prefix(dst),
        iif=attrs.get('FRA_IIFNAME', '') or '',
        oif=attrs.get('FRA_OIFNAME', '') or '',
        fwmark=fwmark,
        fwmask=fwmask,
        table=attrs.get('FRA_TABLE', header.get('table', 0)) or 0,
        action=ACTION_NAMES.get(header.get('action', 1), str(header.get('action'))),
        proto=attrs.get('FRA_PROTOCOL', 0) or 0,
        extra=tuple(extra),
    )


def canonical_prefix(prefix):
    """'10.0.1.14/24' -> '10.0.1.0/24', as str(ipaddress.ip_network(prefix, strict=False)); '' stays ''.

    IPv4, what every dump is full of, is done with the socket module, ten
    times faster than ipaddress, which does the rest.
    """
    if not prefix:
        return ''
    address, _slash, length = prefix.partition('/')
    if length.isascii() and length.isdigit() and int(length) <= 32 and ':' not in address:
        try:
            packed = socket.inet_pton(socket.AF_INET, address)
        except (OSError, ValueError):
            pass
        else:
            bits = int(length)
            value = int.from_bytes(packed, 'big') & (0xFFFFFFFF << (32 - bits))
            return '%s/%d' % (socket.inet_ntop(socket.AF_INET, (value & 0xFFFFFFFF).to_bytes(4, 'big')), bits)
    return str(ipaddress.ip_network(prefix, strict=False))


def parse_fwmark(obj, value):
    """'0x10', 16, '0x10/0xff' -> (mark, mask); mask defaults to all ones."""
    text = str(value).strip()
    mark_text, slash, mask_text = text.partition('/')
    mark = parse_int(obj, 'fwmark', mark_text)
    mask = parse_int(obj, 'fwmark mask', mask_text) if slash else 0xFFFFFFFF
    check_u32(obj, 'fwmark', mark)
    check_u32(obj, 'fwmark mask', mask)
    if mask == 0:
        raise InvalidArgument('%s: fwmark mask in %r is 0, which matches every packet' % (obj, value))
    return mark, mask


def desired_rules(specs, state='present'):
    """Turn the module's `rules` list into Rule tuples, validating each.

    Raises InvalidArgument naming the rule, the field and the value. A rule
    is called "rules[i] (priority P)" in messages so the operator can find it.
    """
    rules = []
    seen = {}
    for index, obj, spec in mappings('rules', specs):
        priority = check_priority(obj, required(obj, spec, 'priority'))
        obj = 'rules[%d] (priority %d)' % (index, priority)
        family_text = spec.get('family')
        if family_text is not None and family_text not in ('ipv4', 'ipv6'):
            raise InvalidArgument('%s: family %r is not ipv4 or ipv6' % (obj, family_text))
        family = {'ipv4': 4, 'ipv6': 6}.get(family_text)
        src, src_version = _selector(obj, 'from', spec.get('from'))
        dst, dst_version = _selector(obj, 'to', spec.get('to'))
        for field, prefix, version in (('from', src, src_version), ('to', dst, dst_version)):
            if not prefix:
                continue
            if family is None:
                family = version
            elif version != family:
                raise InvalidArgument('%s: %s %s is IPv%d but the rule is IPv%d'
                                      % (obj, field, prefix, version, family))
        family = family or 4
        table = check_table(obj, required(obj, spec, 'table'))
        fwmark, fwmask = (0, 0)
        if spec.get('fwmark') not in (None, ''):
            fwmark, fwmask = parse_fwmark(obj, spec['fwmark'])
        iif = check_ifname(obj, 'iif', spec['iif']) if spec.get('iif') else ''
        oif = check_ifname(obj, 'oif', spec['oif']) if spec.get('oif') else ''
        rule = Rule(family=family, priority=priority, src=src, dst=dst, iif=iif, oif=oif, fwmark=fwmark,
                    fwmask=fwmask, table=table)
        if rule in seen:
            raise InvalidArgument('%s: duplicates rules[%d] (%s)' % (obj, seen[rule], rule.render()))
        seen[rule] = index
        rules.append(rule)
    return rules


def ipv4_host(value):
    """'10.0.1.14' or '10.0.1.14/32' -> '10.0.1.14/32', as parse_prefix gives it; '' for anything else.

    Most rules and routes name one IPv4 host: the socket module checks those
    ten times faster than ipaddress, which parse_prefix uses for the rest.
    """
    if not isinstance(value, str):
        return ''
    address, slash, length = value.partition('/')
    if slash and length != '32':
        return ''
    try:
        socket.inet_pton(socket.AF_INET, address)
    except (OSError, ValueError):
        return ''
    return address + '/32'


def _selector(obj, field, value):
    """A from/to selector as (canonical prefix, IP version); ('', 0) when it selects everything (all, default, /0)."""
    if value is None or (isinstance(value, str) and value.strip() in ('', 'all', 'any', 'default')):
        return '', 0
    host = ipv4_host(value)
    if host:
        return host, 4
    net = parse_prefix(obj, field, value)
    if net.prefixlen == 0:
        return '', 0
    return str(net), net.version


def check_priority_range(value):
    """Validate the purge range {start, end}; returns (start, end)."""
    start, end = value.get('start'), value.get('end')
    for field, number in (('start', start), ('end', end)):
        if number is None:
            raise InvalidArgument('priority_range: %s is required' % field)
        check_u32('priority_range', field, number, minimum=1)
    if start > end:
        raise InvalidArgument('priority_range: start %d is after end %d' % (start, end))
    for reserved in (32766, 32767):
        if start <= reserved <= end:
            raise InvalidArgument(
                'priority_range: %d-%d contains %d, the kernel\'s "%s" rule, which must never be purged'
                % (start, end, reserved, 'main' if reserved == 32766 else 'default'))
    return start, end


class RuleChanges(NamedTuple):
    add: Tuple[Rule, ...]
    remove: Tuple[Rule, ...]
    before: Tuple[Rule, ...]      # rules in scope before the change, in kernel order
    after: Tuple[Rule, ...]       # rules in scope after the change, in kernel order
    ops: Tuple[Tuple[str, Rule], ...] = ()   # ('add' | 'del', rule), in the order to send


def made_like_ours(rule):
    """Whether a rule has the shape of the rules this collection makes.

    IPv4, `from <prefix> lookup <table> proto static` and nothing else: no
    destination, interface, mark or other selector. NetworkManager and
    systemd-networkd create the persisted rail rules in this very shape.
    """
    return (rule.family == 4 and rule.action == 'lookup' and rule.proto == PROTO_STATIC and bool(rule.src)
            and not (rule.dst or rule.iif or rule.oif or rule.fwmark or rule.fwmask or rule.extra)
            and rule.table not in (0, 253, 254, 255))


def removable(rule, remove_foreign=False):
    """Whether a purge may remove a rule that sits inside the managed range.

    Rules the kernel made (`proto kernel`, such as the l3mdev rule of a VRF)
    never; rules of another shape only when the caller says so.
    """
    if rule.proto == PROTO_KERNEL:
        return False
    return remove_foreign or made_like_ours(rule)


def decide_rules(current, desired, state='present', priority_range=None, remove_foreign=False):
    # type: (list, list, str, Optional[tuple], bool) -> RuleChanges
    """Current kernel rules (in kernel order) + desired rules -> what to change.

    present: add every desired rule that is missing; with a priority_range,
    remove every rule inside the range that is not desired and was made like
    ours (with remove_foreign, any rule but the kernel's). Rules outside the
    range are never removed. absent: remove every rule that matches a desired
    one, whatever protocol created it.

    before/after list the rules in scope (inside the range, or on a priority
    a desired rule uses) in the order the kernel evaluates them.
    """
    current_set = set(current)
    if state == 'absent':
        wanted = {rule.selector() for rule in desired}
        remove = tuple(rule for rule in current if rule.selector() in wanted)
        add = ()
    else:
        add = tuple(rule for rule in desired if rule not in current_set)
        desired_set = set(desired)
        if priority_range:
            low, high = priority_range
            remove = tuple(rule for rule in current
                           if low <= rule.priority <= high and rule not in desired_set
                           and removable(rule, remove_foreign))
        else:
            remove = ()
    ops, final = plan_rule_ops(current, add, remove)
    priorities = {rule.priority for rule in desired}

    def in_scope(rule):
        if priority_range and priority_range[0] <= rule.priority <= priority_range[1]:
            return True
        return rule.priority in priorities

    return RuleChanges(add=add, remove=remove, ops=tuple(ops),
                       before=tuple(r for r in current if in_scope(r)),
                       after=tuple(r for r in final if in_scope(r)))


def _loose(request, rule):
    """Whether a request's from/to selects the rule (fib4/fib6 rule compare).

    A request without a from (to) prefix matches any from (to).
    """
    return ((not request.src or request.src == rule.src)
            and (not request.dst or request.dst == rule.dst))


def _extras(rule):
    # The invert flag is not trusted to tell rules apart (conservative).
    return set(pair for pair in rule.extra if pair[0] != 'FRA_FLAGS')


def delete_hits(request, rule):
    """Whether the kernel's rule lookup for a delete request matches `rule`.

    fib_rules.c rule_find(): every field the request leaves unset (zero,
    empty) matches anything, so a request carrying every attribute of a dumped
    rule still matches a *more specific* rule at the same priority.
    """
    return (request.family == rule.family and request.priority == rule.priority
            and (request.action == 'unspec' or request.action == rule.action)
            and (not request.table or request.table == rule.table)
            and (not request.iif or request.iif == rule.iif)
            and (not request.oif or request.oif == rule.oif)
            and (not request.fwmark or request.fwmark == rule.fwmark)
            and (not request.fwmask or request.fwmask == rule.fwmask)
            and (not request.proto or request.proto == rule.proto)
            and _extras(request) <= _extras(rule)
            and _loose(request, rule))


def add_conflicts(new, rule):
    """Whether adding `new` fails with "File exists" because of `rule`.

    fib_rules.c rule_exists(): every field must be equal, except that the
    from/to prefixes are compared loosely, so a "from all" rule cannot be
    added next to a "from X" rule that is otherwise the same.
    """
    return (new.family == rule.family and new.priority == rule.priority
            and new.action == rule.action and new.table == rule.table
            and new.iif == rule.iif and new.oif == rule.oif
            and new.fwmark == rule.fwmark and new.fwmask == rule.fwmask
            and new.proto == rule.proto and _extras(new) == _extras(rule)
            and _loose(new, rule))


def plan_rule_ops(current, add, remove):
    """Order the changes so every request hits exactly the rule it is meant for.

    Simulates the kernel's rule list (in order). Adds go first, so a rule that
    moves is never missing. When a delete request would first hit another rule
    that stays (it is more specific and earlier in the list), or an add would
    collide with one, that rule is taken out for the moment and put back right
    after. Returns (ops, final list).

    A request only ever hits or collides with rules of its own family and
    priority, and with a from prefix only rules of that same prefix; an added
    rule goes after every rule of its family and priority. So the rules are
    also kept in list order per (family, priority) and per (family, priority,
    from), and a search looks at those alone. Positions in the list, ordered
    by (family, priority) as the kernel keeps it, come from bisect; for a list
    given in another order, from a scan: after the last rule of a lower family
    or of the same family and a priority not above.
    """
    state = list(current)
    keys = [(rule.family, rule.priority) for rule in state]
    ordered = all(keys[i] <= keys[i + 1] for i in range(len(keys) - 1))
    groups = {}
    for rule in state:
        for group in _groups(rule):
            groups.setdefault(group, []).append(rule)
    removing = set(remove)
    ops = []
    set_aside = []

    def candidates(request):
        """The rules a request could hit or collide with, in list order."""
        return groups.get(_groups(request)[1 if request.src else 0], ())

    def present(rule):
        return rule in groups.get(_groups(rule)[1], ())

    def take_out(rule):
        for group in _groups(rule):
            groups[group].remove(rule)
        key = (rule.family, rule.priority)
        low = bisect.bisect_left(keys, key) if ordered else 0
        index = state.index(rule, low)
        del state[index]
        del keys[index]

    def put_in(rule):
        for group in _groups(rule):
            groups.setdefault(group, []).append(rule)
        key = (rule.family, rule.priority)
        if ordered:
            position = bisect.bisect_right(keys, key)
        else:
            position = max((index + 1 for index, other in enumerate(keys) if other <= key), default=0)
        state.insert(position, rule)
        keys.insert(position, key)

    def delete_exact(target, depth=0):
        if depth > len(state):
            raise InvalidArgument('cannot find an order of rule changes that deletes "%s" exactly'
                                  % target.render())
        while True:
            first = next(r for r in candidates(target) if delete_hits(target, r))
            if first == target:
                break
            delete_exact(first, depth + 1)
            if first not in removing:
                set_aside.append(first)
        ops.append(('del', target))
        take_out(target)

    def insert(rule):
        for conflict in [r for r in candidates(rule) if add_conflicts(rule, r)]:
            delete_exact(conflict)
            if conflict not in removing:
                set_aside.append(conflict)
        ops.append(('add', rule))
        put_in(rule)

    for rule in add:
        insert(rule)
    for rule in remove:
        if present(rule):
            delete_exact(rule)
    rounds = 0
    while set_aside:
        rounds += 1
        if rounds > 4 * (len(current) + len(add)) + 4:
            raise InvalidArgument('cannot find an order of rule changes that keeps every rule')
        rule = set_aside.pop(0)
        if not present(rule):
            insert(rule)
    return ops, state


def _groups(rule):
    """The keys plan_rule_ops files a rule under: its (family, priority), and with its from prefix."""
    return (rule.family, rule.priority), (rule.family, rule.priority, rule.src)


def foreign_conflicts(current, desired, priority_range=None, remove_foreign=False):
    """Rules on the host that a call with exclusive=true must not run over.

    A rule sitting on a priority the call uses but not created with proto
    static (so not by this collection nor NetworkManager); a rule inside the
    managed range that is not made like ours, unless remove_foreign says it
    goes (the kernel's own rules stay and are no conflict); and a rule of the
    same family outside the managed priorities that looks up a table the call
    uses. Returns messages, empty when there is nothing in the way.
    """
    priorities = {rule.priority for rule in desired}
    tables = {(rule.family, rule.table) for rule in desired}
    desired_set = set(desired)

    def managed(priority):
        if priority_range:
            return priority_range[0] <= priority <= priority_range[1]
        return priority in priorities

    problems = []
    for rule in current:
        if rule.priority in priorities and rule.proto != PROTO_STATIC and rule not in desired_set:
            problems.append('rule "%s" sits on priority %d, which this call manages, and was not created by '
                            'it (proto %s); move or remove it first'
                            % (rule.render(), rule.priority, PROTO_NAMES.get(rule.proto, rule.proto)))
        elif (priority_range and managed(rule.priority) and rule not in desired_set
              and rule.proto != PROTO_KERNEL and not removable(rule, remove_foreign)):
            problems.append('rule "%s" is inside the managed priority range %d-%d and was not made by this '
                            'collection; move it out of the range, or let it be removed '
                            '(remove_foreign, source_routing_remove_foreign_rules)'
                            % (rule.render(), priority_range[0], priority_range[1]))
        elif (not managed(rule.priority) and rule.action == 'lookup'
              and (rule.family, rule.table) in tables):
            problems.append('table %d is already looked up by rule "%s", which this call does not manage; '
                            'choose another table' % (rule.table, rule.render()))
    return problems


def render_rules(rules):
    return ''.join(rule.render() + '\n' for rule in rules)
