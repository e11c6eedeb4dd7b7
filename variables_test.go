package entrance_test

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goentrance/entrance"
)

// testNow is the submission time of every test: run_date defaults to the
// day before, 20261203.
var testNow = time.Date(2026, time.December, 4, 10, 0, 0, 0, time.FixedZone("UTC+8", 8*3600))

// substitute runs SubstituteVariables at testNow and fails the test on an
// error.
func substitute(t *testing.T, code, runType string, vars map[string]string) *entrance.Substitution {
	t.Helper()
	sub, err := entrance.SubstituteVariables(code, runType, vars, testNow)
	if err != nil {
		t.Fatalf("SubstituteVariables(%q) error: %v", code, err)
	}
	return sub
}

// withRunDate returns a params.variable map that sets run_date.
func withRunDate(runDate string) map[string]string {
	return map[string]string{"run_date": runDate}
}

type substituteCase struct {
	name string
	code string
	vars map[string]string
	want string
}

func runSubstituteCases(t *testing.T, runType string, cases []substituteCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := substitute(t, tc.code, runType, tc.vars)
			if sub.Code != tc.want {
				t.Errorf("code %q: got %q; want %q", tc.code, sub.Code, tc.want)
			}
		})
	}
}

func TestSubstituteVariablesBuiltins(t *testing.T) {
	want := map[string]string{
		"run_date":            "20261203",
		"run_date_std":        "2026-12-03",
		"run_today":           "20261204",
		"run_today_std":       "2026-12-04",
		"run_month_begin":     "20261201",
		"run_month_begin_std": "2026-12-01",
		"run_month_end":       "20261231",
		"run_month_end_std":   "2026-12-31",
		"run_year_begin":      "20260101",
		"run_year_begin_std":  "2026-01-01",
		"run_year_end":        "20261231",
		"run_year_end_std":    "2026-12-31",
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		t.Run(name, func(t *testing.T) {
			sub := substitute(t, "x=${"+name+"};", "sql", nil)
			if got := sub.Code; got != "x="+want[name]+";" {
				t.Errorf("code: got %q; want %q", got, "x="+want[name]+";")
			}
			if got := sub.Variables[name]; got != want[name] {
				t.Errorf("Variables[%q]: got %q; want %q", name, got, want[name])
			}
		})
	}
}

func TestSubstituteVariablesRunDateDefault(t *testing.T) {
	cases := []struct {
		name string
		now  time.Time
		want string
	}{
		{"mid month", testNow, "20261203"},
		{"first of month", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), "20260228"},
		{"first of leap march", time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC), "20240229"},
		{"new year", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "20261231"},
		{"now's zone ahead of utc", time.Date(2026, 12, 4, 1, 0, 0, 0, testNow.Location()), "20261203"},
		{"same instant in utc", time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC), "20261202"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub, err := entrance.SubstituteVariables("${run_date}", "sql", nil, tc.now)
			if err != nil {
				t.Fatalf("SubstituteVariables error: %v", err)
			}
			if sub.Code != tc.want {
				t.Errorf("run_date at %v: got %q; want %q", tc.now, sub.Code, tc.want)
			}
		})
	}
}

func TestSubstituteVariablesDayArithmetic(t *testing.T) {
	runSubstituteCases(t, "sql", []substituteCase{
		{"minus seven", "${run_date - 7}", nil, "20261126"},
		{"no spaces", "${run_date-7}", nil, "20261126"},
		{"spaces and tabs", "${ run_date\t+\t1 }", nil, "20261204"},
		{"plus zero", "${run_date + 0}", nil, "20261203"},
		{"std keeps format", "${run_date_std + 1}", nil, "2026-12-04"},
		{"today minus one", "${run_today - 1}", nil, "20261203"},
		{"today std", "${run_today_std + 30}", nil, "2027-01-03"},
		{"across month", "${run_date - 3}", withRunDate("20260302"), "20260227"},
		{"across year", "${run_date + 1}", withRunDate("20261231"), "20270101"},
		{"back across year", "${run_date_std - 1}", withRunDate("20270101"), "2026-12-31"},
		{"into leap day", "${run_date - 1}", withRunDate("20240301"), "20240229"},
		{"no leap day", "${run_date - 1}", withRunDate("20250301"), "20250228"},
		{"leap day plus year", "${run_date + 365}", withRunDate("20240229"), "20250228"},
		{"century not leap", "${run_date + 1}", withRunDate("21000228"), "21000301"},
		{"four centuries leap", "${run_date + 1}", withRunDate("20000228"), "20000229"},
		{"year zero", "${run_date_std}", withRunDate("00000101"), "0000-01-01"},
		{"today past year 9999", "${run_today_std}", withRunDate("99991231"), "10000-01-01"},
		{"large operand", "${run_date + 3650}", withRunDate("20260101"), "20351230"},
	})
}

