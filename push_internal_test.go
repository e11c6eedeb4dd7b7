package entrance

import (
	"bytes"
	"encoding/json"
	"testing"
)

// jsonJobPush is the reference encoding of a job push: the Envelope of
// data through encoding/json.
func jsonJobPush(t testing.TB, id pushIdentity, action string, data jobPush) []byte {
	t.Helper()
	data.ExecID, data.TaskID, data.Tag = id.execID, id.taskID, id.tag
	b, err := json.Marshal(&Envelope{
		Method:  jobMethod(id.execID, action),
		Message: action,
		Tag:     id.tag,
		Data:    &data,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJobPushMatchesJSON(t *testing.T) {
	id := pushIdentity{execID: "030418IDEshell127.0.0.1:9001IDE_alice_7", taskID: 7}
	tagged := id
	tagged.tag = `tab "1" <&>`
	size := 3
	zero := 0
	cases := []struct {
		name   string
		id     pushIdentity
		action string
		data   jobPush
	}{
		{"running", id, "status", jobPush{Status: StatusRunning}},
		{"failed", id, "status", jobPush{Status: StatusFailed, ErrCode: 21304,
			ErrDesc: "exit status 2: \"no\" <such> file\n\u2028\xff"}},
		{"tagged", tagged, "status", jobPush{Status: StatusSucceed}},
		{"waiting size", tagged, "waitingSize", jobPush{WaitingSize: &size}},
		{"waiting size zero", id, "waitingSize", jobPush{WaitingSize: &zero}},
		{"negative errCode", id, "status", jobPush{Status: StatusFailed, ErrCode: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data
			got := encodeJobPush(tc.id, tc.action, &data).Data
			want := jsonJobPush(t, tc.id, tc.action, tc.data)
			if !bytes.Equal(got, want) {
				t.Errorf("push\n got %s\nwant %s", got, want)
			}
		})
	}
}

// FuzzAppendJSONString checks the hand-written string encoder of pushes
// against encoding/json.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote \" and \\", "<tag>&", "\t\r\n\x00\x1f",
		"\u2028\u2029", "caf\u00e9 \U0001F600", "\xff\xfe", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s; want %s", s, got, want)
		}
	})
}

func BenchmarkEncodeStatusPush(b *testing.B) {
	id := pushIdentity{execID: "030418IDEshell127.0.0.1:9001IDE_alice_7", taskID: 7, tag: "tab-1"}
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeJobPush(id, "status", &jobPush{Status: StatusRunning})
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			jsonJobPush(b, id, "status", jobPush{Status: StatusRunning})
		}
	})
}
