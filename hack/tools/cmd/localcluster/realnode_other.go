//go:build !linux

package main

import (
	"os"
	"time"
)

// realNode is not implemented here: the real node needs Linux.
type realNode struct{}

// startRealNode reports that the real node needs Linux.
func (c *cluster) startRealNode(time.Time, <-chan os.Signal) error {
	return &errNodeUnavailable{"the real node needs Linux (namespaces, cgroups)"}
}

// drain does nothing: there is no real node here.
func (n *realNode) drain(*cluster) {}

// cleanup does nothing: there is no real node here.
func (n *realNode) cleanup() {}

// abandonNode does nothing: there is no real node here.
func (c *cluster) abandonNode() {}

// runSandbox is not implemented here.
func runSandbox([]string) int { return 1 }