func TestSubstituteVariablesMonthArithmetic(t *testing.T) {
	runSubstituteCases(t, "sql", []substituteCase{
		{"begin previous month", "${run_month_begin - 1}", nil, "20261101"},
		{"begin next month", "${run_month_begin + 1}", nil, "20270101"},
		{"begin std", "${run_month_begin_std - 12}", nil, "2025-12-01"},
		{"begin back across year", "${run_month_begin-1}", withRunDate("20260115"), "20251201"},
		{"end previous month", "${run_month_end - 1}", nil, "20261130"},
		{"end next month", "${run_month_end + 1}", nil, "20270131"},
		{"end of february", "${run_month_end - 1}", withRunDate("20260331"), "20260228"},
		{"end of leap february", "${run_month_end - 1}", withRunDate("20240331"), "20240229"},
		{"end from january 31", "${run_month_end + 1}", withRunDate("20230131"), "20230228"},
		{"end std across year", "${run_month_end_std - 1}", withRunDate("20260110"), "2025-12-31"},
		{"end thirty months", "${run_month_end + 30}", withRunDate("20260815"), "20290228"},
	})
}

func TestSubstituteVariablesYearArithmetic(t *testing.T) {
	runSubstituteCases(t, "sql", []substituteCase{
		{"begin previous year", "${run_year_begin - 1}", nil, "20250101"},
		{"begin std next year", "${run_year_begin_std + 1}", nil, "2027-01-01"},
		{"end previous year", "${run_year_end - 1}", nil, "20251231"},
		{"end std two years", "${run_year_end_std + 2}", nil, "2028-12-31"},
		{"from leap day", "${run_year_end - 4}", withRunDate("20240229"), "20201231"},
	})
}

func TestSubstituteVariablesRunDateSource(t *testing.T) {
	cases := []struct {
		name    string
		code    string
		runType string
		vars    map[string]string
		want    string
	}{
		{"params", "${run_date}|${run_today_std}", "sql", withRunDate("20240228"), "20240228|2024-02-29"},
		{"sql set line", "--@set run_date=20250615\n${run_month_end_std}", "sql",
			nil, "--@set run_date=20250615\n2025-06-30"},
		{"shell set line", "#@set run_date=20250615\necho ${run_year_begin}", "sh",
			nil, "#@set run_date=20250615\necho 20250101"},
		{"set line beats params", "--@set run_date=20250615\n${run_date}", "sql",
			withRunDate("20240101"), "--@set run_date=20250615\n20250615"},
		{"set line after use", "${run_date_std}\n--@set run_date=20250615", "sql",
			nil, "2025-06-15\n--@set run_date=20250615"},
		{"derived name cannot be set", "${run_today}", "sql",
			map[string]string{"run_today": "19990101"}, "20261204"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := substitute(t, tc.code, tc.runType, tc.vars)
			if sub.Code != tc.want {
				t.Errorf("code %q: got %q; want %q", tc.code, sub.Code, tc.want)
			}
		})
	}
}

func TestSubstituteVariablesInvalidRunDate(t *testing.T) {
	cases := []struct {
		name string
		code string
		vars map[string]string
	}{
		{"std format", "select 1", withRunDate("2026-12-03")},
		{"too short", "select 1", withRunDate("2026123")},
		{"too long", "select 1", withRunDate("202612031")},
		{"month 13", "select 1", withRunDate("20261301")},
		{"february 30", "select 1", withRunDate("20260230")},
		{"not leap year", "select 1", withRunDate("20250229")},
		{"letters", "select 1", withRunDate("yyyyMMdd")},
		{"signed", "select 1", withRunDate("+2026120")},
		{"empty", "select 1", withRunDate("")},
		{"set line", "--@set run_date=tomorrow\nselect 1", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub, err := entrance.SubstituteVariables(tc.code, "sql", tc.vars, testNow)
			if err == nil {
				t.Fatalf("got code %q; want an error", sub.Code)
			}
			if !strings.Contains(err.Error(), "invalid run_date") {
				t.Errorf("error %q does not name run_date", err)
			}
		})
	}
}

