package main

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// newParser returns Prometheus' PromQL parser with a stock server's
// options: no experimental functions, so that the chart works on any
// Prometheus 3 without feature flags.
func newParser() parser.Parser { return parser.NewParser(parser.Options{}) }

// parseRules parses and validates rule groups as Prometheus loads a rules
// file: unknown fields, bad durations, expressions that do not parse and
// annotation templates that do not parse are all errors.
func parseRules(s source) ([]rulefmt.RuleGroup, []error) {
	groups, errs := rulefmt.Parse(s.content, false, model.LegacyValidation, newParser(), slog.New(slog.DiscardHandler))
	for i, err := range errs {
		errs[i] = fmt.Errorf("%s: %w", s.name, err)
	}
	if groups == nil {
		return nil, errs
	}
	return groups.Groups, errs
}

// ruleExprs returns the expression of every rule in groups.
func ruleExprs(name string, groups []rulefmt.RuleGroup) []expression {
	var out []expression
	for _, g := range groups {
		for _, r := range g.Rules {
			what := r.Alert
			if what == "" {
				what = r.Record
			}
			out = append(out, expression{where: fmt.Sprintf("%s: group %s: %s", name, g.Name, what), text: r.Expr})
		}
	}
	return out
}

// allExprs returns every expression of r's dashboards and rules, and
// every error found on the way.
func allExprs(r rendered) ([]expression, []error) {
	var out []expression
	var errs []error
	for _, d := range r.dashboards {
		exprs, err := dashboardExprs(d.name, d.content)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, exprs...)
	}
	for _, s := range r.rules {
		groups, gerrs := parseRules(s)
		errs = append(errs, gerrs...)
		out = append(out, ruleExprs(s.name, groups)...)
	}
	if len(r.dashboards) == 0 || len(r.rules) == 0 {
		errs = append(errs, fmt.Errorf("rendered %d dashboards and %d PrometheusRules; want at least one of each", len(r.dashboards), len(r.rules)))
	}
	return out, errs
}

// check parses every expression of r and returns the metric names they
// select, sorted and each once, and every error.
func check(r rendered) ([]string, []error) {
	exprs, errs := allExprs(r)
	seen := map[string]bool{}
	p := newParser()
	for _, e := range exprs {
		names, err := exprMetricNames(p, e.text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.where, err))
			continue
		}
		for _, n := range names {
			seen[n] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, errs
}

// exprMetricNames parses expr and returns the metric name of each series
// selector in it. A selector without an exact metric name (only a regular
// expression on __name__, or none) is an error: what it needs from reroll
// cannot be checked.
func exprMetricNames(p parser.Parser, expr string) ([]string, error) {
	e, err := p.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var errs []error
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if vs.Name != "" {
			names = append(names, vs.Name)
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
				names = append(names, m.Value)
				return nil
			}
		}
		errs = append(errs, fmt.Errorf("selector %s has no exact metric name", vs))
		return nil
	})
	return names, errors.Join(errs...)
}
