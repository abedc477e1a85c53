# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter turning the source_routing inventory contract into the host's plan."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.roce.multirail.plugins.module_utils.plan import PlanError, build_plan


def source_routing_plan(rails, table_base=100, priority_base=1000, destination='0.0.0.0/0', metric=100,
                        rail_sysctls=None, all_sysctls=None, priority_range=None):
    try:
        return build_plan(rails, table_base=table_base, priority_base=priority_base, destination=destination,
                          metric=metric, rail_sysctls=rail_sysctls, all_sysctls=all_sysctls,
                          priority_range=priority_range)
    except PlanError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule:
    """roce.multirail filters."""

    def filters(self):
        return {'source_routing_plan': source_routing_plan}
