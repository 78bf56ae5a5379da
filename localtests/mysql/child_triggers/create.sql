-- A child table with triggers that write an audit table: osc carries its
-- foreign keys (fk_parent as _fk_parent, _fk_kind as fk_kind) and its
-- triggers (t_au as _t_au, ...) to the new table, and once the old table no
-- longer holds those names, gives them back under one short lock while the
-- writers go on: each write fires each trigger exactly once throughout, and
-- the new table ends with the names a plain ALTER TABLE keeps.
CREATE TABLE parent (id INT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL) ENGINE=InnoDB;
INSERT INTO parent SELECT seq, CONCAT('p', seq) FROM seq_1_to_20;
CREATE TABLE kind (id INT NOT NULL PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO kind SELECT seq FROM seq_0_to_9;
CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  parent_id INT NOT NULL,
  k INT NOT NULL DEFAULT 0,
  v INT NOT NULL DEFAULT 0,
  name VARCHAR(40) NOT NULL,
  stamp VARCHAR(20) NULL,
  KEY by_parent (parent_id),
  CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON UPDATE NO ACTION,
  CONSTRAINT _fk_kind FOREIGN KEY (k) REFERENCES kind (id)
) ENGINE=InnoDB;
CREATE TABLE audit (seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, id INT NOT NULL, op CHAR(1) NOT NULL, KEY (id)) ENGINE=InnoDB;
INSERT INTO t (id, parent_id, k, name) SELECT seq, 1 + seq % 10, seq % 10, CONCAT('name-', seq) FROM seq_1_to_2000;
CREATE TRIGGER t_au AFTER UPDATE ON t FOR EACH ROW INSERT INTO audit (id, op) VALUES (NEW.id, 'u');
CREATE TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW INSERT INTO audit (id, op) VALUES (NEW.id, 'i');
CREATE TRIGGER t_ad AFTER DELETE ON t FOR EACH ROW INSERT INTO audit (id, op) VALUES (OLD.id, 'd');
CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW SET NEW.stamp = CONCAT('ins-', NEW.id);
