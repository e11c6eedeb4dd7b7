package entrance

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// methodPrefix starts every method path.
const methodPrefix = "/api/rest_j/v1/"

// jobMethod returns the method of a push or request about a job, e.g.
// /api/rest_j/v1/entrance/<execID>/log.
func jobMethod(execID, action string) string {
	return methodPrefix + "entrance/" + execID + "/" + action
}

// pushIdentity is the job identity that every push of a job carries.
type pushIdentity struct {
	execID string
	taskID int64
	tag    string
}

// encodeLogPush encodes the log push of lines, which must be numbered
// consecutively. The log array holds the error, warn and info lines and
// then all lines, each joined by newlines.
func encodeLogPush(id pushIdentity, lines []LogLine) *Frame {
	size := 160 + 2*len(id.execID) + 2*len(id.tag)
	for _, l := range lines {
		size += 2*len(l.Text) + 4
	}
	b := make([]byte, 0, size)
	b = append(b, `{"method":`...)
	b = appendJSONString(b, jobMethod(id.execID, "log"))
	b = append(b, `,"status":0,"message":"log"`...)
	b = appendTag(b, id.tag)
	b = append(b, `,"data":{"execID":`...)
	b = appendJSONString(b, id.execID)
	b = append(b, `,"taskID":`...)
	b = strconv.AppendInt(b, id.taskID, 10)
	b = append(b, `,"log":[`...)
	for _, level := range [...]Level{LevelError, LevelWarn, LevelInfo} {
		b = appendJoinedLines(b, lines, level, true)
		b = append(b, ',')
	}
	b = appendJoinedLines(b, lines, 0, false)
	end := int64(1)
	first := int64(0)
	if len(lines) > 0 {
		first = lines[0].Number
		end = lines[len(lines)-1].Number + 1
	}
	b = append(b, `],"fromLine":`...)
	b = strconv.AppendInt(b, end, 10)
	b = appendTag(b, id.tag)
	b = append(b, "}}"...)
	return &Frame{Data: b, TaskID: id.taskID, FirstLine: first, EndLine: end}
}

// appendJoinedLines appends a JSON string of the lines of one level (or
// of all lines when filter is false), joined by newlines.
func appendJoinedLines(b []byte, lines []LogLine, level Level, filter bool) []byte {
	b = append(b, '"')
	n := 0
	for _, l := range lines {
		if filter && l.Level != level {
			continue
		}
		if n > 0 {
			b = append(b, `\n`...)
		}
		b = appendJSONStringBody(b, l.Text)
		n++
	}
	return append(b, '"')
}

func appendTag(b []byte, tag string) []byte {
	if tag == "" {
		return b
	}
	b = append(b, `,"websocketTag":`...)
	return appendJSONString(b, tag)
}

// jobPush is the data of a status, progress or waitingSize push.
type jobPush struct {
	ExecID       string         `json:"execID"`
	TaskID       int64          `json:"taskID"`
	Status       Status         `json:"status,omitempty"`
	ErrCode      int            `json:"errCode,omitempty"`
	ErrDesc      string         `json:"errDesc,omitempty"`
	Progress     *float64       `json:"progress,omitempty"`
	ProgressInfo []ProgressInfo `json:"progressInfo,omitempty"`
	WaitingSize  *int           `json:"waitingSize,omitempty"`
	Tag          string         `json:"websocketTag,omitempty"`
}

// encodeJobPush encodes a push whose message is action: "status",
// "progress" or "waitingSize".
func encodeJobPush(id pushIdentity, action string, data *jobPush) *Frame {
	data.ExecID, data.TaskID, data.Tag = id.execID, id.taskID, id.tag
	if action != "progress" && data.Progress == nil && data.ProgressInfo == nil {
		return &Frame{Data: appendJobPush(nil, action, data), TaskID: id.taskID}
	}
	if action == "progress" && data.ProgressInfo == nil {
		data.ProgressInfo = []ProgressInfo{}
	}
	b, _ := json.Marshal(&Envelope{
		Method:  jobMethod(id.execID, action),
		Message: action,
		Tag:     id.tag,
		Data:    data,
	})
	return &Frame{Data: b, TaskID: id.taskID}
}

// appendJobPush appends a status or waitingSize push, byte for byte as
// encoding/json encodes the Envelope of data. encoding/json takes about
// 2.5 times as long (BenchmarkEncodeStatusPush), and every job pushes at
// least four statuses.
func appendJobPush(b []byte, action string, data *jobPush) []byte {
	b = slices.Grow(b, 160+2*len(data.ExecID)+2*len(data.Tag)+2*len(data.ErrDesc))
	b = append(b, `{"method":"`+methodPrefix+`entrance/`...)
	b = appendJSONStringBody(b, data.ExecID)
	b = append(b, '/')
	b = appendJSONStringBody(b, action)
	b = append(b, `","status":0,"message":`...)
	b = appendJSONString(b, action)
	b = appendTag(b, data.Tag)

	b = append(b, `,"data":{"execID":`...)
	b = appendJSONString(b, data.ExecID)
	b = append(b, `,"taskID":`...)
	b = strconv.AppendInt(b, data.TaskID, 10)
	if data.Status != "" {
		b = append(b, `,"status":`...)
		b = appendJSONString(b, string(data.Status))
	}
	if data.ErrCode != 0 {
		b = append(b, `,"errCode":`...)
		b = strconv.AppendInt(b, int64(data.ErrCode), 10)
	}
	if data.ErrDesc != "" {
		b = append(b, `,"errDesc":`...)
		b = appendJSONString(b, data.ErrDesc)
	}
	if data.WaitingSize != nil {
		b = append(b, `,"waitingSize":`...)
		b = strconv.AppendInt(b, int64(*data.WaitingSize), 10)
	}

	b = appendTag(b, data.Tag)
	return append(b, "}}"...)
}

// appendJSONString appends s as a JSON string, with the escapes that
// encoding/json of Go 1.22 and later uses. Invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONStringBody(b, s)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

func appendJSONStringBody(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
