"""The decision log: durable, tamper-evident, PHI-minimised records of every decision."""
