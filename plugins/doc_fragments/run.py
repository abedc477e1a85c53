# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The O(run) option of the modules that change a host."""

    DOCUMENTATION = r'''
options:
  run:
    description:
      - The run this call is a step of, as the P(roce.multirail.source_routing#role) role passes it. A run
        holds the host from M(roce.multirail.rail_guard)'s check to its last changing step, so two runs never
        interleave their changes, and a run whose hold went to another run changes nothing more and restores
        nothing.
      - Without it the call still takes the host's lock for its own duration, and waits for a run that holds
        the host to end.
    type: dict
    suboptions:
      id:
        description: The run's id, the same for every step of one run.
        type: str
        required: true
      timeout:
        description:
          - Seconds to wait for another run that holds the host; also how long after this run's last step its
            own hold lasts if it never finishes (killed).
        type: int
        default: 300
      finish:
        description: This call is the run's last changing step; the hold is given back when it succeeds.
        type: bool
        default: false
'''
