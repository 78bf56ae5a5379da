// Command osc-bench measures osc against the sandbox, on MariaDB and on
// PostgreSQL, and against the tool DBAs would otherwise use there (gh-ost,
// pg_repack, when found). On a table of N rows it times the server's own
// `INSERT INTO copy SELECT * FROM t`, runs the write load alone for the
// writers' baseline, then osc and the peer with no load and under a
// fixed-rate open-loop write load, and osc's applier on a backlog of one
// big UPDATE. It prints rates and ratios (to raw, osc to its peer), what the
// writers saw (p50/p99/max from each write's scheduled start, errors, the
// longest write during the checksum and the cut-over), the targets
// met or missed, and draws the writers' latency over the loaded runs, with
// osc's phases, into an SVG file. -apply-only runs the applier's backlog
// alone, and -apply-osc times several osc binaries on it in turn, in the
// same run (old and new, alternating, on a shared noisy machine). The
// MySQL database is OSC_BENCH_MYSQL_DATABASE (osc_demo when unset), the
// PostgreSQL one OSC_PG_DSN's.
//
// It runs the binaries it is given (make bench builds osc) and keeps the
// load with package internal/load; it is a developer's tool, not part of osc.
package main
