package entrance

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Substitution is the outcome of substituting variables in code.
type Substitution struct {
	Code      string            // code after substitution
	Variables map[string]string // every defined variable: params, @set lines, built-ins
	Log       []string          // one info line per distinct expression replaced
}

// Date layouts of the built-in variables: yyyyMMdd and, for names ending in
// _std, yyyy-MM-dd.
const (
	layoutCompact  = "20060102"
	layoutStandard = "2006-01-02"
)

// maxDateOperand bounds the operand of date arithmetic so that the result
// stays far from the limits of time.Time. Results outside years 0-9999 are
// rejected afterwards.
const maxDateOperand = 10_000_000

// dateUnit is the step of a built-in date variable's arithmetic: a day, a
// month or a year.
type dateUnit string

const (
	unitDay   dateUnit = "day"
	unitMonth dateUnit = "month"
	unitYear  dateUnit = "year"
)

// builtinDate describes one built-in date variable. derive returns its
// value for a run date, moved by n units. With n = 0 it returns the plain
// value.
type builtinDate struct {
	name   string
	unit   dateUnit
	layout string
	derive func(runDate time.Time, n int) time.Time
}

func addDays(offset int) func(time.Time, int) time.Time {
	return func(d time.Time, n int) time.Time { return d.AddDate(0, 0, offset+n) }
}

