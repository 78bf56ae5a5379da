-- A partition that is itself partitioned: osc migrates one level of partitions only.
CREATE TABLE t (
  id int NOT NULL,
  created date NOT NULL,
  PRIMARY KEY (id, created)
) PARTITION BY RANGE (created);
CREATE TABLE t_2024 PARTITION OF t FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY HASH (id);
CREATE TABLE t_2024_0 PARTITION OF t_2024 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE t_2024_1 PARTITION OF t_2024 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO t (id, created) SELECT g, date '2024-01-01' + g % 300 FROM generate_series(1, 500) g;
