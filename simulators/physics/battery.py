"""Lead-acid (VRLA) battery arithmetic shared by the UPS and radio DC plant models.

Peukert's law with the capacity rated at the 20-hour rate: a battery of ``E`` Wh delivers
power ``P`` for ``20 h * (E / (20 h * P)) ** k`` from full. Under a varying load the state of
charge falls by ``dt / runtime(P)`` per step, the usual way of applying Peukert to a profile.
"""

from __future__ import annotations

import numpy as np

RATED_HOURS = 20.0


def peukert_runtime_s(capacity: np.ndarray, drain: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """Seconds from full at a constant ``drain`` (W with capacity in Wh, or A with Ah)."""
    drain = np.maximum(drain, 1e-6)
    return RATED_HOURS * 3600.0 * (capacity / (RATED_HOURS * drain)) ** exponent


def temperature_factor(celsius: np.ndarray) -> np.ndarray:
    """Usable capacity vs 25 °C: about -0.8 %/°C below (70 % at -12 °C), a little more above."""
    return np.clip(1.0 + 0.008 * (np.asarray(celsius) - 25.0), 0.3, 1.05)


def block_voltage_discharging(soc: np.ndarray, c_rate: np.ndarray) -> np.ndarray:
    """Terminal voltage of one 12 V block on discharge: about 12.8 V full, 11.9 V at the knee.

    The last few per cent fall steeply towards the 10.8 V cut-off; a heavy load (``c_rate`` is
    drain over one-hour capacity) sags the voltage further.
    """
    knee = 1.1 * np.exp(-np.maximum(soc, 0.0) / 0.04)
    return 11.9 + 0.9 * soc - 0.25 * np.minimum(c_rate, 4.0) - knee


def block_voltage_charging(soc: np.ndarray) -> np.ndarray:
    """On the charger: rising to the 13.5-13.6 V float voltage as the block fills."""
    return 13.0 + 0.55 * np.clip(soc, 0.0, 1.0)
