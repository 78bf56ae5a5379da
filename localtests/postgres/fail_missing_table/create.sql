-- Creates another table, not t.
CREATE TABLE u (id int PRIMARY KEY);
