SELECT id FROM t WHERE payload = 'after cut-over' AND id <= (SELECT max(id) FROM _t_old WHERE id < 1000000);
SELECT 'id has no owned sequence' WHERE pg_get_serial_sequence('t', 'id') IS NULL;
