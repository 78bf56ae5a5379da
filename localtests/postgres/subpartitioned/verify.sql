SELECT id FROM t WHERE flag <> 1;
SELECT 'partitions' WHERE (SELECT string_agg(c.relname || '<' || p.relname, ',' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhparent IN (SELECT relid FROM pg_partition_tree('t'))) <> 't_2024<t,t_2024_0<t_2024,t_2024_1<t_2024,t_2025<t,t_2025_low<t_2025,t_2025_rest<t_2025,t_other<t';
SELECT id FROM t_2024 WHERE created < '2024-01-01' OR created >= '2025-01-01';
SELECT id FROM t_2025_low WHERE bucket NOT IN (0, 1);
SELECT id FROM t_other WHERE created >= '2024-01-01' AND created < '2026-01-01';
