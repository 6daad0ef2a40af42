"""The soak reads which tables `crm rebuild` rebuilt from what it prints."""

from bench.soak.checks import rebuilt_tables
from services.runtime.messaging.rebuild import RebuildReport


def test_the_tables_of_every_projection_are_read_from_the_rebuild_summary() -> None:
    reports = [
        RebuildReport("sales_views", 120, 0, ["opportunities", "pipeline"], 1.5, 0.4, 0.0),
        RebuildReport("sales_customers", 80, 2, ["customers"], 0.2, 0.1, 0.0),
    ]
    printed = "\n".join(report.summary() for report in reports)

    assert rebuilt_tables(printed) == ["opportunities", "pipeline", "customers"]
    assert "80 events/s" in printed  # 120 messages read and applied in 1.5 s
