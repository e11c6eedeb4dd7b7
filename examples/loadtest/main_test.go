package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestMain lets the test binary serve as the idle scenario's child
// process, as the command does.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := runIdleChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunAllScenarios runs every scenario at a small size and checks
// that each prints its line with positive figures.
func TestRunAllScenarios(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{
		"-watchers", "1,3", "-duration", "300ms",
		"-latency-watchers", "3", "-latency-duration", "300ms", "-rate", "50",
		"-conns", "2", "-idle", "200",
	}, &out)
	if err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}

	// The heap and stack split of a few hundred connections can come out
	// negative: stacks are allocated in spans that many goroutines share.
	positive := map[string]bool{
		"frames/s": true, "lines/s": true, "deliveries/s": true, "acks/s": true,
		"heap+stack/conn": true, "goroutines/conn": true,
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		"fanout watchers=1", "fanout-base watchers=1", "fanout watchers=3", "fanout-base watchers=3",
		"latency watchers=3", "latency-base watchers=3", "submit conns=2",
		"idle conns=200", "idle-base conns=200",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, line := range lines {
		fields := strings.Fields(line)
		if got := fields[0] + " " + fields[1]; got != want[i] {
			t.Errorf("line %d starts %q; want %q", i, got, want[i])
		}
		for _, f := range fields[2:] {
			name, value, _ := strings.Cut(f, "=")
			v, err := strconv.ParseFloat(strings.TrimRight(value, "msKiB/"), 64)
			if err != nil {
				t.Errorf("line %q: %s=%q is not a figure", line, name, value)
			}
			if positive[name] && v <= 0 {
				t.Errorf("line %q: %s=%q; want more than 0", line, name, value)
			}
		}
	}
}

func TestParseFlagsRejects(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown scenario", []string{"-scenarios", "fanout,soak"}, `unknown scenario "soak"`},
		{"zero watchers", []string{"-watchers", "1,0"}, "invalid -watchers"},
		{"text count", []string{"-conns", "ten"}, "invalid -conns"},
		{"zero runs", []string{"-runs", "0"}, "must be at least 1"},
		{"argument", []string{"fanout"}, "unexpected argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseFlags(%q) = %v; want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestFromLine(t *testing.T) {
	cases := []struct {
		name  string
		frame string
		want  int64
	}{
		{"log push", `{"data":{"log":["","","a","a"],"fromLine":42}}`, 42},
		{"tag after fromLine", `{"data":{"fromLine":7,"websocketTag":"x"}}`, 7},
		{"no fromLine", `{"data":{"status":"Running"}}`, -1},
		{"not a number", `{"data":{"fromLine":"x"}}`, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := fromLine([]byte(tc.frame)); got != tc.want {
				t.Errorf("fromLine = %d; want %d", got, tc.want)
			}
		})
	}
}

func TestAllLines(t *testing.T) {
	cases := []struct {
		name  string
		frame string
		want  string
	}{
		{"two lines", `{"log":["e","","i1\ni2","e\ni1\ni2"],"fromLine":4}`, `e\ni1\ni2`},
		{"escaped quote", `{"log":["a \"b\"","","","a \"b\""]}`, `a \"b\"`},
		{"no log", `{"status":"Running"}`, ""},
		{"cut short", `{"log":["a","b"`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(allLines([]byte(tc.frame))); got != tc.want {
				t.Errorf("allLines = %q; want %q", got, tc.want)
			}
		})
	}
}

func TestPercentileAndMedian(t *testing.T) {
	sorted := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	cases := []struct {
		p    float64
		want float64
	}{{50, 5}, {99, 10}, {100, 10}, {1, 1}}
	for _, tc := range cases {
		if got := percentile(sorted, tc.p); got != tc.want {
			t.Errorf("percentile(%v) = %v; want %v", tc.p, got, tc.want)
		}
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3 values = %v; want 2", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of 4 values = %v; want 2.5", got)
	}
}
