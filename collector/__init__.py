"""The collector role: MQTT -> validated readings -> durable spool -> batched InfluxDB writes.

A message is acknowledged to the broker only once everything it produced is safe: its lines
are in the fsynced spool and its dead letter, if any, was acknowledged by the broker.
"""
