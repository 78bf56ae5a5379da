-- Partitions that are themselves partitioned: RANGE on created, then HASH on id for 2024, LIST on bucket for
-- 2025 with a DEFAULT sub-partition, and a DEFAULT partition at the top. The writers insert at every level,
-- update in place, move rows between partitions and sub-partitions (a delete and an insert, published through
-- the root), write to a sub-partition directly, and delete.
CREATE TABLE t (
  id int NOT NULL,
  created date NOT NULL,
  bucket int NOT NULL,
  qty int NOT NULL,
  note text,
  PRIMARY KEY (id, created, bucket)
) PARTITION BY RANGE (created);
CREATE TABLE t_2024 PARTITION OF t FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY HASH (id);
CREATE TABLE t_2024_0 PARTITION OF t_2024 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE t_2024_1 PARTITION OF t_2024 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE t_2025 PARTITION OF t FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') PARTITION BY LIST (bucket);
CREATE TABLE t_2025_low PARTITION OF t_2025 FOR VALUES IN (0, 1);
CREATE TABLE t_2025_rest PARTITION OF t_2025 DEFAULT;
CREATE TABLE t_other PARTITION OF t DEFAULT;
CREATE INDEX t_qty ON t (qty);
INSERT INTO t (id, created, bucket, qty, note)
SELECT g, date '2023-10-01' + g % 900, g % 4, g, CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || g END
FROM generate_series(1, 3000) g;