func monthBegin(d time.Time, n int) time.Time {
	return time.Date(d.Year(), d.Month()+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
}

// monthEnd returns the last day of the month n months after d's month, as
// the day before the first day of the following month.
func monthEnd(d time.Time, n int) time.Time {
	return time.Date(d.Year(), d.Month()+time.Month(n)+1, 0, 0, 0, 0, 0, time.UTC)
}

func yearBegin(d time.Time, n int) time.Time {
	return time.Date(d.Year()+n, time.January, 1, 0, 0, 0, 0, time.UTC)
}

func yearEnd(d time.Time, n int) time.Time {
	return time.Date(d.Year()+n, time.December, 31, 0, 0, 0, 0, time.UTC)
}

// builtinDates holds run_date and the variables derived from it. Only
// run_date can be set by a request or an @set line. As in Linkis, a value
// given for a derived name is replaced by the value derived from run_date.
var builtinDates = [...]builtinDate{
	{"run_date", unitDay, layoutCompact, addDays(0)},
	{"run_date_std", unitDay, layoutStandard, addDays(0)},
	{"run_today", unitDay, layoutCompact, addDays(1)},
	{"run_today_std", unitDay, layoutStandard, addDays(1)},
	{"run_month_begin", unitMonth, layoutCompact, monthBegin},
	{"run_month_begin_std", unitMonth, layoutStandard, monthBegin},
	{"run_month_end", unitMonth, layoutCompact, monthEnd},
	{"run_month_end_std", unitMonth, layoutStandard, monthEnd},
	{"run_year_begin", unitYear, layoutCompact, yearBegin},
	{"run_year_begin_std", unitYear, layoutStandard, yearBegin},
	{"run_year_end", unitYear, layoutCompact, yearEnd},
	{"run_year_end_std", unitYear, layoutStandard, yearEnd},
}

// appendDate appends d in layout, layoutCompact or layoutStandard. It does
// the work of d.AppendFormat in less time for years 0-9999, the years of
// four digits.
func appendDate(buf []byte, d time.Time, layout string) []byte {
	y, m, day := d.Date()
	if y < 0 || y > 9999 {
		return d.AppendFormat(buf, layout)
	}
	sep := layout == layoutStandard
	buf = append(buf, byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
	if sep {
		buf = append(buf, '-')
	}
	buf = append(buf, byte('0'+m/10), byte('0'+m%10))
	if sep {
		buf = append(buf, '-')
	}
	return append(buf, byte('0'+day/10), byte('0'+day%10))
}

func findBuiltinDate(name string) (builtinDate, bool) {
	for _, b := range builtinDates {
		if b.name == name {
			return b, true
		}
	}
	return builtinDate{}, false
}

// addBuiltinDates stores the value of every built-in date variable in
// variables. The values share one string, so they cost one allocation.
func addBuiltinDates(variables map[string]string, runDate time.Time) {
	var ends [len(builtinDates)]int
	buf := make([]byte, 0, len(builtinDates)*len(layoutStandard))
	for i, b := range builtinDates {
		buf = appendDate(buf, b.derive(runDate, 0), b.layout)
		ends[i] = len(buf)
	}

	all := string(buf)
	start := 0
	for i, b := range builtinDates {
		variables[b.name] = all[start:ends[i]]
		start = ends[i]
	}
}

// SubstituteVariables replaces the ${name} expressions in code whose name
// is defined, before an engine runs the code. It returns an error, and no
// code, when run_date is not a valid yyyyMMdd date or when an expression on
// a defined name is malformed. The error names the run_date value or the
// expression.
//
// A name is defined by:
//   - vars, the params.variable map of the request, which is not modified.
//   - a line of the code "--@set name=value" (SQL) or "#@set name=value"
//     (shell, Python). Spaces are allowed before and after the name and
//     around "=". As in Linkis, an @set line overrides vars, and the last
//     line for a name wins. The lines stay in the code, where they are
//     comments.
//   - the built-in date variables: run_date and, derived from it,
//     run_date_std, run_today, run_today_std, run_month_begin,
//     run_month_end, run_year_begin and run_year_end, the last six also
//     with _std. Names without _std are yyyyMMdd, names with _std
//     yyyy-MM-dd. run_today is run_date + 1 day, the others are the first
//     or last day of run_date's month or year.
//
// run_date is the day before now, in now's location, unless vars or an
// @set line sets it. The derived variables follow run_date and cannot be
// set: as in Linkis, a value given for one of them is replaced.
//
// runType picks the @set prefix: "#@set" for sh, shell, bash, python, py
// and pyspark, "--@set" for hql, jdbc and any runType containing "sql",
// and both prefixes for other runTypes.
//
// An expression is ${name} or ${name op n}, with op one of + - * /, n a
// decimal integer and optional spaces or tabs around each part. A day
// variable (run_date, run_today) moves by n days, run_month_* by n months,
// run_year_* by n years, and each keeps its format. Date variables take
// only + and -. Any other variable takes all four operators when its value
// is a decimal int64, and division truncates toward zero. Any other text
// after a defined name, as in ${n:-3}, makes the expression malformed.
// Names consist of ASCII letters, digits, '_' and '.'.
//
// NOTE: Linkis also takes arithmetic on decimal values such as 20.1, and
// SubstituteVariables rejects it.
//
// Everything else is left as it is: an expression on an undefined name
// (so shell's ${HOME} and ${HOME:-/tmp} keep working), "${" without a "}"
// on the same line, and "$name" without braces. When expressions nest, as
// in ${a${b}}, only the inner one is an expression. The scan makes one
// pass, so a replaced value is never scanned again.
func SubstituteVariables(code, runType string, vars map[string]string, now time.Time) (*Substitution, error) {
	variables := make(map[string]string, len(vars)+len(builtinDates))
	for name, value := range vars {
		variables[name] = value
	}
	readSetLines(code, setPrefixes(runType), variables)

	runDate, err := resolveRunDate(variables, now)
	if err != nil {
		return nil, err
	}
	addBuiltinDates(variables, runDate)

	s := &substituter{variables: variables, runDate: runDate}
	out, err := s.replace(code)
	if err != nil {
		return nil, err
	}
	return &Substitution{Code: out, Variables: variables, Log: s.log}, nil
}

// resolveRunDate returns run_date as midnight UTC of its calendar day. The
// date is computed in now's location, and UTC keeps day arithmetic free of
// daylight saving shifts.
func resolveRunDate(variables map[string]string, now time.Time) (time.Time, error) {
	value, ok := variables["run_date"]
	if !ok {
		y, m, d := now.Date()
		return time.Date(y, m, d-1, 0, 0, 0, 0, time.UTC), nil
	}

	if len(value) != len(layoutCompact) || !isDigits(value) {
		return time.Time{}, fmt.Errorf("invalid run_date %q: expected a date in the format yyyyMMdd, such as 20261203", value)
	}
	d, err := time.Parse(layoutCompact, value)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid run_date %q: %w", value, err)
	}
	return d, nil
}

// setPrefixes returns the comment prefixes that mark an @set line in code
// of the given runType.
func setPrefixes(runType string) []string {
	lower := strings.ToLower(runType)
	switch {
	case lower == "sh", lower == "shell", lower == "bash",
		lower == "python", lower == "py", lower == "pyspark":
		return []string{"#@set"}
	case lower == "hql", lower == "jdbc", strings.Contains(lower, "sql"):
		return []string{"--@set"}
	default:
		return []string{"--@set", "#@set"}
	}
}

// readSetLines stores in variables the name and value of each @set line of
// code. Lines that do not have the form prefix name=value are ignored. It
// looks only at lines that contain "@set", found with strings.Index.
func readSetLines(code string, prefixes []string, variables map[string]string) {
	pos := 0
	for {
		k := strings.Index(code[pos:], "@set")
		if k < 0 {
			return
		}
		at := pos + k
		lineStart := strings.LastIndexByte(code[:at], '\n') + 1
		pos = len(code)
		if n := strings.IndexByte(code[at:], '\n'); n >= 0 {
			pos = at + n
		}

		line := strings.TrimLeft(code[lineStart:pos], " \t")
		for _, prefix := range prefixes {
			rest, ok := strings.CutPrefix(line, prefix)
			if !ok {
				continue
			}
			if name, value, ok := parseSetAssignment(rest); ok {
				variables[name] = value
			}
		}
	}
}

// parseSetAssignment splits " name = value" into the name and the value,
// with the value trimmed of surrounding blanks and the line ending.
func parseSetAssignment(s string) (name, value string, ok bool) {
	s = strings.TrimLeft(s, " \t")
	n := nameLength(s)
	if n == 0 {
		return "", "", false
	}
	name = s[:n]

	rest, ok := strings.CutPrefix(strings.TrimLeft(s[n:], " \t"), "=")
	if !ok {
		return "", "", false
	}
	return name, strings.Trim(rest, " \t\r\n"), true
}

// nameLength returns the length of the variable name at the start of s.
func nameLength(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		isName := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			c >= '0' && c <= '9' || c == '_' || c == '.'
		if !isName {
			return i
		}
	}
	return len(s)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// substituter holds the state of one scan of the code.
type substituter struct {
	variables map[string]string
	runDate   time.Time
	log       []string
	logged    map[string]bool // expressions already in log
}

// replace scans code once for ${ and returns it with each expression on a
// defined name replaced. It copies code only when it replaces something.
func (s *substituter) replace(code string) (string, error) {
	var out strings.Builder
	copied := 0 // code[:copied] is already in out
	pos := 0
	for {
		k := strings.Index(code[pos:], "${")
		if k < 0 {
			break
		}
		start := pos + k
		end, ok := expressionEnd(code, start)
		if !ok {
			pos = start + 2
			continue
		}
		pos = end

		expr := code[start:end]
		value, defined, err := s.evaluate(expr)
		if err != nil {
			return "", err
		}
		if !defined {
			continue
		}
		if out.Len() == 0 {
			out.Grow(len(code) + len(value))
		}
		out.WriteString(code[copied:start])
		out.WriteString(value)
		copied = end
		s.record(expr, value)
	}

	if copied == 0 {
		return code, nil
	}
	out.WriteString(code[copied:])
	return out.String(), nil
}

// expressionEnd returns the index just past the "}" that closes the "${"
// at start. It reports false when a newline, the end of code or another
// "${" comes first.
func expressionEnd(code string, start int) (int, bool) {
	for i := start + 2; i < len(code); i++ {
		switch code[i] {
		case '}':
			return i + 1, true
		case '\n':
			return 0, false
		case '$':
			if i+1 < len(code) && code[i+1] == '{' {
				return 0, false
			}
		}
	}
	return 0, false
}

func (s *substituter) record(expr, value string) {
	if s.logged == nil {
		s.logged = make(map[string]bool)
	}
	if s.logged[expr] {
		return
	}
	s.logged[expr] = true
	s.log = append(s.log, fmt.Sprintf("replaced %s with %s", expr, value))
}

// evaluate returns the value of expr, a complete "${...}". defined is false
// when expr does not start with a defined name, and expr then stays as it
// is.
func (s *substituter) evaluate(expr string) (value string, defined bool, err error) {
	body := strings.TrimLeft(expr[2:len(expr)-1], " \t")
	n := nameLength(body)
	if n == 0 {
		return "", false, nil
	}
	name := body[:n]
	value, defined = s.variables[name]
	if !defined {
		return "", false, nil
	}

	rest := strings.Trim(body[n:], " \t")
	if rest == "" {
		return value, true, nil
	}
	op, operand, err := parseOperation(name, rest)
	if err != nil {
		return "", true, fmt.Errorf("invalid variable expression %q: %w", expr, err)
	}

	if b, ok := findBuiltinDate(name); ok {
		value, err = b.apply(s.runDate, op, operand)
	} else {
		value, err = applyInteger(name, value, op, operand)
	}
	if err != nil {
		return "", true, fmt.Errorf("invalid variable expression %q: %w", expr, err)
	}
	return value, true, nil
}

// parseOperation splits "op n", the text after the name, into the
// operator and its integer operand.
func parseOperation(name, rest string) (byte, int64, error) {
	op := rest[0]
	if strings.IndexByte("+-*/", op) < 0 {
		return 0, 0, fmt.Errorf("expected an operator (+ - * /) after %s, found %q", name, rest)
	}

	text := strings.TrimLeft(rest[1:], " \t")
	if text == "" {
		return 0, 0, fmt.Errorf("missing operand after %q", string(op))
	}
	if !isDigits(text) {
		return 0, 0, fmt.Errorf("operand %q is not a decimal integer", text)
	}
	operand, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("operand %q is out of range", text)
	}
	return op, operand, nil
}

