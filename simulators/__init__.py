"""Simulated border-crossing hardware: device physics, fleets, scenarios, recording and replay.

The package itself imports nothing, so ``kordon --help`` does not load NumPy; import the
module you need:

``simulators.scenario``   ``load_scenario``, ``Scenario``: scenario files, parsed and checked
``simulators.library``    the shipped scenario library and the default fleet (paths only)
``simulators.engine``     ``ScenarioRun``: step the physics, yield what the devices send
``simulators.publish``    ``ScenarioPublisher``: play a run into a broker at a speed, stoppable
``simulators.record``     JSON-lines recordings and ``read_stream``
``simulators.mqtt``       one MQTT connection per simulated device

For example, with no broker at all::

    from simulators.engine import ScenarioRun
    from simulators.scenario import load_scenario

    run = ScenarioRun(load_scenario("normal-day"))
    for message in run.delivered(): ...   # kordon.model.rehearsal.TimedMessage
"""
