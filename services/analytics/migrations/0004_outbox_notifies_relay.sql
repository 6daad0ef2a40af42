-- Each transaction that adds conclusions to the outbox wakes the relay that publishes
-- them (notify_relay(): the runtime's migrations; messaging/wakeup.py).
CREATE TRIGGER outbox_notifies_relay AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION notify_relay();
