package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeEnv returns a getenv over env.
func fakeEnv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// fakeFiles returns a readFile over files; any other name does not exist,
// and the name "/denied" fails with a permission error.
func fakeFiles(files map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if name == "/denied" {
			return nil, fs.ErrPermission
		}
		data, ok := files[name]
		if !ok {
			return nil, fs.ErrNotExist
		}
		return []byte(data), nil
	}
}

// TestLoadConfig covers the defaults, the file's trimming and absence, and
// the errors.
func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		files   map[string]string
		want    config
		wantErr string
	}{{
		name: "defaults, no file",
		want: config{file: "-", printEvery: 5 * time.Second, crashAfter: 2 * time.Second},
	}, {
		name:  "default file, trimmed",
		env:   map[string]string{"APP_VALUE": "a"},
		files: map[string]string{"/config/value": "b\n"},
		want:  config{env: "a", file: "b", printEvery: 5 * time.Second, crashAfter: 2 * time.Second},
	}, {
		name:  "APP_FILE and durations",
		env:   map[string]string{"APP_FILE": "/etc/x", "APP_PRINT_EVERY": "1s", "APP_CRASH_AFTER": "300ms"},
		files: map[string]string{"/etc/x": "crash", "/config/value": "ignored"},
		want:  config{file: "crash", printEvery: time.Second, crashAfter: 300 * time.Millisecond},
	}, {
		name:  "empty file is not absent",
		files: map[string]string{"/config/value": ""},
		want:  config{file: "", printEvery: 5 * time.Second, crashAfter: 2 * time.Second},
	}, {
		name:    "unreadable file",
		env:     map[string]string{"APP_FILE": "/denied"},
		wantErr: "APP_FILE: permission denied",
	}, {
		name:    "bad duration",
		env:     map[string]string{"APP_PRINT_EVERY": "soon"},
		wantErr: "APP_PRINT_EVERY",
	}, {
		name:    "zero print interval",
		env:     map[string]string{"APP_PRINT_EVERY": "0s"},
		wantErr: "must be positive",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadConfig(fakeEnv(tt.env), fakeFiles(tt.files))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestConfigBehaviour covers the printed line and what "crash" and
// "unready" do, whether they come from the environment or the file.
func TestConfigBehaviour(t *testing.T) {
	tests := []struct {
		cfg       config
		line      string
		ready     bool
		crash     bool
		readyCode int
	}{
		{config{env: "v1", file: "-"}, "env=v1 file=-", true, false, 200},
		{config{env: "", file: "a\nb"}, `env= file=a\nb`, true, false, 200},
		{config{env: "unready", file: "-"}, "env=unready file=-", false, false, 503},
		{config{env: "x", file: "unready"}, "env=x file=unready", false, false, 503},
		{config{env: "crash", file: "-"}, "env=crash file=-", true, true, 200},
		{config{env: "x", file: "crash"}, "env=x file=crash", true, true, 200},
		{config{env: "crashed", file: "not unready"}, "env=crashed file=not unready", true, false, 200},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			if got := tt.cfg.line(); got != tt.line {
				t.Errorf("line() = %q, want %q", got, tt.line)
			}
			if got := tt.cfg.ready(); got != tt.ready {
				t.Errorf("ready() = %v, want %v", got, tt.ready)
			}
			if got := tt.cfg.crash(); got != tt.crash {
				t.Errorf("crash() = %v, want %v", got, tt.crash)
			}
			h := tt.cfg.handler()
			for path, want := range map[string]int{"/healthz": 200, "/ready": tt.readyCode} {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != want {
					t.Errorf("GET %s = %d, want %d", path, rec.Code, want)
				}
			}
		})
	}
}

// TestRunCrashes checks that a "crash" value prints the start line and
// then exits 1 after APP_CRASH_AFTER, printing the line again meanwhile.
func TestRunCrashes(t *testing.T) {
	var out bytes.Buffer
	env := fakeEnv(map[string]string{"APP_VALUE": "crash", "APP_PRINT_EVERY": "20ms", "APP_CRASH_AFTER": "150ms"})
	start := time.Now()
	code := run(context.Background(), &out, env, fakeFiles(nil), "127.0.0.1:0")
	if code != 1 {
		t.Fatalf("run = %d, want 1; output:\n%s", code, out.String())
	}
	if elapsed := time.Since(start); elapsed < 150*time.Millisecond {
		t.Errorf("exited after %v, before APP_CRASH_AFTER", elapsed)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[0] != "echoconfig: started env=crash file=-" {
		t.Errorf("first line %q", lines[0])
	}
	if len(lines) < 3 || lines[1] != "echoconfig: env=crash file=-" {
		t.Errorf("want the line repeated before the crash, got:\n%s", out.String())
	}
}

// TestRunStops checks that the end of ctx (SIGTERM in main) is status 0,
// and a bad configuration status 2.
func TestRunStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	if code := run(ctx, &out, fakeEnv(map[string]string{"APP_VALUE": "v"}), fakeFiles(nil), "127.0.0.1:0"); code != 0 {
		t.Errorf("run = %d, want 0; output:\n%s", code, out.String())
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("run returned before ctx ended")
	}
	out.Reset()
	if code := run(context.Background(), &out, fakeEnv(map[string]string{"APP_CRASH_AFTER": "x"}), fakeFiles(nil), "127.0.0.1:0"); code != 2 {
		t.Errorf("bad config: run = %d, want 2; output:\n%s", code, out.String())
	}
}
