// Package load keeps a fixed-rate write load on a table while osc migrates it
// (for osc-demo and osc-bench), and reports what the writers saw: errors and
// how long each write took.
package load
