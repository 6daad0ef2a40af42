-- The ledger of predictions: every prediction the models make (purchases expected in a
-- window, the probability of buying within one, a deal's win probability beside its
-- stage's default, the population's purchases per week), every churn warning as a
-- prediction, and every prediction a person records on an activity, each with its
-- horizon, and, once settled, what happened and whether it held. Durable: a prediction
-- is a fact of its time (the model and the history it read then), which no event gives
-- back; a rebuild of the fold keeps it. Each row is published as
-- `analytics.prediction_made`, its settlement as `analytics.prediction_settled`.
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id uuid PRIMARY KEY,
    kind text NOT NULL
        CHECK (kind IN ('purchases', 'active', 'population_week', 'win', 'churn', 'activity')),
    model text NOT NULL,
    model_version integer,
    made_by text,
    customer_id uuid NOT NULL,
    opportunity_id uuid,
    activity_id text,
    made_at timestamptz NOT NULL,
    horizon_at timestamptz,
    window_days integer,
    probability double precision CHECK (probability BETWEEN 0 AND 1),
    expected double precision CHECK (expected >= 0),
    probability_active double precision,
    stage text,
    reasons text[] NOT NULL DEFAULT '{}',
    settled_at timestamptz,
    settled_by text,
    held boolean,
    happened boolean,
    actual double precision,
    CHECK ((settled_at IS NULL) = (held IS NULL))
);
-- what is still open, by subject (a customer's, a deal's, an activity's) and by horizon
CREATE INDEX IF NOT EXISTS predictions_open_customer
    ON predictions (customer_id, kind) WHERE settled_at IS NULL;
CREATE INDEX IF NOT EXISTS predictions_open_deal
    ON predictions (opportunity_id) WHERE settled_at IS NULL AND opportunity_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS predictions_open_horizon
    ON predictions (horizon_at) WHERE settled_at IS NULL;
-- the lists: newest first, overall and of one customer or deal
CREATE INDEX IF NOT EXISTS predictions_made ON predictions (made_at DESC, prediction_id DESC);
CREATE INDEX IF NOT EXISTS predictions_customer
    ON predictions (customer_id, made_at DESC, prediction_id DESC);
CREATE INDEX IF NOT EXISTS predictions_deal
    ON predictions (opportunity_id, made_at DESC) WHERE opportunity_id IS NOT NULL;
-- a person's prediction is recorded once per activity
CREATE UNIQUE INDEX IF NOT EXISTS predictions_activity
    ON predictions (opportunity_id, activity_id) WHERE activity_id IS NOT NULL;
-- accuracy: the settled predictions of a model
CREATE INDEX IF NOT EXISTS predictions_settled
    ON predictions (model, kind, settled_at) WHERE settled_at IS NOT NULL;