// apply returns the value of b moved by operand units, in b's format.
func (b builtinDate) apply(runDate time.Time, op byte, operand int64) (string, error) {
	if op != '+' && op != '-' {
		return "", fmt.Errorf("%s takes only + and - (a number of %ss), not %c", b.name, b.unit, op)
	}
	if operand > maxDateOperand {
		return "", fmt.Errorf("operand %d is too large for %s", operand, b.name)
	}

	n := int(operand)
	if op == '-' {
		n = -n
	}
	d := b.derive(runDate, n)
	if d.Year() < 0 || d.Year() > 9999 {
		return "", fmt.Errorf("result %s is outside years 0 to 9999", d.Format(time.DateOnly))
	}
	return d.Format(b.layout), nil
}

var errOverflow = errors.New("result overflows int64")

// applyInteger returns value op operand in decimal, where value is the
// value of the variable name.
func applyInteger(name, value string, op byte, operand int64) (string, error) {
	v, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return "", fmt.Errorf("value %q of %s is not an integer, so it takes no arithmetic", value, name)
	}

	var result int64
	switch op {
	case '+':
		result = v + operand
		if result < v {
			return "", errOverflow
		}
	case '-':
		result = v - operand
		if result > v {
			return "", errOverflow
		}
	case '*':
		result = v * operand
		if v != 0 && result/v != operand {
			return "", errOverflow
		}
	case '/':
		if operand == 0 {
			return "", errors.New("division by zero")
		}
		result = v / operand
	}
	return strconv.FormatInt(result, 10), nil
}
