package entrance

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	// maxFieldLen is the longest creator, engine or instance, in bytes, that
	// a two-digit length prefix can encode.
	maxFieldLen = 99

	// linkis1xPrefix starts every execID in the Linkis 1.x REST format.
	linkis1xPrefix = "exec_id"

	// maxQuotedInput caps how many bytes of a rejected input, or of a part
	// of it, an error quotes.
	maxQuotedInput = 100
)

// ExecID is a parsed execID. Its strings point into the parsed input, so
// parsing copies nothing.
//
// An execID names a job and the entrance instance that runs it, so that a
// router in front of several instances can send every request about a job
// to the right one. Two formats exist:
//
//   - The WebSocket format, which FormatExecID generates:
//     <len(creator)><len(engine)><len(instance)><creator><engine><instance>
//     followed by the short id <creator>_<user>_<index>. The three lengths
//     are decimal byte counts zero-padded to two digits, for example
//     030418IDEhivebdpdwc010004:10087IDE_johnnwang_21.
//   - The Linkis 1.x REST format, which ParseExecID also accepts:
//     exec_id<len(app)><len(instance)><app><instance><short id>, with
//     three-digit lengths, for example
//     exec_id018026linkis-cg-entrancebda01node03.oracle.cn:9104LINKISCLI_hadoop_shell_0.
type ExecID struct {
	// Creator is the requesting application, such as "IDE". In the 1.x
	// format it is the part of the short id before the first underscore.
	Creator string

	// Engine is the engine name, such as "hive". In the 1.x format it is
	// what lies between the user and the index in the short id ("shell" in
	// LINKISCLI_hadoop_shell_0), possibly empty or containing underscores.
	Engine string

	// App is the application name of the entrance, such as
	// "linkis-cg-entrance". It is set in the 1.x format only.
	App string

	// Instance is the host:port of the entrance that runs the job, as the
	// execID carries it.
	Instance string

	// User is the user who submitted the job. In the WebSocket format it is
	// everything between "<creator>_" and the last underscore, so it may
	// contain underscores. In the 1.x format it is the part of the short id
	// between the first and the second underscore, and empty when the short
	// id has only one underscore.
	User string

	// Index is the number after the last underscore of the short id. The
	// entrance of this library passes the taskID as the index.
	Index int64

	// Linkis1x is true when the input was in the Linkis 1.x REST format
	// (exec_id...) and false for the WebSocket format.
	Linkis1x bool
}

// FormatExecID generates an execID in the WebSocket format. The length prefix
// has two decimal digits per field and counts bytes, so creator, engine and
// instance must each be 1 to 99 bytes long.
// All four strings must be non-empty valid UTF-8, and index must not be
// negative. Otherwise FormatExecID returns an error that wraps
// ErrInvalidExecID and names the field.
//
// An empty creator, engine or instance would make the execID ambiguous, and
// invalid UTF-8 would not survive a JSON round trip, which is why both are
// rejected. ParseExecID accepts every execID that FormatExecID returns and
// yields the same fields.
func FormatExecID(creator, engine, instance, user string, index int64) (string, error) {
	if err := checkFormatArgs(creator, engine, instance, user, index); err != nil {
		return "", err
	}

	var digits [20]byte
	indexText := strconv.AppendInt(digits[:0], index, 10)

	// The Builder's buffer becomes the string without a copy, so Grow with
	// the exact size makes this the only allocation.
	var b strings.Builder
	b.Grow(6 + 2*len(creator) + len(engine) + len(instance) + len(user) + 2 + len(indexText))
	writeTwoDigits(&b, len(creator))
	writeTwoDigits(&b, len(engine))
	writeTwoDigits(&b, len(instance))
	b.WriteString(creator)
	b.WriteString(engine)
	b.WriteString(instance)

	b.WriteString(creator)
	b.WriteByte('_')
	b.WriteString(user)
	b.WriteByte('_')
	b.Write(indexText)
	return b.String(), nil
}

