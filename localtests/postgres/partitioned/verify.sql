SELECT id FROM t WHERE flag <> 1;
SELECT 'partitions' WHERE (SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 't'::regclass) <> 't_2024h1,t_2024h2,t_other';
SELECT id FROM t_2024h1 WHERE created < '2024-01-01' OR created >= '2024-07-01';
SELECT id FROM t_other WHERE created >= '2024-01-01' AND created < '2025-01-01';
