-- Wakes the relay of an outbox table at once instead of at its next poll: a trigger
-- `AFTER INSERT ... FOR EACH STATEMENT EXECUTE FUNCTION notify_relay()` on the table
-- notifies the channel "<schema>.<table>", on which the relay leading for that table
-- listens (messaging/wakeup.py). PostgreSQL delivers the notification when the
-- inserting transaction commits, and only once per transaction and channel.
CREATE OR REPLACE FUNCTION notify_relay() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, '');
    RETURN NULL;
END $$;
