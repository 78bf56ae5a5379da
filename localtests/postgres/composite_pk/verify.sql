SELECT tenant, code FROM t WHERE flag <> 1;
