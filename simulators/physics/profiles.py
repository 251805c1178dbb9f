"""Time-of-day profiles (local time at the border): traffic and radio activity.

Cargo traffic at western crossings runs day and night but peaks in the morning and the late
afternoon; radio traffic peaks at the shift changes (08:00, 20:00).
"""

from __future__ import annotations

import numpy as np

# Factor per local hour 0..23, relative to the peak.
VEHICLE_TRAFFIC = np.array(
    [0.35, 0.3, 0.25, 0.25, 0.3, 0.45, 0.65, 0.85, 1.0, 1.0, 0.95, 0.9,
     0.85, 0.85, 0.9, 0.95, 1.0, 0.95, 0.85, 0.7, 0.6, 0.5, 0.45, 0.4]
)  # fmt: skip
RADIO_DUTY = np.array(
    [0.08, 0.06, 0.05, 0.05, 0.06, 0.1, 0.2, 0.35, 0.5, 0.35, 0.3, 0.28,
     0.3, 0.28, 0.28, 0.3, 0.32, 0.3, 0.3, 0.35, 0.45, 0.3, 0.18, 0.12]
)  # fmt: skip


def at_hour(profile: np.ndarray, hour: float) -> float:
    """Linear interpolation between hourly points, wrapping at midnight."""
    low = int(hour) % 24
    frac = hour - int(hour)
    return float(profile[low] * (1.0 - frac) + profile[(low + 1) % 24] * frac)
