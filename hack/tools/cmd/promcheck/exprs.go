package main

import (
	"encoding/json"
	"fmt"
	"strings"
)

// expression is one PromQL expression of the dashboard or the rules, with
// where it is, for error messages.
type expression struct {
	where, text string
}

// dashboard is what promcheck reads of a Grafana dashboard.
type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

// panel is a dashboard panel; a row holds its collapsed panels in Panels.
type panel struct {
	Title   string   `json:"title"`
	Type    string   `json:"type"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"`
}

// target is one query of a panel.
type target struct {
	RefID string `json:"refId"`
	Expr  string `json:"expr"`
}

// variable is a dashboard template variable. Query is a string, or an
// object with the string in its query field.
type variable struct {
	Name  string          `json:"name"`
	Type  string          `json:"type"`
	Query json.RawMessage `json:"query"`
}

// dashboardExprs returns every PromQL expression of a dashboard: each
// target of each panel, and each query variable's series selector. A panel
// without queries, or a target without an expression, is an error: the
// panel would be empty.
func dashboardExprs(name string, b []byte) ([]expression, error) {
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var out []expression
	var walk func(ps []panel) error
	walk = func(ps []panel) error {
		for _, p := range ps {
			if p.Type == "row" {
				if err := walk(p.Panels); err != nil {
					return err
				}
				continue
			}
			if len(p.Targets) == 0 {
				return fmt.Errorf("%s: panel %q has no queries", name, p.Title)
			}
			for _, t := range p.Targets {
				if t.Expr == "" {
					return fmt.Errorf("%s: panel %q query %s has no expr", name, p.Title, t.RefID)
				}
				out = append(out, expression{where: fmt.Sprintf("%s: panel %q query %s", name, p.Title, t.RefID), text: grafanaToPromQL(t.Expr)})
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	for _, v := range d.Templating.List {
		e, err := variableExpr(v)
		if err != nil {
			return nil, fmt.Errorf("%s: variable %s: %w", name, v.Name, err)
		}
		if e != "" {
			out = append(out, expression{where: fmt.Sprintf("%s: variable %s", name, v.Name), text: e})
		}
	}
	return out, nil
}

// variableExpr returns the PromQL in a query variable (Grafana's
// label_values(selector, label) or query_result(expr)), "" for a variable
// that queries no series, and an error for a query form it does not know,
// so that a new form is not silently left unchecked.
func variableExpr(v variable) (string, error) {
	if v.Type != "query" {
		return "", nil
	}
	var q string
	if err := json.Unmarshal(v.Query, &q); err != nil {
		var obj struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &obj); err != nil {
			return "", err
		}
		q = obj.Query
	}
	q = strings.TrimSpace(q)
	if inner, ok := call(q, "label_values"); ok {
		selector, _, found := cutLast(inner, ",")
		if !found { // label_values(label): every series, no metric
			return "", nil
		}
		return grafanaToPromQL(strings.TrimSpace(selector)), nil
	}
	if inner, ok := call(q, "query_result"); ok {
		return grafanaToPromQL(inner), nil
	}
	return "", fmt.Errorf("query %q: only label_values(...) and query_result(...) are checked", q)
}

// call returns the argument text of s when s is name(...).
func call(s, name string) (string, bool) {
	rest, ok := strings.CutPrefix(s, name+"(")
	if !ok || !strings.HasSuffix(rest, ")") {
		return "", false
	}
	return strings.TrimSuffix(rest, ")"), true
}

// cutLast is strings.Cut at the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// grafanaToPromQL replaces the range variables Grafana fills in before it
// sends a query with a duration, so that Prometheus' parser reads what
// Prometheus will get. Variables inside label values ("$namespace") are
// strings to the parser and stay; any other $__ variable stays too, and
// fails to parse, so that it is noticed.
func grafanaToPromQL(expr string) string {
	return strings.NewReplacer(
		"${__rate_interval}", "1m", "$__rate_interval", "1m",
		"${__interval}", "1m", "$__interval", "1m",
		"${__range}", "1h", "$__range", "1h",
	).Replace(expr)
}
