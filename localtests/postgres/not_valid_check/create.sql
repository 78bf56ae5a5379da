-- Rows that break a NOT VALID CHECK of the original, and rows that break the
-- NOT VALID CHECK the --alter adds, which the writers keep updating (the
-- original accepts those writes: the applier must too). A plain ALTER checks
-- none of the existing rows; the new table must hold both CHECKs NOT VALID,
-- under the names a plain ALTER gives, and enforce them after the cut-over.
CREATE TABLE t (
  id int PRIMARY KEY,
  name text NOT NULL,
  qty int
);
INSERT INTO t (id, name, qty) SELECT g, 'old-' || g, g % 100 - 50 FROM generate_series(1, 3000) g;
ALTER TABLE t ADD CONSTRAINT qty_nonneg CHECK (qty >= 0) NOT VALID;
