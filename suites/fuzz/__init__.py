"""`pepharness fuzz`: seeded, rate-controlled, replayable traffic generated from the contracts."""