// checkFormatArgs returns an error naming the first argument that
// FormatExecID rejects, or nil.
func checkFormatArgs(creator, engine, instance, user string, index int64) error {
	// Most ids are ASCII, and checking bytes is much cheaper than decoding
	// UTF-8, so the common case takes this path.
	if index >= 0 && user != "" && isShortASCII(creator) && isShortASCII(engine) &&
		isShortASCII(instance) && isASCII(user) {
		return nil
	}

	for _, f := range [...]struct{ name, value string }{
		{"creator", creator},
		{"engine", engine},
		{"instance", instance},
	} {
		if len(f.value) > maxFieldLen {
			return fmt.Errorf("format execID: %s is %d bytes, max %d: %w",
				f.name, len(f.value), maxFieldLen, ErrInvalidExecID)
		}
		if err := checkFormatField(f.name, f.value); err != nil {
			return err
		}
	}
	if err := checkFormatField("user", user); err != nil {
		return err
	}
	if index < 0 {
		return fmt.Errorf("format execID: index %d is negative: %w", index, ErrInvalidExecID)
	}
	return nil
}

func checkFormatField(name, value string) error {
	if value == "" {
		return fmt.Errorf("format execID: %s is empty: %w", name, ErrInvalidExecID)
	}
	if !utf8.ValidString(value) {
		return fmt.Errorf("format execID: %s %q is not valid UTF-8: %w", name, value, ErrInvalidExecID)
	}
	return nil
}

// isShortASCII reports whether s is 1 to maxFieldLen bytes of ASCII.
func isShortASCII(s string) bool {
	return s != "" && len(s) <= maxFieldLen && isASCII(s)
}

func isASCII(s string) bool {
	var bits byte
	for i := 0; i < len(s); i++ {
		bits |= s[i]
	}
	return bits < utf8.RuneSelf
}

func writeTwoDigits(b *strings.Builder, n int) {
	b.WriteByte('0' + byte(n/10))
	b.WriteByte('0' + byte(n%10))
}

// ParseExecID parses an execID in the WebSocket format or in the Linkis 1.x
// REST format. The input must be valid UTF-8, every length must be non-zero
// and fit the input, and the index must be decimal digits without sign or
// leading zeros that fit in an int64. Any other input yields an error that
// wraps ErrInvalidExecID and describes the problem.
//
// NOTE: Linkis 1.x builds the short id from its scheduler group name
// (EntranceGroupFactory), which is usually <creator>_<user>_<engine> but
// differs in some versions and modes (for example Concurrent_<engine>).
// Creator, User and Engine of a 1.x execID are therefore the positional
// parts of the short id, and may not mean what their names suggest.
//
// ParseExecID does not allocate unless it returns an error.
func ParseExecID(s string) (ExecID, error) {
	// With the whole input valid, a field is valid UTF-8 when it starts and
	// ends on a character boundary, which splitFields checks.
	if !utf8.ValidString(s) {
		return ExecID{}, parseError(s, "input is not valid UTF-8")
	}
	if strings.HasPrefix(s, linkis1xPrefix) {
		return parseLinkis1x(s)
	}
	return parseWebSocketFormat(s)
}

func parseWebSocketFormat(s string) (ExecID, error) {
	if len(s) < 6 {
		return ExecID{}, parseError(s, "%d bytes is too short for the 6-digit length prefix", len(s))
	}
	names := []string{"creator", "engine", "instance"}
	var lengths [3]int
	for i, name := range names {
		n, ok := parseDigits(s[2*i : 2*i+2])
		if !ok {
			return ExecID{}, parseError(s, "%s length %q is not two decimal digits", name, s[2*i:2*i+2])
		}
		if n == 0 {
			return ExecID{}, parseError(s, "%s length is 00", name)
		}
		lengths[i] = n
	}

	fields, short, err := splitFields(s, 6, names, lengths[:])
	if err != nil {
		return ExecID{}, err
	}
	id := ExecID{Creator: fields[0], Engine: fields[1], Instance: fields[2]}

	// The short id repeats the creator, so it must be "<creator>_<user>_<index>".
	creatorLen := len(id.Creator)
	if len(short) <= creatorLen || short[:creatorLen] != id.Creator || short[creatorLen] != '_' {
		return ExecID{}, parseError(s, "short id %q does not start with creator %q and an underscore",
			short, id.Creator)
	}
	rest := short[creatorLen+1:]
	last := strings.LastIndexByte(rest, '_')
	if last < 0 {
		return ExecID{}, parseError(s, "short id %q has no underscore between user and index", short)
	}
	id.User = rest[:last]
	if id.User == "" {
		return ExecID{}, parseError(s, "user in short id %q is empty", short)
	}
	if id.Index, err = parseIndex(s, rest[last+1:]); err != nil {
		return ExecID{}, err
	}
	return id, nil
}

