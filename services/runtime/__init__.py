"""What every CRM service runs on: settings, event store, outbox relay, projection
consumer with dead-lettering, metrics, HTTP scaffolding and the embedded local
infrastructure."""
