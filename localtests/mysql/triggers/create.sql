-- Triggers that write an audit table and one that sets a column: osc carries
-- them to the new table (as _t_ai, _t_au, _t_bi, given their own names back
-- after the cut-over, under writes), and each must fire exactly
-- once per write of the application, before the cut-over on the table and
-- after it on the new one, and never for osc's own writes to the shadow.
CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  v INT NOT NULL DEFAULT 0,
  name VARCHAR(40) NOT NULL,
  stamp VARCHAR(20) NULL
) ENGINE=InnoDB;
CREATE TABLE audit (seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, id INT NOT NULL, op CHAR(1) NOT NULL, KEY (id)) ENGINE=InnoDB;
INSERT INTO t (id, name) SELECT seq, CONCAT('name-', seq) FROM seq_1_to_2000;
CREATE TRIGGER t_au AFTER UPDATE ON t FOR EACH ROW INSERT INTO audit (id, op) VALUES (NEW.id, 'u');
CREATE TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW INSERT INTO audit (id, op) VALUES (NEW.id, 'i');
CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW SET NEW.stamp = CONCAT('ins-', NEW.id);
