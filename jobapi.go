package entrance

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
)

// target is the job a request is about: live in this server, or only in
// the store.
type target struct {
	live   *job // nil when the job is not running here
	rec    *JobRecord
	execID string
	taskID int64
}

// lookup resolves the {id} of a request, an execID or a taskID, and
// checks that the caller may see the job.
func (s *Server) lookup(ctx context.Context, r *request) (*target, *apiError) {
	taskID, execID, aerr := parseJobID(r.id)
	if aerr != nil {
		return nil, aerr
	}
	t := &target{taskID: taskID, live: s.liveJob(taskID)}
	if t.live != nil {
		t.rec, t.execID = t.live.rec, t.live.id.execID
	} else {
		rec, err := s.store.Job(ctx, taskID)
		if errors.Is(err, ErrNotFound) {
			return nil, jobNotFound(r.id)
		}
		if err != nil {
			s.logger.Error("read job failed", "taskID", taskID, "error", err)
			return nil, errorf(ReplyError, ErrCodeInternal, "read job %d: %v", taskID, err)
		}
		t.rec = rec
		t.execID, _ = FormatExecID(rec.Creator, rec.Engine, rec.Instance, rec.User, rec.TaskID)
	}
	if execID != "" && !sameJob(execID, t) {
		return nil, jobNotFound(r.id)
	}
	if t.rec.User != r.user && !s.isAdmin(r.user) {
		return nil, errorf(ReplyForbidden, ErrCodeForbidden,
			"permission denied: job %s belongs to another user", shorten(r.id, 200))
	}
	return t, nil
}

// finalLines returns the number of log lines of a job that has ended, and
// false while it runs.
func (t *target) finalLines() (int64, bool) {
	if t.live == nil {
		return t.rec.LogLines, true
	}
	t.live.pubMu.Lock()
	defer t.live.pubMu.Unlock()
	return t.live.stored.Load(), t.live.ended
}

// parseJobID reads an {id}: a taskID (all digits) or an execID.
func parseJobID(id string) (int64, string, *apiError) {
	if strings.TrimLeft(id, "-") != "" && strings.Trim(strings.TrimPrefix(id, "-"), "0123456789") == "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= 0 {
			return 0, "", errorf(ReplyError, ErrCodeInvalidParam,
				"invalid taskID %s: want an integer from 1 to %d", shorten(id, 40), int64(math.MaxInt64))
		}
		return n, "", nil
	}
	parsed, err := ParseExecID(id)
	if err != nil {
		return 0, "", errorf(ReplyError, ErrCodeInvalidParam,
			"invalid id %q: want an execID or a numeric taskID: %v", shorten(id, 200), err)
	}
	if parsed.Index <= 0 {
		return 0, "", jobNotFound(id)
	}
	return parsed.Index, id, nil
}

// sameJob reports whether an execID names the job t: exactly, for ids in
// this library's format, or by user and index for Linkis 1.x ids.
func sameJob(execID string, t *target) bool {
	if execID == t.execID {
		return true
	}
	parsed, err := ParseExecID(execID)
	return err == nil && parsed.Linkis1x && parsed.User == t.rec.User
}

func jobNotFound(id string) *apiError {
	return errorf(ReplyError, ErrCodeJobNotFound, "job %s not found", shorten(id, 200))
}

// statusReply is the data of a status reply.
type statusReply struct {
	ExecID  string `json:"execID"`
	TaskID  int64  `json:"taskID"`
	Status  Status `json:"status"`
	ErrCode int    `json:"errCode,omitempty"`
	ErrDesc string `json:"errDesc,omitempty"`
}

func (s *Server) handleStatus(ctx context.Context, r *request) (*Envelope, *apiError) {
	t, aerr := s.lookup(ctx, r)
	if aerr != nil {
		return nil, aerr
	}
	reply := statusReply{ExecID: t.execID, TaskID: t.taskID, Status: t.rec.Status,
		ErrCode: t.rec.ErrCode, ErrDesc: t.rec.ErrDesc}
	if t.live != nil {
		reply.Status, reply.ErrCode, reply.ErrDesc = t.live.snapshotStatus()
		s.subscribeAfterReply(r, t.live, 0, reply.Status)
	}
	return ok("OK", reply), nil
}

// progressReply is the data of a progress reply.
type progressReply struct {
	ExecID       string         `json:"execID"`
	TaskID       int64          `json:"taskID"`
	Progress     float64        `json:"progress"`
	ProgressInfo []ProgressInfo `json:"progressInfo"`
}

