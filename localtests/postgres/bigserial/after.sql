-- The sequence still feeds the new table, from where it was.
INSERT INTO t (payload, n) VALUES ('after cut-over', 1);
