"""The analytics service's domain, pure (no database, broker or HTTP): the analytic
profile and its fold (`profile`), RFM scoring (`rfm`), lifecycle stages (`lifecycle`),
the value x satisfaction matrix (`matrix`), churn rules (`churn`), the segment rule
language (`rules`), what a profile concludes (`segments`), the reporting currency
(`money`), and the one aggregate, a segment definition (`definition`)."""