func (s *Server) handleProgress(ctx context.Context, r *request) (*Envelope, *apiError) {
	t, aerr := s.lookup(ctx, r)
	if aerr != nil {
		return nil, aerr
	}
	reply := progressReply{ExecID: t.execID, TaskID: t.taskID,
		Progress: t.rec.Progress, ProgressInfo: t.rec.ProgressInfo}
	if t.live != nil {
		reply.Progress, reply.ProgressInfo = t.live.progress.snapshot()
		s.subscribeAfterReply(r, t.live, 0, "")
	}
	if reply.ProgressInfo == nil {
		reply.ProgressInfo = []ProgressInfo{}
	}
	return ok("OK", reply), nil
}

// logReply is the data of a log reply.
type logReply struct {
	ExecID   string    `json:"execID"`
	TaskID   int64     `json:"taskID"`
	Log      [4]string `json:"log"`
	FromLine int64     `json:"fromLine"`
}

func (s *Server) handleLog(ctx context.Context, r *request) (*Envelope, *apiError) {
	t, aerr := s.lookup(ctx, r)
	if aerr != nil {
		return nil, aerr
	}
	from, aerr := r.params.integer("fromLine", 1)
	if aerr != nil {
		return nil, aerr
	}
	size, aerr := r.params.integer("size", 100)
	if aerr != nil {
		return nil, aerr
	}
	if from < 0 {
		return nil, errorf(ReplyError, ErrCodeInvalidParam,
			"invalid parameter fromLine %d: want a line number from 1 (0 means 1)", from)
	}
	if size < -1 {
		return nil, errorf(ReplyError, ErrCodeInvalidParam,
			"invalid parameter size %d: want a line count, or -1 for all lines", size)
	}
	from = max(from, 1)
	if size == 0 {
		size = 100
	}
	lines, err := s.store.ReadLog(ctx, t.taskID, from, int(size))
	if err != nil {
		s.logger.Error("read log failed", "taskID", t.taskID, "error", err)
		return nil, errorf(ReplyError, ErrCodeInternal, "read log of job %d: %v", t.taskID, err)
	}
	reply := logReply{ExecID: t.execID, TaskID: t.taskID, Log: joinLog(lines), FromLine: from}
	if len(lines) > 0 {
		reply.FromLine = lines[len(lines)-1].Number + 1
	} else if last, ended := t.finalLines(); ended {
		// Past the end of a job that has ended: point at the line after
		// its last. A running job is left at from, because the store may
		// already hold lines that the job has not counted as pushed yet,
		// and a client that read them must not be sent back.
		reply.FromLine = min(from, last+1)
	}
	if t.live != nil {
		s.subscribeAfterReply(r, t.live, reply.FromLine, "")
	}
	return ok("OK", reply), nil
}

// joinLog builds the four strings of a log array: error, warn and info
// lines, then all lines.
func joinLog(lines []LogLine) [4]string {
	var parts [4]strings.Builder
	for _, l := range lines {
		for _, i := range [...]int{int(2 - l.Level), 3} {
			if parts[i].Len() > 0 {
				parts[i].WriteByte('\n')
			}
			parts[i].WriteString(l.Text)
		}
	}
	return [4]string{parts[0].String(), parts[1].String(), parts[2].String(), parts[3].String()}
}

// subscribeAfterReply subscribes the requesting connection to the job's
// pushes with the reply; seen is the status the reply carries, if any.
func (s *Server) subscribeAfterReply(r *request, j *job, next int64, seen Status) {
	if r.conn == nil {
		return
	}
	conn := r.conn
	r.afterReply = func() { j.subscribe(conn, next, seen) }
}

// killReply is the data of a kill reply.
type killReply struct {
	ExecID string `json:"execID"`
	TaskID int64  `json:"taskID"`
}

func (s *Server) handleKill(ctx context.Context, r *request) (*Envelope, *apiError) {
	t, aerr := s.lookup(ctx, r)
	if aerr != nil {
		return nil, aerr
	}
	reply := killReply{ExecID: t.execID, TaskID: t.taskID}
	if t.live == nil {
		return ok("job already ended with status "+string(t.rec.Status), reply), nil
	}
	t.live.kill()
	s.logger.Info("job kill requested", "execID", t.execID, "taskID", t.taskID, "user", r.user)
	return ok("kill requested", reply), nil
}

func (s *Server) handlePause(ctx context.Context, r *request) (*Envelope, *apiError) {
	if _, aerr := s.lookup(ctx, r); aerr != nil {
		return nil, aerr
	}
	return nil, errorf(ReplyError, ErrCodeNotSupported,
		"pause is not supported: kill the job and submit it again")
}
