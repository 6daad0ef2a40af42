"""The analytics tables: what the fold keeps (profiles, RFM boundaries, segment rules,
segment history, churn warnings, the detail rows behind the views) and the writers'
token. The profiles' scores of the lifetime value models are written by the scoring
(`scoring`), not the fold: the fold only marks a customer whose purchases changed
(`scores_stale`); likewise the learned win probability of open opportunities (`win_*`
columns, `scoring.score_open_deals`). The outbox of conclusions that the service's relay
publishes is durable: it comes from the service's migrations (`services/analytics/migrations/`)."""

from __future__ import annotations

import asyncpg

OUTBOX_TABLE = "outbox"

TABLES = """
CREATE TABLE IF NOT EXISTS profiles (
    customer_id uuid PRIMARY KEY,
    state text NOT NULL,
    registered boolean NOT NULL,
    name text, kind text, industry text, region text, owner text,
    importance_tier text, loyalty_stage text, value_behaviour text, relationship_level text,
    tags text[] NOT NULL DEFAULT '{}',
    purchase_count integer NOT NULL,
    total_spend numeric(20, 2) NOT NULL,
    first_purchase_at timestamptz,
    first_spend numeric(20, 2),
    last_purchase_at timestamptz,
    last_purchase_date date,
    last_contact_at timestamptz,
    csat_average double precision,
    csat_count integer NOT NULL,
    nps_latest smallint,
    complaints_open integer NOT NULL,
    complaints_total integer NOT NULL,
    recency_score smallint,
    frequency_score smallint,
    monetary_score smallint,
    rfm_segment text,
    lifecycle_stage text NOT NULL,
    value_tier text NOT NULL,
    satisfaction text NOT NULL,
    quadrant text,
    churn_risk boolean NOT NULL,
    updated_at timestamptz NOT NULL,
    expected_purchases_30d double precision,
    expected_purchases_90d double precision,
    expected_purchases_365d double precision,
    probability_active double precision,
    expected_spend numeric(20, 2),
    lifetime_value numeric(20, 2),
    scored_at timestamptz,
    bg_nbd_version integer,
    gamma_gamma_version integer,
    scores_stale boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS profiles_scores_stale ON profiles (customer_id) WHERE scores_stale;
CREATE INDEX IF NOT EXISTS profiles_lifetime_value ON profiles (lifetime_value, customer_id)
    WHERE lifetime_value IS NOT NULL;
CREATE INDEX IF NOT EXISTS profiles_recency ON profiles (last_purchase_date)
    WHERE purchase_count > 0;
CREATE INDEX IF NOT EXISTS profiles_frequency ON profiles (purchase_count)
    WHERE purchase_count > 0;
CREATE INDEX IF NOT EXISTS profiles_monetary ON profiles (total_spend) WHERE purchase_count > 0;
CREATE INDEX IF NOT EXISTS profiles_unscored ON profiles (customer_id)
    WHERE purchase_count > 0 AND recency_score IS NULL;
CREATE TABLE IF NOT EXISTS rfm_state (
    id integer PRIMARY KEY CHECK (id = 1),
    recency date[],
    frequency integer[],
    monetary numeric[],
    dirty boolean NOT NULL DEFAULT true,
    buyers bigint NOT NULL DEFAULT 0,
    scored_at timestamptz
);
INSERT INTO rfm_state (id) VALUES (1) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS segment_rules (
    segment text PRIMARY KEY,
    version integer NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    rule jsonb NOT NULL,
    defined_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS segment_rule_versions (
    segment text NOT NULL,
    version integer NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    rule jsonb NOT NULL,
    defined_at timestamptz NOT NULL,
    PRIMARY KEY (segment, version)
);
CREATE TABLE IF NOT EXISTS segment_history (
    id bigserial PRIMARY KEY,
    customer_id uuid NOT NULL,
    segment text NOT NULL,
    rule_version integer NOT NULL,
    entered_at timestamptz NOT NULL,
    entered_values jsonb NOT NULL,
    left_at timestamptz,
    left_values jsonb
);
CREATE UNIQUE INDEX IF NOT EXISTS segment_current
    ON segment_history (customer_id, segment) WHERE left_at IS NULL;
CREATE INDEX IF NOT EXISTS segment_members ON segment_history (segment, customer_id)
    WHERE left_at IS NULL;
CREATE INDEX IF NOT EXISTS segment_as_of ON segment_history (segment, entered_at);
CREATE TABLE IF NOT EXISTS churn_warnings (
    customer_id uuid PRIMARY KEY,
    raised_at timestamptz NOT NULL,
    reasons text[] NOT NULL,
    value_tier text NOT NULL,
    "values" jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS interactions (
    interaction_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    started_at timestamptz NOT NULL,
    channel text NOT NULL,
    direction text NOT NULL,
    subject text NOT NULL,
    version integer NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS interactions_customer ON interactions (customer_id, started_at);
CREATE TABLE IF NOT EXISTS surveys (
    event_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    survey text NOT NULL,
    answered_at timestamptz NOT NULL,
    csat smallint,
    nps smallint,
    channel text
);
CREATE INDEX IF NOT EXISTS surveys_customer ON surveys (customer_id);
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    kind text,
    channel text,
    category text,
    severity text,
    subject text,
    assignee text,
    opened_at timestamptz,
    resolved_at timestamptz,
    resolution_due_at timestamptz,
    due_version integer NOT NULL DEFAULT 0,
    status text NOT NULL,
    status_version integer NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_customer ON tickets (customer_id);
CREATE TABLE IF NOT EXISTS opportunities (
    opportunity_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    description text,
    owner text,
    stage text,
    stage_version integer NOT NULL DEFAULT 0,
    expected_amount numeric(20, 4),
    currency text,
    expected_close_date date,
    updated_at timestamptz NOT NULL,
    region text,
    product text,
    opened_at timestamptz,
    closed_at timestamptz,
    closing_stage text,
    closing_version integer NOT NULL DEFAULT 0,
    win_probability double precision,
    win_baseline double precision,
    win_factors jsonb,
    win_model_version integer,
    win_scored_at timestamptz
);
CREATE INDEX IF NOT EXISTS opportunities_customer ON opportunities (customer_id);
CREATE TABLE IF NOT EXISTS opportunity_activities (
    opportunity_id uuid NOT NULL,
    activity_id text NOT NULL,
    customer_id uuid NOT NULL,
    kind text,
    owner text,
    scheduled_on date,
    planned_at timestamptz,
    predicted boolean NOT NULL DEFAULT false,
    completed_at timestamptz,
    prediction_held boolean,
    PRIMARY KEY (opportunity_id, activity_id)
);
CREATE INDEX IF NOT EXISTS opportunity_activities_predicted
    ON opportunity_activities (opportunity_id, activity_id) WHERE predicted;
CREATE TABLE IF NOT EXISTS purchases (
    event_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    kind text NOT NULL,
    reference text NOT NULL,
    source text,
    occurred_at timestamptz NOT NULL,
    amount numeric(22, 4) NOT NULL,
    currency text NOT NULL,
    reporting_amount numeric(22, 2) NOT NULL
);
CREATE INDEX IF NOT EXISTS purchases_customer ON purchases (customer_id, occurred_at);
CREATE INDEX IF NOT EXISTS purchases_time ON purchases (occurred_at);
CREATE TABLE IF NOT EXISTS contracts (
    opportunity_id uuid NOT NULL,
    contract_id text NOT NULL,
    customer_id uuid NOT NULL,
    amount numeric(22, 4) NOT NULL,
    currency text NOT NULL,
    signed_on date NOT NULL,
    PRIMARY KEY (opportunity_id, contract_id)
);
CREATE INDEX IF NOT EXISTS contracts_customer ON contracts (customer_id);
CREATE TABLE IF NOT EXISTS contract_payments (
    opportunity_id uuid NOT NULL,
    payment_id text NOT NULL,
    contract_id text NOT NULL,
    customer_id uuid NOT NULL,
    amount numeric(22, 4) NOT NULL,
    currency text NOT NULL,
    received_on date NOT NULL,
    PRIMARY KEY (opportunity_id, payment_id)
);
CREATE INDEX IF NOT EXISTS contract_payments_contract
    ON contract_payments (opportunity_id, contract_id);
CREATE TABLE IF NOT EXISTS contacts (
    customer_id uuid NOT NULL,
    contact_id text NOT NULL,
    name text,
    title text,
    phones text[] NOT NULL DEFAULT '{}',
    emails text[] NOT NULL DEFAULT '{}',
    removed boolean NOT NULL DEFAULT false,
    version integer NOT NULL,
    PRIMARY KEY (customer_id, contact_id)
);
CREATE TABLE IF NOT EXISTS consent (
    customer_id uuid PRIMARY KEY,
    preferred text[] NOT NULL DEFAULT '{}',
    opted_out text[] NOT NULL DEFAULT '{}',
    version integer NOT NULL
);
"""

WRITER_TOKEN_TABLE = """
CREATE TABLE IF NOT EXISTS writer_token (
    id integer PRIMARY KEY CHECK (id = 1),
    token uuid NOT NULL
);
INSERT INTO writer_token (id, token) VALUES (1, gen_random_uuid()) ON CONFLICT DO NOTHING;
"""
"""The token each writer leaves (`writers.claim`)."""


async def create_tables(connection: asyncpg.Connection) -> None:
    await connection.execute(TABLES)
    await connection.execute(WRITER_TOKEN_TABLE)
