-- The --alter widens the primary key (id) to (id, tenant): no key is in both
-- tables, so osc copies by id and tells the shadow's rows apart by
-- (id, tenant), which the replica identity (FULL) carries in every old row.
-- The writers change tenant (the new key's other column), id, and re-insert
-- deleted ids with another tenant.
CREATE TABLE t (
  id int NOT NULL PRIMARY KEY,
  tenant int NOT NULL,
  qty int NOT NULL,
  note varchar(100)
);
CREATE INDEX t_tenant ON t (tenant);
ALTER TABLE t REPLICA IDENTITY FULL;
INSERT INTO t (id, tenant, qty, note)
SELECT g, g % 7, g, CASE WHEN g % 4 = 0 THEN NULL ELSE 'note ' || g END FROM generate_series(1, 3000) g;
