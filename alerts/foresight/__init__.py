"""Outage-schedule foresight (issue 15): will each UPS last through the scheduled cuts ahead?

``forecast`` (pure: charge at each cut's start, at its end, the charge needed, shedding),
``watch`` (per UPS, from its own telemetry: learned battery model, true charge, recharge rate,
expected load), ``evaluator`` (``ScheduledOutageAtRisk`` and the verdicts the page shows).
"""
