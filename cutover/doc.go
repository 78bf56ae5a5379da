// Package cutover swaps the original table and the shadow atomically,
// blocking writers only briefly and never failing them; while writes are
// blocked it calls the engine's drain, which applies every change committed
// before the lock. Lock timeouts are retried.
//
//   - mysql.go: gh-ost's two-connection sentry algorithm (LOCK TABLES, a
//     queued RENAME TABLE, the sentry dropped, UNLOCK TABLES);
//     mysql_names.go gives the new table's carried foreign keys and
//     triggers their own names back once the old table's are gone;
//   - postgres.go: the renames in one transaction under the original's
//     lock, carrying over what binds to the original's oid (index and
//     sequence names, views, foreign keys, ownership, grants, the comment,
//     the replica identity); postgres_names.go gives the new table's
//     objects the original's names.
//
// It owns the swap. It does not apply the changes (the drain does, through
// the applier) or clean up after the migration (the dialect's Cleanup).
package cutover
