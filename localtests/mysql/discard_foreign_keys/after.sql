-- The old table's foreign key is gone: a parent only it refers to can go.
DELETE FROM t WHERE parent_id = 10;
DELETE FROM parent WHERE id = 10;
