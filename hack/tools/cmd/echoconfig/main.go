// Command echoconfig is the test app of reroll's end-to-end tests
// (reroll.local/echoconfig:1, built by hack/tools/cmd/images). It prints the
// configuration it was started with, so `kubectl logs` tells which content a
// pod got, and it turns that configuration into behaviour the tests can see:
//
//   - APP_VALUE: a value from the environment (env from a ConfigMap key).
//   - APP_FILE: a file whose content is a value (default /config/value, a
//     ConfigMap volume); it may be absent, printed as "-".
//   - APP_PRINT_EVERY: how often the line is printed again (default 5s).
//   - APP_CRASH_AFTER: with a value of "crash", how long after start it
//     exits 1 (default 2s): a config edit that crashes the pods.
//
// A value of "unready" makes /ready answer 503 (/healthz is always 200). It
// serves HTTP on :8080 and exits 0 on SIGINT or SIGTERM.
//
// The configuration is read once, at start, like most programs read theirs:
// a ConfigMap volume the kubelet updates later does not change what is
// printed, which is why a workload has to roll to pick up new content.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

const (
	// listenAddr is where the probes and tests reach the app.
	listenAddr = ":8080"
	// defaultFile is where the e2e tests mount a ConfigMap key.
	defaultFile = "/config/value"
	// absent is printed for a file that does not exist.
	absent = "-"
	// valueCrash, as a value, makes the app exit 1 after APP_CRASH_AFTER.
	valueCrash = "crash"
	// valueUnready, as a value, makes /ready answer 503.
	valueUnready = "unready"
)

// config is the configuration echoconfig was started with.
type config struct {
	// env is APP_VALUE.
	env string
	// file is the content of APP_FILE with surrounding white space trimmed,
	// or absent.
	file string
	// printEvery is how often the configuration is printed again.
	printEvery time.Duration
	// crashAfter is how long after start a "crash" value exits 1.
	crashAfter time.Duration
}

// main runs the app until SIGINT or SIGTERM and exits with run's status.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Stdout, os.Getenv, os.ReadFile, listenAddr)
	stop()
	os.Exit(code)
}

// run loads the configuration, prints it, serves the probes on addr and
// prints the configuration every printEvery until ctx ends (status 0) or a
// "crash" value's time is up (status 1). A bad configuration is status 2.
// getenv and readFile are os.Getenv and os.ReadFile but for tests.
func run(ctx context.Context, out io.Writer, getenv func(string) string, readFile func(string) ([]byte, error), addr string) int {
	cfg, err := loadConfig(getenv, readFile)
	if err != nil {
		fmt.Fprintf(out, "echoconfig: %v\n", err)
		return 2
	}
	fmt.Fprintf(out, "echoconfig: started %s\n", cfg.line())

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(out, "echoconfig: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: cfg.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()

	tick := time.NewTicker(cfg.printEvery)
	defer tick.Stop()
	// A nil channel never fires: without a "crash" value there is no crash.
	var crash <-chan time.Time
	if cfg.crash() {
		crash = time.After(cfg.crashAfter)
	}
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "echoconfig: stopping")
			return 0
		case <-tick.C:
			fmt.Fprintf(out, "echoconfig: %s\n", cfg.line())
		case <-crash:
			fmt.Fprintf(out, "echoconfig: value is %q, exiting 1\n", valueCrash)
			return 1
		}
	}
}

// loadConfig reads the configuration from the environment and the file it
// names. A missing file is not an error (the ConfigMap may be optional); a
// file that cannot be read otherwise, or a bad duration, is.
func loadConfig(getenv func(string) string, readFile func(string) ([]byte, error)) (config, error) {
	cfg := config{env: getenv("APP_VALUE"), file: absent}
	var err error
	if cfg.printEvery, err = durationEnv(getenv, "APP_PRINT_EVERY", 5*time.Second); err != nil {
		return config{}, err
	}
	if cfg.crashAfter, err = durationEnv(getenv, "APP_CRASH_AFTER", 2*time.Second); err != nil {
		return config{}, err
	}
	if cfg.printEvery <= 0 {
		return config{}, fmt.Errorf("APP_PRINT_EVERY must be positive, not %v", cfg.printEvery)
	}

	name := getenv("APP_FILE")
	if name == "" {
		name = defaultFile
	}
	data, err := readFile(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return config{}, fmt.Errorf("APP_FILE: %w", err)
	default:
		cfg.file = strings.TrimSpace(string(data))
	}
	return cfg, nil
}

// durationEnv parses the duration in the environment variable key, or
// returns def when it is unset.
func durationEnv(getenv func(string) string, key string, def time.Duration) (time.Duration, error) {
	s := getenv(key)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return d, nil
}

// line is the configuration as printed, after "echoconfig: ". Newlines in
// the file are escaped so that one print is one log line.
func (c config) line() string {
	file := strings.ReplaceAll(c.file, "\n", `\n`)
	return fmt.Sprintf("env=%s file=%s", c.env, file)
}

// has reports whether the env value or the file holds value.
func (c config) has(value string) bool {
	return c.env == value || c.file == value
}

// ready reports whether /ready answers 200.
func (c config) ready() bool { return !c.has(valueUnready) }

// crash reports whether the app exits 1 after crashAfter.
func (c config) crash() bool { return c.has(valueCrash) }

// handler serves /healthz (always 200) and /ready (200, or 503 for an
// "unready" value); the body is the configuration line.
func (c config) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !c.ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, c.line())
	})
	return mux
}
