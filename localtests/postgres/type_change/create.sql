CREATE TABLE t (
  id int PRIMARY KEY,
  n int,
  label varchar(20) NOT NULL
);
INSERT INTO t (id, n, label)
SELECT g,
       CASE g % 5 WHEN 0 THEN -2147483648 WHEN 1 THEN 2147483647 WHEN 2 THEN NULL ELSE g * 7919 - 10000000 END,
       CASE g % 3 WHEN 0 THEN repeat('é', 20) WHEN 1 THEN lpad(g::text, 20, '0') ELSE '' END
FROM generate_series(1, 3000) g;