func TestSubstituteVariablesSetLines(t *testing.T) {
	cases := []struct {
		name    string
		runType string
		code    string
		want    string // the value of ${v}, "${v}" when v is not defined
	}{
		{"sql", "sql", "--@set v=42", "42"},
		{"sql spaces", "sql", "  --@set  v  =  42  ", "42"},
		{"sql no space after set", "sql", "--@setv=42", "42"},
		{"sql empty value", "sql", "--@set v=", ""},
		{"sql value with equals", "sql", "--@set v=a=b", "a=b"},
		{"sql crlf", "sql", "--@set v=42\r", "42"},
		{"sql last wins", "sql", "--@set v=1\n--@set v=2", "2"},
		{"hql", "hql", "--@set v=42", "42"},
		{"sparksql", "sparksql", "--@set v=42", "42"},
		{"sql ignores hash", "sql", "#@set v=42", "${v}"},
		{"shell", "shell", "#@set v=42", "42"},
		{"sh tab", "sh", "\t#@set\tv\t=\t42", "42"},
		{"python", "python", "#@set v=42", "42"},
		{"shell ignores dashes", "sh", "--@set v=42", "${v}"},
		{"unknown runType dashes", "scala", "--@set v=42", "42"},
		{"unknown runType hash", "", "#@set v=42", "42"},
		{"not at line start", "sql", "select 1; --@set v=42", "${v}"},
		{"no equals", "sql", "--@set v 42", "${v}"},
		{"no name", "sql", "--@set =42", "${v}"},
		{"other name", "sql", "--@set w=42", "${v}"},
		{"dotted name", "sql", "--@set v.x=1\n--@set v=2", "2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := tc.code + "\nx=${v}"
			sub := substitute(t, code, tc.runType, nil)
			want := tc.code + "\nx=" + tc.want
			if sub.Code != want {
				t.Errorf("got %q; want %q", sub.Code, want)
			}
		})
	}
}

func TestSubstituteVariablesSetBeatsParams(t *testing.T) {
	vars := map[string]string{"v": "params", "w": "kept"}
	sub := substitute(t, "--@set v=code\n${v} ${w}", "sql", vars)

	if want := "--@set v=code\ncode kept"; sub.Code != want {
		t.Errorf("code: got %q; want %q", sub.Code, want)
	}
	if got := sub.Variables["v"]; got != "code" {
		t.Errorf("Variables[v]: got %q; want %q", got, "code")
	}
	if got := vars["v"]; got != "params" {
		t.Errorf("params map changed: v = %q; want %q", got, "params")
	}
}

func TestSubstituteVariablesUserVariables(t *testing.T) {
	vars := map[string]string{
		"n": "17", "neg": "-7", "zero": "0", "s": "abc", "a.b": "dot",
		"max": strconv.FormatInt(1<<63-1, 10), "_x1": "under",
	}
	runSubstituteCases(t, "sql", []substituteCase{
		{"plain", "select ${s}", vars, "select abc"},
		{"dotted name", "${a.b}", vars, "dot"},
		{"underscore and digit", "${_x1}", vars, "under"},
		{"plus", "${n + 3}", vars, "20"},
		{"minus below zero", "${n - 20}", vars, "-3"},
		{"times", "${n*2}", vars, "34"},
		{"divide", "${n / 5}", vars, "3"},
		{"divide exact", "${n/17}", vars, "1"},
		{"negative divide truncates", "${neg / 2}", vars, "-3"},
		{"zero divided", "${zero / 9}", vars, "0"},
		{"times zero", "${max * 0}", vars, "0"},
		{"leading zeros", "${n + 007}", vars, "24"},
		{"max plus zero", "${max + 0}", vars, "9223372036854775807"},
	})
}

func TestSubstituteVariablesLeftAsIs(t *testing.T) {
	vars := map[string]string{"n": "1"}
	runSubstituteCases(t, "sh", []substituteCase{
		{"undefined", "echo ${HOME}", vars, "echo ${HOME}"},
		{"undefined with path", "cd ${HOME}/x", vars, "cd ${HOME}/x"},
		{"no braces", "echo $HOME $n $run_date", vars, "echo $HOME $n $run_date"},
		{"undefined arithmetic", "echo ${HOME - 1}", vars, "echo ${HOME - 1}"},
		{"shell default", "echo ${TMP:-/tmp}", vars, "echo ${TMP:-/tmp}"},
		{"shell length", "echo ${#arr}", vars, "echo ${#arr}"},
		{"empty braces", "echo ${}", vars, "echo ${}"},
		{"blank braces", "echo ${ }", vars, "echo ${ }"},
		{"unterminated", "echo ${n", vars, "echo ${n"},
		{"unterminated then expression", "echo ${n\necho ${n}", vars, "echo ${n\necho 1"},
		{"closed on next line", "echo ${run_date\n}", vars, "echo ${run_date\n}"},
		{"dollar at end", "echo $", vars, "echo $"},
		{"brace alone", "awk '{print}'", vars, "awk '{print}'"},
		{"undefined dotted", "${n.x}", vars, "${n.x}"},
	})
}

