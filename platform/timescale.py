"""The time scale of every survival time in sabrkit: months = days / 30.4375.

30.4375 days is the mean month of the Gregorian calendar (365.25 / 12). The registry's endpoints,
its visit schedule and the synthetic cohort's generator all express time with this one constant.
"""

from __future__ import annotations

__all__ = ["DAYS_PER_MONTH"]

#: Days per month used to express survival times and visit schedules in months (365.25 / 12).
DAYS_PER_MONTH = 30.4375
