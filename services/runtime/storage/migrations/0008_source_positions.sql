-- How far each consumer got through each partition of the topics it reads, in the
-- positions of each relay source publishing there (the `crm-position` header: the
-- source's name and the notification id or outbox row): every message of that source on
-- the partition up to `position` was handled. Written
-- after each batch (it may lag behind, never run ahead). Lets a consumer skip a message
-- republished after a broker lost its topics without reading it (messaging/positions.py).
CREATE TABLE consumer_positions (
    consumer text NOT NULL,
    source text NOT NULL,  -- the relay source, as in outbox_position
    partition integer NOT NULL,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, source, partition)
);
