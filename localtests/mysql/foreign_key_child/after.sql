-- The old table's foreign key is gone: a parent only it refers to can go.
DELETE FROM t WHERE parent_id = 10;
DELETE FROM parent WHERE id = 10;
-- The new table's holds: a row referring to a missing parent is refused
-- (the INSERT IGNORE turns the refusal into a warning and inserts nothing).
INSERT IGNORE INTO t (id, parent_id, name) VALUES (1000000, 99999, 'orphan');
