package entrance_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/goentrance/entrance"
)

const (
	webSocketExample = "030418IDEhivebdpdwc010004:10087IDE_johnnwang_21"
	linkis1xExample  = "exec_id018026linkis-cg-entrancebda01node03.oracle.cn:9104LINKISCLI_hadoop_shell_0"
)

func TestParseExecIDValid(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want entrance.ExecID
	}{
		{
			name: "websocket example",
			in:   webSocketExample,
			want: entrance.ExecID{Creator: "IDE", Engine: "hive", Instance: "bdpdwc010004:10087",
				User: "johnnwang", Index: 21},
		},
		{
			name: "linkis 1.x example",
			in:   linkis1xExample,
			want: entrance.ExecID{Creator: "LINKISCLI", Engine: "shell", App: "linkis-cg-entrance",
				Instance: "bda01node03.oracle.cn:9104", User: "hadoop", Index: 0, Linkis1x: true},
		},
		{
			name: "websocket user with underscores",
			in:   "030409IDEhivehost:8080IDE_a_b_c_7",
			want: entrance.ExecID{Creator: "IDE", Engine: "hive", Instance: "host:8080", User: "a_b_c", Index: 7},
		},
		{
			name: "websocket creator with underscore",
			in:   "050409MY_UIhivehost:8080MY_UI_alice_3",
			want: entrance.ExecID{Creator: "MY_UI", Engine: "hive", Instance: "host:8080", User: "alice", Index: 3},
		},
		{
			name: "websocket max index",
			in:   "030409IDEhivehost:8080IDE_bob_9223372036854775807",
			want: entrance.ExecID{Creator: "IDE", Engine: "hive", Instance: "host:8080", User: "bob",
				Index: math.MaxInt64},
		},
		{
			name: "linkis 1.x cache group",
			in:   "exec_id003009appnode:9104IDE_alice_spark_Cache_12",
			want: entrance.ExecID{Creator: "IDE", Engine: "spark_Cache", App: "app", Instance: "node:9104",
				User: "alice", Index: 12, Linkis1x: true},
		},
		{
			name: "linkis 1.x creator and user only",
			in:   "exec_id003009appnode:9104IDE_alice_5",
			want: entrance.ExecID{Creator: "IDE", App: "app", Instance: "node:9104", User: "alice", Index: 5,
				Linkis1x: true},
		},
		{
			name: "linkis 1.x single part group",
			in:   "exec_id003009appnode:9104HA_5",
			want: entrance.ExecID{Creator: "HA", App: "app", Instance: "node:9104", Index: 5, Linkis1x: true},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := entrance.ParseExecID(tc.in)
			if err != nil {
				t.Fatalf("ParseExecID(%q) error: %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("ParseExecID(%q) = %+v; want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestFormatExecIDExample(t *testing.T) {
	got, err := entrance.FormatExecID("IDE", "hive", "bdpdwc010004:10087", "johnnwang", 21)
	if err != nil {
		t.Fatalf("FormatExecID error: %v", err)
	}
	if got != webSocketExample {
		t.Errorf("FormatExecID = %q; want %q", got, webSocketExample)
	}
}

func TestExecIDRoundTrip(t *testing.T) {
	long := strings.Repeat("x", 99)
	cases := []struct {
		name                            string
		creator, engine, instance, user string
		index                           int64
	}{
		{"example", "IDE", "hive", "bdpdwc010004:10087", "johnnwang", 21},
		{"index zero", "IDE", "shell", "127.0.0.1:9001", "alice", 0},
		{"max index", "IDE", "shell", "127.0.0.1:9001", "alice", math.MaxInt64},
		{"user with underscores", "IDE", "python", "[::1]:9001", "data_team_bot", 42},
		{"user ending in digits", "IDE", "python", "h:1", "user_12", 13},
		{"creator with underscore", "MY_APP", "spark", "h:1", "bob", 1},
		{"one byte fields", "a", "b", "c", "d", 9},
		{"99 byte fields", long, long, long, long, 1234567},
		{"non-ascii user", "IDE", "hive", "h:1", "jürgen", 5},
		{"user of digits", "IDE", "hive", "h:1", "007", 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := entrance.FormatExecID(tc.creator, tc.engine, tc.instance, tc.user, tc.index)
			if err != nil {
				t.Fatalf("FormatExecID error: %v", err)
			}
			got, err := entrance.ParseExecID(s)
			if err != nil {
				t.Fatalf("ParseExecID(%q) error: %v", s, err)
			}
			want := entrance.ExecID{Creator: tc.creator, Engine: tc.engine, Instance: tc.instance,
				User: tc.user, Index: tc.index}
			if got != want {
				t.Errorf("ParseExecID(%q) = %+v; want %+v", s, got, want)
			}
		})
	}
}

func TestFormatExecIDRejects(t *testing.T) {
	long := strings.Repeat("x", 100)
	cases := []struct {
		name                            string
		creator, engine, instance, user string
		index                           int64
		wantField                       string
	}{
		{"100 byte creator", long, "hive", "h:1", "u", 1, "creator"},
		{"100 byte engine", "IDE", long, "h:1", "u", 1, "engine"},
		{"100 byte instance", "IDE", "hive", long, "u", 1, "instance"},
		{"50 two-byte runes", strings.Repeat("é", 50), "hive", "h:1", "u", 1, "creator"},
		{"empty creator", "", "hive", "h:1", "u", 1, "creator"},
		{"empty engine", "IDE", "", "h:1", "u", 1, "engine"},
		{"empty instance", "IDE", "hive", "", "u", 1, "instance"},
		{"empty user", "IDE", "hive", "h:1", "", 1, "user"},
		{"invalid utf-8 engine", "IDE", "hi\xffve", "h:1", "u", 1, "engine"},
		{"invalid utf-8 user", "IDE", "hive", "h:1", "\xc3", 1, "user"},
		{"negative index", "IDE", "hive", "h:1", "u", -1, "index"},
		{"min int64 index", "IDE", "hive", "h:1", "u", math.MinInt64, "index"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := entrance.FormatExecID(tc.creator, tc.engine, tc.instance, tc.user, tc.index)
			if !errors.Is(err, entrance.ErrInvalidExecID) {
				t.Fatalf("FormatExecID error = %v; want one wrapping ErrInvalidExecID", err)
			}
			if s != "" {
				t.Errorf("FormatExecID returned %q with the error; want \"\"", s)
			}
			if !strings.Contains(err.Error(), tc.wantField) {
				t.Errorf("error %q does not name field %q", err, tc.wantField)
			}
		})
	}
}

// malformedExecIDs are inputs ParseExecID must reject, with a fragment of
// the reason the error must give. The fuzz test uses them as seeds.
var malformedExecIDs = []struct {
	name       string
	in         string
	wantReason string
}{
	{"empty", "", "too short"},
	{"prefix only", "exec_id", "too short"},
	{"1.x prefix and short lengths", "exec_id01802", "too short"},
	{"digits only", "123456789", "needs"},
	{"six zeros", "000000", "length is 00"},
	{"zero engine length", "030018IDEbdpdwc010004:10087IDE_johnnwang_21", "engine length is 00"},
	{"wrong length prefix", "030518IDEhivebdpdwc010004:10087IDE_johnnwang_21", "does not start with creator"},
	{"lengths beyond the string", "030499IDEhivebdpdwc010004:10087IDE_johnnwang_21", "needs"},
	{"non-digit length", "0a0418IDEhivebdpdwc010004:10087IDE_johnnwang_21", "creator length \"0a\""},
	{"signed length", "+30418IDEhivebdpdwc010004:10087IDE_johnnwang_21", "not two decimal digits"},
	{"missing short id", "030418IDEhivebdpdwc010004:10087", "short id after the fields is missing"},
	{"short id without index", "030418IDEhivebdpdwc010004:10087IDE_johnnwang", "no underscore"},
	{"short id is creator only", "030418IDEhivebdpdwc010004:10087IDE_", "no underscore"},
	{"empty user", "030418IDEhivebdpdwc010004:10087IDE__21", "user in short id"},
	{"index missing", "030418IDEhivebdpdwc010004:10087IDE_johnnwang_", "index after the last underscore is missing"},
	{"index not numeric", "030418IDEhivebdpdwc010004:10087IDE_johnnwang_2x", "not a decimal number"},
	{"index negative", "030418IDEhivebdpdwc010004:10087IDE_johnnwang_-21", "not a decimal number"},
	{"index with plus sign", "030418IDEhivebdpdwc010004:10087IDE_johnnwang_+21", "not a decimal number"},
	{"index leading zero", "030418IDEhivebdpdwc010004:10087IDE_johnnwang_021", "leading zero"},
	{"index overflows", "030418IDEhivebdpdwc010004:10087IDE_johnnwang_9223372036854775808", "overflows int64"},
	{"creator mismatch", "030418IDEhivebdpdwc010004:10087APP_johnnwang_21", "does not start with creator \"IDE\""},
	{"creator without underscore", "030418IDEhivebdpdwc010004:10087IDEjohnnwang_21", "does not start with creator"},
	{"garbage after lengths", "030418xIDEhivebdpdwc010004:10087IDE_johnnwang_21", "does not start with creator"},
	{"space in index", "030418IDEhivebdpdwc010004:10087IDE_johnnwang_2 1", "not a decimal number"},
	{"fullwidth digit lengths", "０３0418IDEhivebdpdwc010004:10087IDE_johnnwang_21", "not two decimal digits"},
	{"arabic-indic index", "030418IDEhivebdpdwc010004:10087IDE_johnnwang_٢١", "not a decimal number"},
	{"length counts runes", "030418IDÉhivebdpdwc010004:10087IDÉ_johnnwang_21", "creator \"ID\\xc3\" ends inside"},
	{"instance ends inside rune", "030418IDEhivebdpdwc010004:1008éIDE_johnnwang_21",
		"instance \"bdpdwc010004:1008\\xc3\" ends inside"},
	{"1.x app ends inside rune", "exec_id003009apénode:9104IDE_alice_5", "application name \"ap\\xc3\" ends inside"},
	{"invalid utf-8 user", "030418IDEhivebdpdwc010004:10087IDE_jo\xffhn_21", "not valid UTF-8"},
	{"1.x non-digit length", "exec_id0x8026linkis-cg-entrancebda01node03.oracle.cn:9104LINKISCLI_hadoop_shell_0",
		"application name length \"0x8\""},
	{"1.x zero app length", "exec_id000026bda01node03.oracle.cn:9104LINKISCLI_hadoop_shell_0", "length is 000"},
	{"1.x zero instance length", "exec_id018000linkis-cg-entranceLINKISCLI_hadoop_shell_0", "length is 000"},
	{"1.x lengths beyond the string", "exec_id018926linkis-cg-entrancebda01node03.oracle.cn:9104LINKISCLI_hadoop_shell_0",
		"needs"},
	{"1.x missing short id", "exec_id018026linkis-cg-entrancebda01node03.oracle.cn:9104",
		"short id after the fields is missing"},
	{"1.x short id without underscore", "exec_id018026linkis-cg-entrancebda01node03.oracle.cn:9104LINKISCLI",
		"no underscore"},
	{"1.x empty creator", "exec_id018026linkis-cg-entrancebda01node03.oracle.cn:9104_hadoop_shell_0",
		"creator in short id"},
	{"1.x index not numeric", "exec_id018026linkis-cg-entrancebda01node03.oracle.cn:9104LINKISCLI_hadoop_shell_x",
		"not a decimal number"},
	{"1.x index negative", "exec_id018026linkis-cg-entrancebda01node03.oracle.cn:9104LINKISCLI_hadoop_shell_-1",
		"not a decimal number"},
	{"1.x index missing", "exec_id018026linkis-cg-entrancebda01node03.oracle.cn:9104LINKISCLI_hadoop_shell_",
		"index after the last underscore is missing"},
	{"1.x invalid utf-8 short id", "exec_id003009appnode:9104IDE_\xff_0", "not valid UTF-8"},
	{"upper-case 1.x prefix", "EXEC_ID018026linkis-cg-entrancebda01node03.oracle.cn:9104LINKISCLI_hadoop_shell_0",
		"not two decimal digits"},
}

func TestParseExecIDRejects(t *testing.T) {
	for _, tc := range malformedExecIDs {
		t.Run(tc.name, func(t *testing.T) {
			got, err := entrance.ParseExecID(tc.in)
			if !errors.Is(err, entrance.ErrInvalidExecID) {
				t.Fatalf("ParseExecID(%q) = %+v, %v; want an error wrapping ErrInvalidExecID", tc.in, got, err)
			}
			if got != (entrance.ExecID{}) {
				t.Errorf("ParseExecID(%q) returned %+v with the error; want the zero ExecID", tc.in, got)
			}
			if !strings.Contains(err.Error(), tc.wantReason) {
				t.Errorf("error %q does not contain %q", err, tc.wantReason)
			}
		})
	}
}

func TestParseExecIDErrorQuotesInput(t *testing.T) {
	long := "030418IDEhivebdpdwc010004:10087IDE_johnnwang_x" + strings.Repeat("y", 10000)
	_, err := entrance.ParseExecID(long)
	if err == nil {
		t.Fatal("ParseExecID accepted a non-numeric index")
	}
	if !strings.Contains(err.Error(), `"030418IDEhive`) {
		t.Errorf("error %q does not quote the start of the input", err)
	}
	if len(err.Error()) > 1000 {
		t.Errorf("error is %d bytes long; want the quoted input capped", len(err.Error()))
	}
}

func TestExecIDAllocs(t *testing.T) {
	formatAllocs := testing.AllocsPerRun(100, func() {
		_, _ = entrance.FormatExecID("IDE", "hive", "bdpdwc010004:10087", "johnnwang", 21)
	})
	if formatAllocs != 1 {
		t.Errorf("FormatExecID allocates %v times per call; want 1", formatAllocs)
	}

	for _, in := range []string{webSocketExample, linkis1xExample} {
		parseAllocs := testing.AllocsPerRun(100, func() {
			_, _ = entrance.ParseExecID(in)
		})
		if parseAllocs != 0 {
			t.Errorf("ParseExecID(%q) allocates %v times per call; want 0", in, parseAllocs)
		}
	}
}

func FuzzParseExecID(f *testing.F) {
	f.Add(webSocketExample)
	f.Add(linkis1xExample)
	f.Add("030409IDEhivehost:8080IDE_a_b_c_7")
	f.Add("exec_id003009appnode:9104HA_5")
	for _, tc := range malformedExecIDs {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := entrance.ParseExecID(s)
		if err != nil {
			if !errors.Is(err, entrance.ErrInvalidExecID) {
				t.Fatalf("ParseExecID(%q) error %v does not wrap ErrInvalidExecID", s, err)
			}
			return
		}
		if id.Linkis1x {
			checkLinkis1xFields(t, s, id)
			return
		}
		again, err := entrance.FormatExecID(id.Creator, id.Engine, id.Instance, id.User, id.Index)
		if err != nil {
			t.Fatalf("ParseExecID(%q) = %+v, but FormatExecID rejects it: %v", s, id, err)
		}
		if again != s {
			t.Fatalf("ParseExecID(%q) = %+v, which formats to %q", s, id, again)
		}
	})
}

// checkLinkis1xFields checks that an accepted 1.x execID consists of the
// prefix, the two lengths, the application name and instance, and a short id
// that starts with the creator and ends with the index.
func checkLinkis1xFields(t *testing.T, s string, id entrance.ExecID) {
	t.Helper()
	head := fmt.Sprintf("exec_id%03d%03d%s%s", len(id.App), len(id.Instance), id.App, id.Instance)
	short, ok := strings.CutPrefix(s, head)
	if !ok {
		t.Fatalf("ParseExecID(%q) = %+v, which does not rebuild the head %q", s, id, head)
	}
	if !strings.HasPrefix(short, id.Creator+"_") {
		t.Errorf("short id %q does not start with creator %q", short, id.Creator)
	}
	if !strings.HasSuffix(short, fmt.Sprintf("_%d", id.Index)) {
		t.Errorf("short id %q does not end with index %d", short, id.Index)
	}
	if id.User != "" && !strings.Contains(short, "_"+id.User) {
		t.Errorf("short id %q does not contain user %q", short, id.User)
	}
}

func FuzzFormatExecID(f *testing.F) {
	f.Add("IDE", "hive", "bdpdwc010004:10087", "johnnwang", int64(21))
	f.Add("A_B", "x", "[::1]:1", "u_1_", int64(0))
	f.Add("", "x", "h", "u", int64(-1))
	f.Fuzz(func(t *testing.T, creator, engine, instance, user string, index int64) {
		s, err := entrance.FormatExecID(creator, engine, instance, user, index)
		if err != nil {
			if !errors.Is(err, entrance.ErrInvalidExecID) {
				t.Fatalf("FormatExecID error %v does not wrap ErrInvalidExecID", err)
			}
			return
		}
		id, err := entrance.ParseExecID(s)
		if err != nil {
			t.Fatalf("ParseExecID(%q) rejects a generated execID: %v", s, err)
		}
		want := entrance.ExecID{Creator: creator, Engine: engine, Instance: instance, User: user, Index: index}
		if id != want {
			t.Fatalf("ParseExecID(%q) = %+v; want %+v", s, id, want)
		}
	})
}

func BenchmarkFormatExecID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := entrance.FormatExecID("IDE", "hive", "bdpdwc010004:10087", "johnnwang", 21); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseExecID(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"websocket", webSocketExample},
		{"linkis1x", linkis1xExample},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := entrance.ParseExecID(bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func ExampleFormatExecID() {
	id, err := entrance.FormatExecID("IDE", "hive", "bdpdwc010004:10087", "johnnwang", 21)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(id)
	// Output: 030418IDEhivebdpdwc010004:10087IDE_johnnwang_21
}

func ExampleParseExecID() {
	id, err := entrance.ParseExecID("exec_id018026linkis-cg-entrancebda01node03.oracle.cn:9104LINKISCLI_hadoop_shell_0")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(id.Instance, id.Creator, id.User, id.Index)
	// Output: bda01node03.oracle.cn:9104 LINKISCLI hadoop 0
}
