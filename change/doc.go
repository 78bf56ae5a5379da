// Package change is what moves through a migration besides the plan: the
// committed row changes the capture reads (Change, one type for both
// databases) and the copy's chunks, with what each chunk's read saw
// (Chunk, Snapshot), which the engine weighs against each other. It is data
// only and imports no database driver.
//
// The engine imports it directly; cdc and copier alias its types. Reading,
// writing and comparing the changes are theirs, not this package's.
package change
