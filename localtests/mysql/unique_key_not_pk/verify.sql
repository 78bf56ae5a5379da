SELECT uid FROM t WHERE extra IS NULL OR extra <> 7;
