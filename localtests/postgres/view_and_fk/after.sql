INSERT INTO t (id, name, qty) VALUES (2000000000, 'after cut-over', 1);
INSERT INTO child (id, t_id) VALUES (2000000000, 2000000000);
SELECT count(*) FROM v;
