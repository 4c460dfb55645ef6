// Package metrics is a small, hand-written Prometheus exposition library: it
// renders counters, gauges and histograms in the text format, version 0.0.4,
// and adapts client-go's workqueue and REST client hooks to them.
//
// It exists because the module may depend directly only on k8s.io/*
// modules, which rules out the Prometheus client library; the
// controller needs only a handful of metric kinds, so a few hundred lines
// that are tested against a strict parser are cheaper than a dependency.
//
// All state hangs off a *Registry: there are no package-level variables, so
// tests build a fresh registry each and nothing leaks between them. The one
// process-wide side effect is RegisterClientGoMetrics, because client-go
// itself keeps its REST client hooks in package globals.
//
// Mistakes in how a metric is declared or used (an invalid or duplicate
// name, a wrong number of label values, unsorted histogram buckets, a
// counter decremented) are programming errors and panic with a message that
// names the metric, the way a bad regexp.MustCompile does: they show up on
// the first test run rather than as a silently wrong dashboard.
//
// Label values are bound by position, in the order the label names were
// given at registration. Values that are not valid UTF-8 have each invalid
// byte sequence replaced with U+FFFD, because the exposition format requires
// UTF-8 and a scrape should not fail on data the controller merely observed.
package metrics
