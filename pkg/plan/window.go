package plan

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rollout windows (reroll.dev/rollout-window, --rollout-window): when rolls
// may start. A roll outside a window is held, like any other hold, and
// rolls once, to the content current then, when the window opens.

// AnnotationRolloutWindow on a workload, a ConfigMap or Secret, or a
// Namespace says when the rolls it is part of may start, such as
// "Mon-Fri 02:00-05:00 Europe/Berlin; Sat-Sun 00:00-23:59 UTC".
const AnnotationRolloutWindow = "reroll.dev/rollout-window"

// Window is one item of a rollout window: days of the week, a time of day
// range in a zone. A range whose end is before its start runs overnight,
// from its start on a listed day into the next day.
type Window struct {
	days       [7]bool // by time.Weekday
	start, end int     // minutes since midnight; end is exclusive
	loc        *time.Location
}

// Windows is a rollout window: the union of its items.
type Windows []Window

// dayNames are the day names a window accepts, by time.Weekday.
func dayNames() []string { return []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"} }

// ParseWindows parses a rollout window: items separated by ";", each
// "DAYS HH:MM-HH:MM ZONE", where DAYS is a day ("Mon"), a range ("Mon-Fri",
// wrapping over the week end as "Sat-Sun" or "Fri-Mon" do) or a
// comma-separated list of either, and ZONE an IANA zone ("UTC",
// "Europe/Berlin"). Empty means no window: rolls may start any time.
func ParseWindows(v string) (Windows, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var ws Windows
	for i, item := range strings.Split(v, ";") {
		w, err := parseWindow(strings.Fields(item))
		if err != nil {
			return nil, fmt.Errorf("item %d %q: %v", i+1, strings.TrimSpace(item), err)
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// parseWindow parses the fields of one window item.
func parseWindow(fields []string) (Window, error) {
	var w Window
	if len(fields) != 3 {
		return w, fmt.Errorf("want DAYS HH:MM-HH:MM ZONE, such as Mon-Fri 02:00-05:00 UTC")
	}
	for _, part := range strings.Split(fields[0], ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, b := dayIndex(from), dayIndex(to)
		if !isRange {
			b = a
		}
		if a < 0 || b < 0 {
			return w, fmt.Errorf("%q is not a day or a range of days (Mon, Mon-Fri)", part)
		}
		for d := a; ; d = (d + 1) % 7 {
			w.days[d] = true
			if d == b {
				break
			}
		}
	}
	from, to, ok := strings.Cut(fields[1], "-")
	var err1, err2 error
	w.start, err1 = parseClock(from)
	w.end, err2 = parseClock(to)
	if !ok || err1 != nil || err2 != nil || w.start == w.end {
		return w, fmt.Errorf("%q is not a time range HH:MM-HH:MM of some length", fields[1])
	}
	loc, err := time.LoadLocation(fields[2])
	if err != nil {
		return w, fmt.Errorf("unknown time zone %q", fields[2])
	}
	w.loc = loc
	return w, nil
}

// dayIndex returns the time.Weekday of a day name, or -1.
func dayIndex(name string) int {
	for i, n := range dayNames() {
		if strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

// parseClock parses "HH:MM" (00:00 to 24:00) into minutes since midnight.
func parseClock(v string) (int, error) {
	h, m, ok := strings.Cut(v, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || len(m) != 2 || err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh*60+mm > 24*60 {
		return 0, fmt.Errorf("bad time %q", v)
	}
	return hh*60 + mm, nil
}

// Open reports whether t falls in one of the windows.
func (ws Windows) Open(t time.Time) bool {
	for _, w := range ws {
		if w.open(t) {
			return true
		}
	}
	return false
}

// open reports whether t falls in w: on a listed day between start and end
// (in w's zone, as the wall clock reads then, daylight saving included), or,
// for an overnight range, after midnight following a listed day.
func (w Window) open(t time.Time) bool {
	local := t.In(w.loc)
	minute := local.Hour()*60 + local.Minute()
	day := int(local.Weekday())
	if w.start < w.end {
		return w.days[day] && minute >= w.start && minute < w.end
	}
	return (w.days[day] && minute >= w.start) || (w.days[(day+6)%7] && minute < w.end)
}

// String formats a window item as it is written.
func (w Window) String() string {
	var days []string
	for d, on := range w.days {
		if on {
			days = append(days, dayNames()[d])
		}
	}
	return fmt.Sprintf("%s %02d:%02d-%02d:%02d %s", strings.Join(days, ","), w.start/60, w.start%60, w.end/60, w.end%60, w.loc)
}

// AllOpen reports whether every one of sets is open at t.
func AllOpen(sets []Windows, t time.Time) bool {
	for _, ws := range sets {
		if ws != nil && !ws.Open(t) {
			return false
		}
	}
	return true
}

// NextOpening returns the first minute from t on at which every one of sets
// is open, or false when there is none within eight days (the windows never
// overlap). It steps minute by minute: windows are minute-grained, and it
// runs only for a held roll.
func NextOpening(sets []Windows, t time.Time) (time.Time, bool) {
	m := t.Truncate(time.Minute)
	if m.Before(t) {
		m = m.Add(time.Minute)
	}
	for end := t.Add(8 * 24 * time.Hour); m.Before(end); m = m.Add(time.Minute) {
		if AllOpen(sets, m) {
			return m, true
		}
	}
	return time.Time{}, false
}
