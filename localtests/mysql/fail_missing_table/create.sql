-- Creates another table, not t.
CREATE TABLE u (id INT NOT NULL PRIMARY KEY) ENGINE=InnoDB;
