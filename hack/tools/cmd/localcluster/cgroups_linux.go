package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupMounts returns the mount points of every cgroup hierarchy (v1
// and v2) mounted read-write, from /proc/self/mountinfo.
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPEROPTIONS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, after := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 6 || len(after) < 1 {
			continue
		}
		if after[0] != "cgroup" && after[0] != "cgroup2" {
			continue
		}
		if slices.Contains(strings.Split(fields[5], ","), "ro") {
			continue
		}
		mounts = append(mounts, fields[4])
	}
	return mounts, sc.Err()
}

// createCgroup creates the cgroup rel in every hierarchy. In a v1 cpuset
// hierarchy a new cgroup has no CPUs and no memory nodes, and no process
// may join it: it gets its parent's.
func createCgroup(mounts []string, rel string) error {
	for _, m := range mounts {
		dir := filepath.Join(m, rel)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, name := range []string{"cpuset.cpus", "cpuset.mems"} {
			if _, err := os.Stat(filepath.Join(m, name)); err != nil {
				continue // not a v1 cpuset hierarchy
			}
			if err := inheritCpuset(m, rel, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// inheritCpuset copies file name (cpuset.cpus or cpuset.mems) from each
// cgroup on the path from the hierarchy's root at mount down to rel into
// the next, where it is empty.
func inheritCpuset(mount, rel, name string) error {
	parent := mount
	for _, part := range strings.Split(rel, "/") {
		child := filepath.Join(parent, part)
		cur, err := os.ReadFile(filepath.Join(child, name))
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(cur)) == "" {
			val, err := os.ReadFile(filepath.Join(parent, name))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(child, name), val, 0o644); err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(child, name), err)
			}
		}
		parent = child
	}
	return nil
}

// removeCgroup removes the cgroup rel and every cgroup below it from every
// hierarchy, deepest first, killing any process still in one (a crashed
// run's). It retries until deadline, since a cgroup whose last process
// was just killed stays busy for a moment; it returns what is left.
func removeCgroup(mounts []string, rel string, deadline time.Time) error {
	for {
		var left []string
		for _, m := range mounts {
			left = append(left, removeTree(filepath.Join(m, rel))...)
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups left: %s", strings.Join(left, " "))
		}
		time.Sleep(50 * time.Millisecond) // polled: no event says a cgroup is free
	}
}

// removeStaleCgroups removes, from every hierarchy, the cgroups named
// prefix* other than own in which no process is left and which are older
// than minAge: those of a real node whose localcluster was killed
// (SIGKILL leaves them, empty) and which no later start in the same state
// dir cleaned. A live node always has its sandbox in its cgroup; minAge
// spares one being set up right now. It returns the names it removed.
func removeStaleCgroups(mounts []string, prefix, own string, minAge time.Duration) []string {
	removed := map[string]bool{}
	for _, m := range mounts {
		dirs, _ := filepath.Glob(filepath.Join(m, prefix+"*"))
		for _, dir := range dirs {
			name := filepath.Base(dir)
			st, err := os.Stat(dir)
			if name == own || err != nil || !st.IsDir() || time.Since(st.ModTime()) < minAge || hasProcs(dir) {
				continue
			}
			if len(removeEmptyTree(dir)) == 0 {
				removed[name] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(removed))
}

// hasProcs reports whether any cgroup in the tree at dir has a process.
func hasProcs(dir string) bool {
	found := false
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "cgroup.procs" {
			if data, err := os.ReadFile(path); err != nil || len(strings.TrimSpace(string(data))) > 0 {
				found = true
			}
		}
		return nil
	})
	return found
}

// removeEmptyTree removes the cgroup dir and those below it, deepest
// first, without killing anything; it returns the dirs it could not
// remove.
func removeEmptyTree(dir string) []string {
	var dirs, left []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	for _, d := range slices.Backward(dirs) {
		if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
			left = append(left, d)
		}
	}
	return left
}

// removeTree kills the processes of the cgroup dir and of every cgroup
// below it and removes them, deepest first. It returns the dirs it could
// not remove.
func removeTree(dir string) []string {
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "cgroup.procs" {
			killProcs(path)
		}
		return nil
	})
	return removeEmptyTree(dir)
}

// killProcs sends SIGKILL to every process listed in a cgroup.procs file.
func killProcs(procsFile string) {
	data, err := os.ReadFile(procsFile)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