func parseLinkis1x(s string) (ExecID, error) {
	head := s[len(linkis1xPrefix):]
	if len(head) < 6 {
		return ExecID{}, parseError(s, "%d bytes after %q is too short for the 6-digit length prefix",
			len(head), linkis1xPrefix)
	}
	names := []string{"application name", "instance"}
	var lengths [2]int
	for i, name := range names {
		n, ok := parseDigits(head[3*i : 3*i+3])
		if !ok {
			return ExecID{}, parseError(s, "%s length %q is not three decimal digits", name, head[3*i:3*i+3])
		}
		if n == 0 {
			return ExecID{}, parseError(s, "%s length is 000", name)
		}
		lengths[i] = n
	}

	fields, short, err := splitFields(s, len(linkis1xPrefix)+6, names, lengths[:])
	if err != nil {
		return ExecID{}, err
	}
	id := ExecID{App: fields[0], Instance: fields[1], Linkis1x: true}

	first := strings.IndexByte(short, '_')
	last := strings.LastIndexByte(short, '_')
	if first < 0 {
		return ExecID{}, parseError(s, "short id %q has no underscore before the index", short)
	}
	if first == 0 {
		return ExecID{}, parseError(s, "creator in short id %q is empty", short)
	}
	id.Creator = short[:first]
	if first < last {
		middle := short[first+1 : last]
		id.User, id.Engine, _ = strings.Cut(middle, "_")
	}
	if id.Index, err = parseIndex(s, short[last+1:]); err != nil {
		return ExecID{}, err
	}
	return id, nil
}

// splitFields cuts the named fields of the given byte lengths from s,
// starting at offset start, and returns them with the rest of s, the short
// id. It fits both formats, which differ only in the number of fields.
func splitFields(s string, start int, names []string, lengths []int) (
	fields [3]string, short string, err error,
) {
	end := start
	for _, n := range lengths {
		end += n
	}
	if end > len(s) {
		return fields, "", parseError(s, "length prefix needs %d bytes of fields, but only %d follow it",
			end-start, len(s)-start)
	}

	pos := start
	for i, n := range lengths {
		fields[i] = s[pos : pos+n]
		pos += n
		// Fields follow ASCII digits, so only their ends can split a character.
		if pos < len(s) && !utf8.RuneStart(s[pos]) {
			return fields, "", parseError(s,
				"%s %q ends inside a multi-byte character (lengths must count bytes)", names[i], fields[i])
		}
	}
	if end == len(s) {
		return fields, "", parseError(s, "short id after the fields is missing")
	}
	return fields, s[end:], nil
}

// parseDigits parses a fixed-width decimal length. Unlike strconv.Atoi it
// rejects signs, so "+3" or "-1" is never taken for a length.
func parseDigits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// parseIndex parses the index at the end of a short id. Leading zeros are
// rejected so that every index has a single spelling.
func parseIndex(s, text string) (int64, error) {
	if text == "" {
		return 0, parseError(s, "index after the last underscore is missing")
	}
	if len(text) > 1 && text[0] == '0' {
		return 0, parseError(s, "index %q has a leading zero", text)
	}
	var n int64
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c < '0' || c > '9' {
			return 0, parseError(s, "index %q is not a decimal number", text)
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, parseError(s, "index %q overflows int64", text)
		}
		n = n*10 + d
	}
	return n, nil
}

// parseError returns an error that wraps ErrInvalidExecID, quotes the start
// of the input and gives the reason. String arguments are clipped like the
// input, so a long execID cannot make a long error.
func parseError(s, format string, args ...any) error {
	for i, arg := range args {
		if text, ok := arg.(string); ok {
			args[i] = clip(text)
		}
	}
	reason := fmt.Sprintf(format, args...)
	return fmt.Errorf("parse execID %q: %s: %w", clip(s), reason, ErrInvalidExecID)
}

// clip cuts s to maxQuotedInput bytes and marks the cut with "...".
func clip(s string) string {
	if len(s) <= maxQuotedInput {
		return s
	}
	return s[:maxQuotedInput] + "..."
}
