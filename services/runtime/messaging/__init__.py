"""Kafka for every service: clients, the batch consumer with dead-lettering, projections
applied exactly once, the outbox relay, inbound message handling and rebuilds."""
