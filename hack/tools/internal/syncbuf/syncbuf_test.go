package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// TestBufferConcurrentWrites checks that writes from many goroutines all
// land, whole, while String is read (run with -race to see a data race).
func TestBufferConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("ab\n"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for i, l := range lines {
		if l != "ab" {
			t.Fatalf("line %d is %q, want \"ab\"", i, l)
		}
	}
}
