INSERT INTO t (id, name, qty) VALUES (2000000000, 'new', 1);
DO $$ BEGIN INSERT INTO t (id, name, qty) VALUES (2000000001, 'old-after', 1); RAISE EXCEPTION 'the new CHECK is not enforced'; EXCEPTION WHEN check_violation THEN NULL; END $$;
DO $$ BEGIN INSERT INTO t (id, name, qty) VALUES (2000000002, 'new', -1); RAISE EXCEPTION 'the original CHECK is not enforced'; EXCEPTION WHEN check_violation THEN NULL; END $$;
