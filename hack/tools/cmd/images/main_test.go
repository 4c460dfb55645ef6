package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParseOptions covers the required flags, the version's check as a
// tag, and SOURCE_DATE_EPOCH.
func TestParseOptions(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		epoch       string
		wantErr     string
		wantCreated time.Time
	}{
		{name: "test images only", args: []string{"--out", "o"}, wantCreated: time.Unix(0, 0)},
		{name: "SOURCE_DATE_EPOCH", args: []string{"--out", "o"}, epoch: "1700000000", wantCreated: time.Unix(1700000000, 0)},
		{name: "reroll", args: []string{"--out", "o", "--reroll-bin", "r", "--version", "v1.2.3-4-gabcdef0-dirty"}, wantCreated: time.Unix(0, 0)},
		{name: "no out", args: []string{"--reroll-bin", "r", "--version", "v1"}, wantErr: "--out is required"},
		{name: "no version", args: []string{"--out", "o", "--reroll-bin", "r"}, wantErr: "--version is required"},
		{name: "version no tag", args: []string{"--out", "o", "--reroll-bin", "r", "--version", "v1+build"}, wantErr: "not an image tag"},
		{name: "bad epoch", args: []string{"--out", "o"}, epoch: "yesterday", wantErr: "SOURCE_DATE_EPOCH"},
		{name: "extra argument", args: []string{"--out", "o", "x"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(tt.args, tt.epoch)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !o.created.Equal(tt.wantCreated) || o.created.Location() != time.UTC {
				t.Errorf("created = %v, want %v in UTC", o.created, tt.wantCreated)
			}
		})
	}
}

// TestWithParents checks that every parent directory comes before what it
// holds, once, whatever order the files were given in.
func TestWithParents(t *testing.T) {
	got := withParents([]file{
		{name: "reroll", mode: 0o755},
		{name: "etc/ssl/certs/ca.crt", mode: 0o644},
		{name: "tmp", mode: 0o1777, dir: true},
		{name: "etc/passwd", mode: 0o644},
		{name: "etc/ssl", mode: 0o700, dir: true},
	})
	var names []string
	for _, f := range got {
		names = append(names, f.name)
		if f.name == "etc/ssl" && f.mode != 0o700 {
			t.Errorf("a listed directory kept mode %o, want its own 0700", f.mode)
		}
	}
	want := []string{"etc", "etc/passwd", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca.crt", "reroll", "tmp"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("got %q, want %q", names, want)
	}
}
