package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// maxCPUProfile is the longest CPU profile taken.
const maxCPUProfile = 30 * time.Second

// profiler saves pprof profiles of reroll processes to a directory as
// <scenario>-<label>-cpu.pprof and <scenario>-<label>-heap.pprof. A nil
// profiler does nothing, which is how --profile-dir is off.
type profiler struct {
	dir      string
	scenario string
	log      *logger

	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

// startCPU starts a CPU profile of r lasting d (at most maxCPUProfile) in
// the background. finish waits for it.
func (p *profiler) startCPU(r *reroll, label string, d time.Duration) {
	if p == nil {
		return
	}
	d = min(max(d, time.Second), maxCPUProfile)
	p.wg.Go(func() {
		// Not under the scenario's context: a CPU profile ends on its own,
		// and reroll is stopped only after finish has waited for it.
		ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
		defer cancel()
		path := p.path(label, "cpu")
		secs := strconv.Itoa(int(d.Round(time.Second) / time.Second))
		if err := p.save(ctx, r, "/debug/pprof/profile?seconds="+secs, path); err != nil {
			p.fail(fmt.Errorf("CPU profile %s: %w", path, err))
			return
		}
		p.log.printf("saved %s (%ss)", path, secs)
	})
}

// finish waits for r's CPU profile, then saves its heap profile. Call it
// before stopping r.
func (p *profiler) finish(ctx context.Context, r *reroll, label string) {
	if p == nil {
		return
	}
	p.wg.Wait()
	path := p.path(label, "heap")
	if err := p.save(ctx, r, "/debug/pprof/heap", path); err != nil {
		p.fail(fmt.Errorf("heap profile %s: %w", path, err))
		return
	}
	p.log.printf("saved %s", path)
}

// err returns every profile that failed.
func (p *profiler) err() error {
	if p == nil {
		return nil
	}
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(p.errs...)
}

// fail records a failed profile.
func (p *profiler) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, err)
}

// path returns where a profile goes.
func (p *profiler) path(label, kind string) string {
	return filepath.Join(p.dir, fmt.Sprintf("%s-%s-%s.pprof", p.scenario, label, kind))
}

// save fetches a pprof endpoint of r into path.
func (p *profiler) save(ctx context.Context, r *reroll, endpoint, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.addr+endpoint, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("GET %s: %s: %s", endpoint, resp.Status, body)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
