"""What a rehearsal hands the alert engine: timed messages and the alerts they must raise.

A rehearsal (``kordon scenario verify``) runs the engine in process over a stream of messages
as the broker would have delivered them, on the stream's own clock, and checks the outcome
against expectations. The simulators produce both halves and the alert engine consumes them,
so their common vocabulary lives here, in the kernel: neither role imports the other.
"""

from __future__ import annotations

from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kordon.durations import Duration


class TimedMessage(NamedTuple):
    """One MQTT message as a subscriber receives it, at its event time (epoch seconds)."""

    time: float
    topic: str
    payload: bytes


class Expectation(BaseModel):
    """An alert that must fire (``within`` of ``after``), never fire, or resolve by a time.

    Times count from the start of the stream. Scenario files carry these in their ``expect``
    block; the alert engine's verifier checks them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    alertname: str
    labels: dict[str, str] = Field(default_factory=dict)
    after: Duration = 0.0
    within: Duration | None = None
    never: bool = False
    resolve_by: Duration | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Expectation:
        if self.never and (self.within is not None or self.resolve_by is not None):
            raise ValueError("never: true cannot be combined with within or resolve_by")
        if not self.never and self.within is None and self.resolve_by is None:
            raise ValueError("say within: <duration>, resolve_by: <duration> or never: true")
        return self
