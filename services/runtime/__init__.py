"""What every CRM service runs on, one package per concern: `http`, `messaging`,
`storage`, `privacy`; and the composition (`service.py`), settings, metrics, logs and
errors. The local infrastructure and the launcher of the tests live in `local/`, outside
the product."""
