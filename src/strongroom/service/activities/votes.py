"""Votes: approve or reject an activity that waits for consensus (APPROVE_ACTIVITY, REJECT_ACTIVITY).

A vote names its target by fingerprint; it has no reader of its own: the pipeline's consensus
(`Pipeline._vote`) records it, decides the target again with the new vote, and executes the
target, exactly once, when its consensus is reached.
"""

from __future__ import annotations

from typing import Final

from strongroom.service.activities.base import activity
from strongroom.service.activities.schema import json_object, json_string

_VOTE: Final = json_object(["fingerprint"], fingerprint=json_string(128))
APPROVE: Final = activity("ACTIVITY_TYPE_APPROVE_ACTIVITY", None, "ACTIVITY", "APPROVE", _VOTE)
REJECT: Final = activity("ACTIVITY_TYPE_REJECT_ACTIVITY", None, "ACTIVITY", "REJECT", _VOTE)
ACTIVITIES: Final = (APPROVE, REJECT)
