package plan

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// mustWindows parses a window a table wants.
func mustWindows(t *testing.T, v string) Windows {
	t.Helper()
	ws, err := ParseWindows(v)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func TestParseWindows(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "", want: ""},
		{in: "Mon-Fri 02:00-05:00 Europe/Berlin", want: "Mon,Tue,Wed,Thu,Fri 02:00-05:00 Europe/Berlin"},
		{in: "Sat-Sun 00:00-23:59 UTC; Mon 22:00-02:00 UTC", want: "Sun,Sat 00:00-23:59 UTC;Mon 22:00-02:00 UTC"},
		{in: "Fri-Mon 10:00-11:00 UTC", want: "Sun,Mon,Fri,Sat 10:00-11:00 UTC"},
		{in: "mon,wed 00:00-24:00 UTC", want: "Mon,Wed 00:00-24:00 UTC"},
		{in: "Mon-Fri 02:00-05:00", err: `item 1 "Mon-Fri 02:00-05:00": want DAYS HH:MM-HH:MM ZONE`},
		{in: "Funday 02:00-05:00 UTC", err: `"Funday" is not a day`},
		{in: "Mon 25:00-26:00 UTC", err: `"25:00-26:00" is not a time range`},
		{in: "Mon 02:00-02:00 UTC", err: "of some length"},
		{in: "Mon 2:00-05:0 UTC", err: "is not a time range"},
		{in: "Mon 02:00-05:00 Mars/Olympus", err: `unknown time zone "Mars/Olympus"`},
		{in: "Mon 02:00-05:00 UTC;", err: "item 2"},
	}
	for _, tt := range tests {
		ws, err := ParseWindows(tt.in)
		var got []string
		for _, w := range ws {
			got = append(got, w.String())
		}
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || strings.Join(got, ";") != tt.want {
			t.Errorf("%q: %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestWindowsOpen(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	at := func(s string, loc *time.Location) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	nightly := mustWindows(t, "Mon-Fri 02:00-05:00 Europe/Berlin")
	overnight := mustWindows(t, "Fri 22:00-02:00 UTC")
	tests := []struct {
		name string
		ws   Windows
		t    time.Time
		want bool
	}{
		{"inside, Berlin time", nightly, at("2026-12-01 03:00", berlin), true}, // a Tuesday
		{"the start is inside", nightly, at("2026-12-01 02:00", berlin), true},
		{"the end is outside", nightly, at("2026-12-01 05:00", berlin), false},
		{"the same instant in UTC", nightly, at("2026-12-01 02:00", time.UTC), true}, // 03:00 in Berlin
		{"a Saturday", nightly, at("2026-12-05 03:00", berlin), false},
		{"overnight, before midnight", overnight, at("2026-12-04 23:30", time.UTC), true},
		{"overnight, after midnight on Saturday", overnight, at("2026-12-05 01:30", time.UTC), true},
		{"overnight, after its end", overnight, at("2026-12-05 02:00", time.UTC), false},
		{"overnight, after midnight on Friday", overnight, at("2026-12-04 01:30", time.UTC), false},
		// 2026-03-29 is the spring change in Berlin: 02:00-03:00 does not
		// exist; 03:30 local exists and is inside.
		{"spring change, after the gap", nightly, at("2026-03-30 03:30", berlin), true},
		{"autumn change, the repeated hour", mustWindows(t, "Sun 02:00-03:00 Europe/Berlin"), time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), true},
	}
	for _, tt := range tests {
		if got := tt.ws.Open(tt.t); got != tt.want {
			t.Errorf("%s: open %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestWindowRule(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 30, 0, time.UTC) // a Tuesday
	src := func(what, v string) WindowSource { return WindowSource{What: what, Windows: mustWindows(t, v)} }
	tests := []struct {
		name    string
		windows []WindowSource
		reason  HoldReason
		wait    time.Duration
		message string
	}{
		{name: "no window"},
		{name: "open", windows: []WindowSource{src("the workload", "Tue 11:00-13:00 UTC")}},
		{name: "closed: waits for the opening", windows: []WindowSource{src("ConfigMap/cfg", "Tue 12:05-13:00 UTC")},
			reason: HoldWindow, wait: 4*time.Minute + 30*time.Second, message: "outside the rollout window of ConfigMap/cfg; rolling when it opens, at 2026-12-01T12:05:00Z"},
		{name: "every window must be open", windows: []WindowSource{src("the workload", "Tue-Wed 11:00-13:00 UTC"), src("its namespace", "Wed 12:00-18:00 UTC")},
			reason: HoldWindow, wait: 24*time.Hour - 30*time.Second, message: "the workload and its namespace; rolling when it opens, at 2026-12-02T12:00:00Z"},
		{name: "never open together", windows: []WindowSource{src("a", "Mon 00:00-01:00 UTC"), src("b", "Tue 00:00-01:00 UTC")},
			reason: HoldWindow, wait: PolicyRecheck, message: "never open together"},
		{name: "malformed", windows: []WindowSource{{What: "ConfigMap/cfg", Err: errors.New("bad")}}, reason: HoldInvalid, message: "ConfigMap/cfg has reroll.dev/rollout-window: bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkHold(t, WindowRule(PolicyInput{Now: now, Windows: tt.windows}), tt.reason, tt.wait, tt.message)
		})
	}
}
