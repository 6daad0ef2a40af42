"""Personal data: the customers' keys, sealing of personal values in events and messages,
erasure from the views and subject-access export."""
