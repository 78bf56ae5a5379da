-- A partitioned table (RANGE on created, part of the key, and a DEFAULT partition): the writers insert into
-- several partitions, update rows in place and move them to other partitions (a change of created: a delete and
-- an insert in the partitions, published through the root), write to partitions directly, and delete.
CREATE TABLE t (
  id int NOT NULL,
  created date NOT NULL,
  qty int NOT NULL,
  note text,
  PRIMARY KEY (id, created)
) PARTITION BY RANGE (created);
CREATE TABLE t_2024h1 PARTITION OF t FOR VALUES FROM ('2024-01-01') TO ('2024-07-01');
CREATE TABLE t_2024h2 PARTITION OF t FOR VALUES FROM ('2024-07-01') TO ('2025-01-01');
CREATE TABLE t_other PARTITION OF t DEFAULT;
CREATE INDEX t_qty ON t (qty);
INSERT INTO t (id, created, qty, note)
SELECT g, date '2023-12-01' + g % 450, g, CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || g END
FROM generate_series(1, 3000) g;
