-- The --alter widens the primary key (id) to (id, tenant): no key is in both
-- tables, so osc copies by id and tells the shadow's rows apart by
-- (id, tenant). The writers change tenant (the new key's other column), id,
-- and re-insert deleted ids with another tenant.
CREATE TABLE t (
  id INT NOT NULL,
  tenant INT NOT NULL,
  qty INT NOT NULL,
  note VARCHAR(100) NULL,
  PRIMARY KEY (id),
  KEY ix_tenant (tenant)
) ENGINE=InnoDB;
INSERT INTO t (id, tenant, qty, note)
SELECT seq, seq % 7, seq, IF(seq % 4 = 0, NULL, CONCAT('note ', seq)) FROM seq_1_to_3000;
