package entrance

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// The seeds below run as ordinary tests in go test; go test -fuzz
// explores from them.

var frameSeeds = []string{
	``,
	`   `,
	`null`,
	`[1,2]`,
	`"text"`,
	`{"method": `,
	`{}`,
	`{"data":{}}`,
	`{"method":5,"data":{}}`,
	`{"method":"/api/rest_j/v1/entrance/execute","data":"x"}`,
	`{"method":"/api/rest_j/v1/entrance/execute","websocketTag":7,"data":{}}`,
	`{"method":"/api/rest_j/v1/entrance/execute","data":{"websocketTag":"tab","executionCode":"ls"}}`,
	`{"method":"/api/rest_j/v1/entrance/1/log","websocketTag":"t","data":{"fromLine":3,"size":-1}}`,
	`{"method":"/api/rest_j/v1/entrance/1/log","data":null}`,
	`{"method":"\u0000","data":{"a":{"b":[1,{"c":null}]}}}`,
	"{\"method\":\"m\",\"data\":{\"k\":\"\xff\xfe\"}}",
}

// FuzzParseFrame checks that every frame is either a request with a method
// or an error whose reply encodes as one JSON object.
func FuzzParseFrame(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, aerr := parseFrame(data)
		if req == nil {
			t.Fatal("parseFrame returned a nil request")
		}
		if aerr != nil {
			if aerr.status == ReplyOK || aerr.code == 0 || aerr.desc == "" {
				t.Fatalf("error without status, code or message: %+v", aerr)
			}
			reply := encodeEnvelope(errorEnvelope(req.method, req.tag, aerr))
			if !json.Valid(reply) {
				t.Fatalf("error reply is not JSON: %s", reply)
			}
			return
		}
		if req.method == "" {
			t.Fatal("request accepted without a method")
		}
		var fr frameRequest
		if err := json.Unmarshal(data, &fr); err != nil {
			t.Fatalf("accepted a frame that does not decode: %v", err)
		}
		if fr.Method != req.method {
			t.Fatalf("method %q, frame has %q", req.method, fr.Method)
		}
	})
}

// noopEngine runs nothing; parseSubmission only needs engine names.
type noopEngine struct{}

func (noopEngine) Run(context.Context, *Job, Output) error { return nil }
func (noopEngine) DefaultRunType() string                  { return "sh" }

var submissionSeeds = []string{
	`{}`,
	`{"executeApplicationName":"shell","executionCode":"ls"}`,
	`{"executeApplicationName":"shell","executionCode":"  "}`,
	`{"executeApplicationName":"spark","executionCode":"show tables","runType":"sql"}`,
	`{"executeApplicationName":"shell","executionCode":"ls","executeUser":"bob"}`,
	`{"executeApplicationName":"shell","executionCode":"ls","params":"x"}`,
	`{"executeApplicationName":"shell","executionCode":"ls","params":{"variable":{"a":"1"},` +
		`"configuration":{"startup":{"k":1},"runtime":{"k":[1]},"special":{"k":null}}}}`,
	`{"executeApplicationName":"shell","executionCode":"ls","source":{"scriptPath":"/a.sh"}}`,
	`{"executionContent":{"code":"ls","runType":"sh"},` +
		`"labels":{"engineType":"shell-1.0","userCreator":"alice-IDE","jobRunningTimeout":5}}`,
	`{"executionContent":{"code":"ls"},"labels":{"engineType":"shell","jobRunningTimeout":"7"}}`,
	`{"executionContent":{"code":"ls"},"labels":{"engineType":"shell","jobRunningTimeout":-1}}`,
	`{"executionContent":{"code":"ls"},"labels":{"engineType":"shell","jobRunningTimeout":1e30}}`,
	`{"executionContent":"x"}`,
	`{"labels":{"userCreator":"-"},"executionCode":"ls","executeApplicationName":"shell"}`,
	`{"executeApplicationName":"shell","executionCode":"ls","requestApplicationName":"` +
		strings.Repeat("c", 120) + `"}`,
}

// FuzzParseSubmission checks that a submission is either valid, for a
// registered engine with code and an execID that can be built, or
// rejected with an error reply.
func FuzzParseSubmission(f *testing.F) {
	for _, s := range submissionSeeds {
		f.Add([]byte(s), "alice")
	}
	f.Add([]byte(submissionSeeds[4]), "root")
	s := &Server{
		engines:  map[string]Engine{"shell": noopEngine{}, "sqlite": noopEngine{}},
		admins:   map[string]bool{"root": true},
		instance: "127.0.0.1:9001",
	}
	f.Fuzz(func(t *testing.T, body []byte, user string) {
		p, aerr := objectParams(body)
		if aerr != nil {
			return
		}
		sub, aerr := s.parseSubmission(p, user)
		if aerr != nil {
			if aerr.status == ReplyOK || aerr.code == 0 {
				t.Fatalf("error without status or code: %+v", aerr)
			}
			if reply := encodeEnvelope(errorEnvelope("m", "", aerr)); !json.Valid(reply) {
				t.Fatalf("error reply is not JSON: %s", reply)
			}
			return
		}
		if _, ok := s.engines[sub.engine]; !ok {
			t.Fatalf("accepted engine %q", sub.engine)
		}
		if strings.TrimSpace(sub.code) == "" {
			t.Fatal("accepted blank code")
		}
		if sub.timeout < 0 {
			t.Fatalf("accepted a negative time limit %v", sub.timeout)
		}
		if sub.user != user && !s.isAdmin(user) {
			t.Fatalf("submission runs as %q, request came from %q", sub.user, user)
		}
		if _, err := FormatExecID(sub.creator, sub.engine, s.instance, sub.user, 1); err != nil {
			t.Fatalf("accepted a submission whose execID cannot be built: %v", err)
		}
	})
}
