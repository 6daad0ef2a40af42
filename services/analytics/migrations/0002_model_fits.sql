-- Every fit of the predictive models (BG/NBD, Gamma-Gamma), as a numbered version per
-- model: what the fit concluded, when, over how many customers, its parameters and
-- log-likelihood, whether the optimiser converged and why not. A fit over a population
-- too small keeps no parameters (`outcome` not_enough_data, with the count and the
-- minimum). The model in use is a model's latest converged version. Durable: a fit is
-- a fact of its time (the population it saw), which no event gives back, and a rebuild
-- of the fold keeps it.
CREATE TABLE IF NOT EXISTS model_fits (
    model text NOT NULL,
    version integer NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('fitted', 'not_converged', 'not_enough_data')),
    fitted_at timestamptz NOT NULL,
    trigger text NOT NULL,
    population integer NOT NULL,
    excluded integer NOT NULL DEFAULT 0,
    parameters jsonb,
    log_likelihood double precision,
    converged boolean NOT NULL,
    message text NOT NULL,
    shortfall jsonb,
    PRIMARY KEY (model, version)
);
CREATE INDEX IF NOT EXISTS model_fits_in_use ON model_fits (model, version DESC) WHERE converged;
