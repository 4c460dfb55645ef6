package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
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

// removeTree kills the processes of the cgroup dir and of every cgroup
// below it and removes them, deepest first. It returns the dirs it could
// not remove.
func removeTree(dir string) []string {
	var dirs []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var left []string
	for _, d := range slices.Backward(dirs) {
		killProcs(filepath.Join(d, "cgroup.procs"))
		if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
			left = append(left, d)
		}
	}
	return left
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
