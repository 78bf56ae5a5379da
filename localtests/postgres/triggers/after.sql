-- Writes on the new table fire its triggers.
UPDATE t SET v = v + 1 WHERE id <= 5;
INSERT INTO t (id) VALUES (1000000000);
