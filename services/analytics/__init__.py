"""The analytics service: folds the customer, sales and interaction topics into one
analytic profile per customer, scores RFM over the population, keeps built-in and
defined segments, churn warnings and satisfaction views, and publishes its conclusions."""
