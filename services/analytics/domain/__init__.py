"""The analytics service's domain, pure (no database, broker or HTTP): the analytic
profile and its fold (`profile`), RFM scoring (`rfm`), lifecycle stages (`lifecycle`),
the value x satisfaction matrix (`matrix`), churn rules (`churn`), the segment rule
language (`rules`), what a profile concludes (`segments`), the reporting currency
(`money`), the one aggregate, a segment definition (`definition`), and the fitted
models: lifetime value and probability of being active (`lifetime_value`, from
`bg_nbd` and `gamma_gamma` on `purchase_history`), win probability (`win_probability`),
what they share (`estimation`) and how well probabilities held (`accuracy`)."""
