"""The CRM's services, each a package runnable as `python -m services.<name>`."""

SERVICE_NAMES = ("customer", "sales", "interaction", "analytics")
