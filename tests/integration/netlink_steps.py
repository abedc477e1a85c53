"""Steps of tests/integration/test_netlink_socket.py, run inside a lab namespace.

`python -m netlink_steps STEP < JSON` runs one step with netlink.py's own socket
in the namespace the process was started in (`ip netns exec`), and prints what
it found as JSON. A step that wants something changed behind the planner's back
(another tool adding a rule, a NIC removed) does it between the dump and the
apply, as `ip` commands of its own.
"""

import json
import subprocess
import sys

from ansible_collections.roce.multirail.plugins.module_utils import netlink
from ansible_collections.roce.multirail.plugins.module_utils.routes import Route, TableSpec, add_order, decide_routes
from ansible_collections.roce.multirail.plugins.module_utils.rules import Rule, decide_rules


def ip(*argv):
    subprocess.run(['ip'] + list(argv), check=True, capture_output=True)


def rules(sources):
    return [Rule(family=4, priority=1001, src=source + '/32', table=101) for source in sources]


def add_rules(sources, meanwhile=()):
    """Add a rule per source in one call; `meanwhile` (ip arguments) runs after the dump."""
    with netlink.connect() as nl:
        current, raw = netlink.dump_rules(nl)
        changes = decide_rules(current, rules(sources))
        for argv in meanwhile:
            ip(*argv)
        try:
            netlink.apply_rules(nl, changes, raw)
        except netlink.ApplyError as exc:
            return {'error': str(exc), 'sent': len(changes.ops)}
        return {'error': None, 'sent': len(changes.ops)}


def add_routes(routes, meanwhile=()):
    """Add routes ([table, dst, dev]) in one call; `meanwhile` (ip arguments) runs after the link dump."""
    with netlink.connect() as nl:
        links = netlink.dump_links(nl)
        current, raw = netlink.dump_routes(nl, links)
        tables = {}
        for table, dst, dev in routes:
            tables.setdefault(table, []).append(Route(table=table, dst=dst, dev=dev, metric=100, scope=253))
        changes = decide_routes(current, [TableSpec(table, tuple(found)) for table, found in tables.items()])
        for argv in meanwhile:
            ip(*argv)
        try:
            netlink.apply_routes(nl, changes, links, raw, add_order)
        except netlink.ApplyError as exc:
            return {'error': str(exc), 'sent': len(changes.add)}
        return {'error': None, 'sent': len(changes.add)}


def dump():
    """What the dumps say: rules and routes as `ip` prints them, links and addresses."""
    with netlink.connect() as nl:
        links = netlink.dump_links(nl)
        found_rules, _raw = netlink.dump_rules(nl)
        found_routes, _raw = netlink.dump_routes(nl, links)
        return {'rules': [rule.render() for rule in found_rules],
                'routes': [[route.table, route.render()] for route in found_routes],
                'links': dict((name, [link.up, list(link.addresses)]) for name, link in links.items())}


def main():
    step, args = sys.argv[1], json.load(sys.stdin)
    print(json.dumps({'add_rules': add_rules, 'add_routes': add_routes, 'dump': dump}[step](**args)))


if __name__ == '__main__':
    main()
