package metrics

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	clientmetrics "k8s.io/client-go/tools/metrics"
	"k8s.io/client-go/util/workqueue"
)

// ContentType is the Content-Type of the Prometheus text exposition format,
// version 0.0.4, which Handler serves.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// metricType is the word on a family's "# TYPE" line.
type metricType string

// The metric types this package can expose.
const (
	counterType   metricType = "counter"
	gaugeType     metricType = "gauge"
	histogramType metricType = "histogram"
)

// Registry holds metric families and renders them in the text format. It is
// the only holder of state in this package, so each test or binary can have
// its own. The zero value is an empty registry, like NewRegistry's.
type Registry struct {
	mu sync.Mutex
	// families is kept sorted by name at registration so that every
	// scrape renders them in the same order without sorting.
	families []family
	// taken maps every sample name a family can emit to that family's
	// name. It catches collisions that a check on family names alone would
	// miss, such as a counter "x_count" next to a histogram "x".
	taken map[string]string

	// workqueueOnce makes WorkqueueMetricsProvider idempotent: every queue
	// of a binary shares the same seven families, told apart by label.
	workqueueOnce sync.Once
	workqueue     workqueue.MetricsProvider

	// restClientResults is the request-result adapter
	// RegisterClientGoMetrics handed to client-go, so a test can check
	// whether client-go took it (its registration is first-call-wins for
	// the whole process).
	restClientResults clientmetrics.ResultMetric
}

// NewRegistry returns an empty registry. One per binary is the usual use;
// tests create their own so they share nothing.
func NewRegistry() *Registry {
	return &Registry{taken: map[string]string{}}
}

// desc is what a family declares at registration: its name, HELP text, TYPE
// and label names. It never changes afterwards, so it is read without locks.
type desc struct {
	name       string
	help       string
	typ        metricType
	labelNames []string
}

// family is one metric family as the registry sees it.
type family interface {
	// describe returns the family's immutable declaration.
	describe() *desc
	// write appends the family's sample lines (not its HELP and TYPE
	// lines) to b, series sorted by label values. An error means the
	// family could not produce a valid exposition, e.g. a scrape-time
	// callback emitted the wrong number of label values.
	write(b []byte) ([]byte, error)
}

// checkLabelValues returns an error unless values has one entry per label
// name; the message lists both so the mismatch is obvious at a glance.
func checkLabelValues(d *desc, values []string) error {
	if len(values) == len(d.labelNames) {
		return nil
	}
	return fmt.Errorf("metric %q has %d label names %q but got %d label values %q",
		d.name, len(d.labelNames), d.labelNames, len(values), values)
}

// newDesc validates a family's declaration and panics on a programming
// error, so that an invalid exposition can never be produced later.
func newDesc(name, help string, typ metricType, labelNames []string) *desc {
	if !validMetricName(name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q: must match [a-zA-Z_:][a-zA-Z0-9_:]*", name))
	}
	if help == "" {
		panic(fmt.Sprintf("metrics: metric %q has no help text", name))
	}
	seen := make(map[string]bool, len(labelNames))
	for _, l := range labelNames {
		switch {
		case !validLabelName(l):
			panic(fmt.Sprintf("metrics: metric %q: invalid label name %q: must match [a-zA-Z_][a-zA-Z0-9_]*", name, l))
		case strings.HasPrefix(l, "__"):
			panic(fmt.Sprintf("metrics: metric %q: label name %q is reserved: names starting with __ are for Prometheus' internal use", name, l))
		case typ == histogramType && l == "le":
			panic(fmt.Sprintf("metrics: histogram %q: label name \"le\" is reserved for bucket bounds", name))
		case seen[l]:
			panic(fmt.Sprintf("metrics: metric %q: duplicate label name %q", name, l))
		}
		seen[l] = true
	}
	return &desc{name: name, help: help, typ: typ, labelNames: slices.Clone(labelNames)}
}

// sampleNames returns every name a family's sample lines can carry, which
// for a histogram includes the _bucket, _sum and _count suffixes.
func (d *desc) sampleNames() []string {
	if d.typ == histogramType {
		return []string{d.name, d.name + "_bucket", d.name + "_sum", d.name + "_count"}
	}
	return []string{d.name}
}

// register adds f to the registry. A name already used by another family,
// including through a histogram suffix, panics: two families with one name
// would make every scrape invalid.
func (r *Registry) register(f family) {
	d := f.describe()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.taken == nil {
		r.taken = map[string]string{}
	}
	names := d.sampleNames()
	for _, n := range names {
		if owner, ok := r.taken[n]; ok {
			if owner == d.name {
				panic(fmt.Sprintf("metrics: metric %q is already registered", d.name))
			}
			panic(fmt.Sprintf("metrics: cannot register %q: its sample name %q collides with metric %q", d.name, n, owner))
		}
	}
	for _, n := range names {
		r.taken[n] = d.name
	}
	i, _ := slices.BinarySearchFunc(r.families, d.name, func(f family, name string) int {
		return strings.Compare(f.describe().name, name)
	})
	r.families = slices.Insert(r.families, i, f)
}

// render produces the whole exposition in memory. Rendering before writing
// means a failing family yields an error instead of a truncated scrape that
// Prometheus would half-ingest.
func (r *Registry) render() ([]byte, error) {
	r.mu.Lock()
	// Scrape-time callbacks run without the lock, so one that is slow or
	// that registers a metric cannot block or deadlock registration.
	families := slices.Clone(r.families)
	r.mu.Unlock()

	var b []byte
	for _, f := range families {
		d := f.describe()
		b = append(b, "# HELP "...)
		b = append(b, d.name...)
		b = append(b, ' ')
		b = appendEscapedHelp(b, d.help)
		b = append(b, "\n# TYPE "...)
		b = append(b, d.name...)
		b = append(b, ' ')
		b = append(b, d.typ...)
		b = append(b, '\n')
		var err error
		if b, err = f.write(b); err != nil {
			return nil, fmt.Errorf("metrics: collecting %s: %w", d.name, err)
		}
	}
	return b, nil
}

// WriteText writes every family in the text format, version 0.0.4: families
// sorted by name, each with its HELP and TYPE lines even before it has any
// series, and series sorted by label values, so that two scrapes of the
// same state are byte-identical. Nothing is written when a scrape-time
// callback misbehaves; the error says which family.
func (r *Registry) WriteText(w io.Writer) error {
	b, err := r.render()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Handler returns an http.Handler that serves WriteText to GET and HEAD
// requests with Content-Type ContentType. A failing scrape is answered with
// 500, so Prometheus marks the target down rather than ingesting half of it.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		b, err := r.render()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		if req.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(b) // the scraper went away; nothing useful to do
	})
}

// validMetricName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ':' || c == '_' || isASCIILetter(c) || (i > 0 && isASCIIDigit(c)) {
			continue
		}
		return false
	}
	return true
}

// validLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]*.
func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || isASCIILetter(c) || (i > 0 && isASCIIDigit(c)) {
			continue
		}
		return false
	}
	return true
}

// isASCIILetter reports whether c is in [a-zA-Z].
func isASCIILetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// isASCIIDigit reports whether c is in [0-9].
func isASCIIDigit(c byte) bool { return '0' <= c && c <= '9' }
