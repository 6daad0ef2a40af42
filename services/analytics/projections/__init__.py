"""The analytics fold and what it keeps: `fold` (the `AnalyticsFold` projection),
`store` (profiles, RFM boundaries, segment rules), `conclusions` (memberships, churn
warnings, outbox envelopes), `rescoring` (RFM boundaries moved, conclusions drawn
again), `details` (rows behind the customer 360 and satisfaction views), `cache` (the
fold's memory of what it wrote), `writers` (the writers' lock and token), `bulk` (batch
writes), `tables` (the DDL), `rebuild` (what a rebuild settles) and `maintenance` (the
background re-scoring and sweep)."""
