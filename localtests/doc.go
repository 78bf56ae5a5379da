// Package localtests runs osc against real MariaDB and PostgreSQL servers (the
// sandbox: bash localtests/sandbox.sh up) while writers change the table, and
// proves that the migrated table holds exactly the rows of the original.
//
// Each directory under mysql/ and postgres/ is one case; see README.md for the
// file format. Besides those cases it holds the stress runs (stress_test.go,
// make stress), the differential test against a plain ALTER TABLE
// (differential_test.go, cases in differential/) and the tests of the osc
// binary's resume, interruption, checksum, native ALTER, TLS, --conf and
// metrics. It is tests only; this file is its one non-test file.
package localtests