func TestSubstituteVariablesNestedAndAdjacent(t *testing.T) {
	vars := map[string]string{"a": "x", "b": "y", "n": "5", "ref": "${a}"}
	runSubstituteCases(t, "sql", []substituteCase{
		{"adjacent", "${a}${b}${n+1}", vars, "xy6"},
		{"repeated", "${a}-${a}-${a}", vars, "x-x-x"},
		{"inner replaced", "${a${b}}", vars, "${ay}"},
		{"inner of undefined", "${HOME${a}}", vars, "${HOMEx}"},
		{"double dollar", "$${a}", vars, "$x"},
		{"value not rescanned", "${ref}", vars, "${a}"},
		{"at start and end", "${a} middle ${b}", vars, "x middle y"},
		{"stray close brace", "}${a}}", vars, "}x}"},
	})
}

func TestSubstituteVariablesMalformed(t *testing.T) {
	vars := map[string]string{"n": "10", "s": "abc", "f": "2.5",
		"max": "9223372036854775807", "min": "-9223372036854775808"}
	cases := []struct {
		name string
		expr string
		want string // part of the error message after the expression
	}{
		{"missing operand", "${run_date - }", "missing operand"},
		{"missing operand no space", "${n+}", "missing operand"},
		{"date times", "${run_date * 2}", "run_date takes only + and - (a number of days)"},
		{"month divide", "${run_month_begin / 2}", "(a number of months), not /"},
		{"year times", "${run_year_end_std*1}", "(a number of years), not *"},
		{"name operand", "${n + x}", "not a decimal integer"},
		{"two operands", "${n + 1 2}", "not a decimal integer"},
		{"second operator", "${n + 1 + 2}", "not a decimal integer"},
		{"signed operand", "${n + -1}", "not a decimal integer"},
		{"no operator", "${run_date 7}", "expected an operator"},
		{"shell default on defined", "${n:-3}", "expected an operator"},
		{"modulo", "${n % 3}", "expected an operator"},
		{"string value", "${s + 1}", `value "abc" of s is not an integer`},
		{"float value", "${f * 2}", `value "2.5" of f is not an integer`},
		{"division by zero", "${n / 0}", "division by zero"},
		{"overflow plus", "${max + 1}", "overflows int64"},
		{"overflow times", "${max * 2}", "overflows int64"},
		{"overflow minus", "${min - 1}", "overflows int64"},
		{"overflow negative times", "${min * 2}", "overflows int64"},
		{"operand too big", "${n + 99999999999999999999}", "out of range"},
		{"date operand too big", "${run_date + 99999999}", "too large"},
		{"date past year 9999", "${run_year_end + 8000}", "outside years"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := "select 1;\nselect " + tc.expr + ";"
			sub, err := entrance.SubstituteVariables(code, "sql", vars, testNow)
			if err == nil {
				t.Fatalf("got code %q; want an error", sub.Code)
			}
			if !strings.Contains(err.Error(), strconv.Quote(tc.expr)) {
				t.Errorf("error %q does not name the expression %s", err, tc.expr)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestSubstituteVariablesLog(t *testing.T) {
	code := "${run_date} ${n} ${run_date} ${run_date - 1} ${run_date-1} ${HOME}"
	sub := substitute(t, code, "sh", map[string]string{"n": "3"})

	want := []string{
		"replaced ${run_date} with 20261203",
		"replaced ${n} with 3",
		"replaced ${run_date - 1} with 20261202",
		"replaced ${run_date-1} with 20261202",
	}
	if !slices.Equal(sub.Log, want) {
		t.Errorf("log:\ngot  %q\nwant %q", sub.Log, want)
	}
}

func TestSubstituteVariablesNoExpression(t *testing.T) {
	code := "select * from t where a = '$x' and b = '{y}'"
	sub := substitute(t, code, "sql", nil)

	if sub.Code != code {
		t.Errorf("code: got %q; want it unchanged", sub.Code)
	}
	if len(sub.Log) != 0 {
		t.Errorf("log: got %q; want none", sub.Log)
	}
}

func TestSubstituteVariablesVariablesMap(t *testing.T) {
	vars := map[string]string{"p": "1", "run_month_end": "ignored"}
	sub := substitute(t, "--@set c=2\nselect 1", "sql", vars)

	want := map[string]string{
		"p": "1", "c": "2",
		"run_date": "20261203", "run_date_std": "2026-12-03",
		"run_today": "20261204", "run_today_std": "2026-12-04",
		"run_month_begin": "20261201", "run_month_begin_std": "2026-12-01",
		"run_month_end": "20261231", "run_month_end_std": "2026-12-31",
		"run_year_begin": "20260101", "run_year_begin_std": "2026-01-01",
		"run_year_end": "20261231", "run_year_end_std": "2026-12-31",
	}
	if !maps.Equal(sub.Variables, want) {
		t.Errorf("Variables:\ngot  %v\nwant %v", sub.Variables, want)
	}
	if got := vars["run_month_end"]; got != "ignored" {
		t.Errorf("params map changed: run_month_end = %q", got)
	}
}

func ExampleSubstituteVariables() {
	code := "--@set days=7\n" +
		"select * from t where dt between '${run_date_std - 7}' and '${run_date_std}'\n" +
		"  and month >= '${run_month_begin - 1}' limit ${limit * 10}"
	now := time.Date(2026, time.March, 2, 9, 30, 0, 0, time.UTC)

	sub, err := entrance.SubstituteVariables(code, "sql", map[string]string{"limit": "5"}, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sub.Code)
	for _, line := range sub.Log {
		fmt.Println(line)
	}
	// Output:
	// --@set days=7
	// select * from t where dt between '2026-02-22' and '2026-03-01'
	//   and month >= '20260201' limit 50
	// replaced ${run_date_std - 7} with 2026-02-22
	// replaced ${run_date_std} with 2026-03-01
	// replaced ${run_month_begin - 1} with 20260201
	// replaced ${limit * 10} with 50
}

func FuzzSubstituteVariables(f *testing.F) {
	seeds := []string{
		"select 1", "${run_date}", "${run_date - 7}", "${run_month_end-1}",
		"${n * 3}", "${n / 0}", "${HOME}/x", "${a${n}}", "${", "}${", "$",
		"--@set n=4\n${n + 1}", "#@set run_date=20240229\n${run_year_end + 1}",
		"--@set run_date=bad", "${ run_today_std\t+ 1 }", "${n+99999999999999999999}",
	}
	for _, s := range seeds {
		f.Add(s, "sql")
		f.Add(s, "sh")
	}
	vars := map[string]string{"n": "12", "s": "text"}

	f.Fuzz(func(t *testing.T, code, runType string) {
		sub, err := entrance.SubstituteVariables(code, runType, vars, testNow)
		if err == nil {
			for _, line := range sub.Log {
				expr, _, _ := strings.Cut(strings.TrimPrefix(line, "replaced "), " with ")
				if !strings.Contains(code, expr) {
					t.Fatalf("code %q: log line %q names no expression of the code", code, line)
				}
			}
		}
		if strings.Contains(code, "${") {
			return
		}
		if err != nil {
			if !strings.Contains(code, "@set") {
				t.Fatalf("code %q without ${ or @set: error %v", code, err)
			}
			return
		}
		if sub.Code != code {
			t.Fatalf("code %q without ${ changed to %q", code, sub.Code)
		}
		if len(sub.Log) != 0 {
			t.Fatalf("code %q without ${ logged %q", code, sub.Log)
		}
	})
}

func BenchmarkSubstituteVariables(b *testing.B) {
	var script strings.Builder
	script.WriteString("--@set limit=100\n")
	for script.Len() < 10_000 {
		script.WriteString("select col_a, col_b, sum(col_c) from some_table group by col_a, col_b;\n")
	}
	plain := script.String()
	third := len(plain) / 3
	withExpressions := "${run_date_std}" + plain[:third] + "${run_month_begin - 1}" +
		plain[third:2*third] + "${limit * 2}" + plain[2*third:]

	cases := []struct {
		name string
		code string
	}{
		{"three expressions", withExpressions},
		{"no expression", plain},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.code)))
			for b.Loop() {
				if _, err := entrance.SubstituteVariables(bc.code, "sql", nil, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
