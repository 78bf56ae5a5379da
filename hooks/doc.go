// Package hooks runs the operator's executables at points of interest of a
// migration, the way gh-ost does: every executable file in the hooks
// directory whose name starts with the hook's name (on-startup,
// on-success, …) runs, in lexical order, with the migration described in
// OSC_* environment variables.
//
// It owns finding the files, running them one after another with a timeout
// (on unix the hook's whole process group is killed) and logging their
// output. It does not decide when a hook runs or what its failure means: the
// engine does.
package hooks
