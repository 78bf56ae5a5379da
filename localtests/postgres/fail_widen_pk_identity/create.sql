-- The replica identity is the primary key (id): an update of tenant alone
-- would not say which row of the shadow, keyed by (id, tenant), it left.
CREATE TABLE t (
  id int NOT NULL PRIMARY KEY,
  tenant int NOT NULL
);
INSERT INTO t (id, tenant) SELECT g, g % 7 FROM generate_series(1, 500) g;
