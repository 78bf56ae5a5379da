-- Writes on the new table fire its triggers; its foreign keys hold.
UPDATE t SET v = v + 1 WHERE id <= 5;
INSERT INTO t (id, parent_id, k, name) VALUES (1000000, 1, 1, 'after');
INSERT IGNORE INTO t (id, parent_id, k, name) VALUES (1000001, 99999, 1, 'orphan');
