-- The identity goes on from where it was, not from 1.
INSERT INTO t (payload, n) VALUES ('after cut-over', 1);
