-- Neither table has a foreign key any more; the old one still holds rows of parent 10.
SELECT CONSTRAINT_NAME, TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE();
SELECT 1 FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM t_osc_old WHERE parent_id = 10);
