package entrance

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// submission is a validated execute or submit request.
type submission struct {
	engine  string
	creator string
	user    string
	code    string
	runType string
	params  Params
	source  json.RawMessage
	timeout time.Duration // 0: the server's default
}

// executionContent and labels are the Linkis 1.x shape of a submission.
type executionContent struct {
	Code    string `json:"code"`
	RunType string `json:"runType"`
}

type submitLabels struct {
	EngineType  string `json:"engineType"`
	UserCreator string `json:"userCreator"`
	// JobRunningTimeout is the job's time limit in seconds; Linkis
	// clients send it as a number or a string.
	JobRunningTimeout json.RawMessage `json:"jobRunningTimeout"`
}

// parseSubmission reads the old and the 1.x request shapes into one
// submission and validates it.
func (s *Server) parseSubmission(p params, user string) (*submission, *apiError) {
	sub := &submission{user: user, creator: "IDE"}
	var aerr *apiError
	str := func(name string, dst *string) {
		if aerr == nil {
			var v string
			v, aerr = p.str(name)
			if v != "" {
				*dst = v
			}
		}
	}
	str("executeApplicationName", &sub.engine)
	str("requestApplicationName", &sub.creator)
	str("executionCode", &sub.code)
	str("runType", &sub.runType)
	var executeUser string
	str("executeUser", &executeUser)
	if aerr != nil {
		return nil, aerr
	}
	if aerr = s.readLinkis1x(p, sub, &executeUser); aerr != nil {
		return nil, aerr
	}
	if aerr = p.decode("params", &sub.params); aerr != nil {
		return nil, aerr
	}
	if p.has("source") {
		sub.source = p.raw("source")
	}

	if executeUser != "" && executeUser != user {
		if !s.isAdmin(user) {
			return nil, errorf(ReplyForbidden, ErrCodeForbidden,
				"user %q cannot submit jobs as %q", shorten(user, 100), shorten(executeUser, 100))
		}
		// An admin submits on behalf of executeUser, who owns the job.
		sub.user = executeUser
	}
	return sub, s.validateSubmission(sub)
}

// readLinkis1x maps executionContent and labels onto the submission.
func (s *Server) readLinkis1x(p params, sub *submission, executeUser *string) *apiError {
	var content executionContent
	var labels submitLabels
	if aerr := p.decode("executionContent", &content); aerr != nil {
		return aerr
	}
	if aerr := p.decode("labels", &labels); aerr != nil {
		return aerr
	}
	if sub.code == "" {
		sub.code = content.Code
	}
	if sub.runType == "" {
		sub.runType = content.RunType
	}
	if sub.engine == "" && labels.EngineType != "" {
		sub.engine = s.engineFromLabel(labels.EngineType)
	}
	if u, creator, found := strings.Cut(labels.UserCreator, "-"); found {
		if *executeUser == "" {
			*executeUser = u
		}
		if creator != "" && !p.has("requestApplicationName") {
			sub.creator = creator
		}
	}
	if len(labels.JobRunningTimeout) > 0 {
		secs, aerr := params{object: map[string]json.RawMessage{
			"jobRunningTimeout": labels.JobRunningTimeout}}.integer("jobRunningTimeout", 0)
		if aerr != nil {
			return aerr
		}
		if secs < 0 {
			return errorf(ReplyError, ErrCodeInvalidParam,
				"invalid label jobRunningTimeout %d: want seconds >= 0", secs)
		}
		sub.timeout = time.Duration(secs) * time.Second
	}
	return nil
}

// engineFromLabel maps a Linkis engineType label such as "spark-2.4.3" to
// a registered engine name: the label itself, or the label without its
// version suffix.
func (s *Server) engineFromLabel(label string) string {
	if _, ok := s.engines[label]; ok {
		return label
	}
	if i := strings.LastIndexByte(label, '-'); i > 0 && i+1 < len(label) &&
		label[i+1] >= '0' && label[i+1] <= '9' {
		return label[:i]
	}
	return label
}

func (s *Server) validateSubmission(sub *submission) *apiError {
	if strings.TrimSpace(sub.code) == "" {
		return errorf(ReplyError, ErrCodeCodeEmpty,
			"executionCode is missing or blank: send the code to run")
	}
	if sub.engine == "" {
		return errorf(ReplyError, ErrCodeEngineUnknown,
			"executeApplicationName is missing: choose one of %s", s.engineList())
	}
	engine, found := s.engines[sub.engine]
	if !found {
		return errorf(ReplyError, ErrCodeEngineUnknown,
			"engine %q is not available: this server runs %s", shorten(sub.engine, 100), s.engineList())
	}
	if sub.runType == "" {
		if rt, isRunTyper := engine.(RunTyper); isRunTyper {
			sub.runType = rt.DefaultRunType()
		}
	}
	if _, err := FormatExecID(sub.creator, sub.engine, s.instance, sub.user, 0); err != nil {
		return errorf(ReplyError, ErrCodeInvalidParam, "cannot build an execID: %v", err)
	}
	return nil
}

func (s *Server) engineList() string {
	names := make([]string, 0, len(s.engines))
	for name := range s.engines {
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// executeReply is the data of an accepted submission.
type executeReply struct {
	ExecID string `json:"execID"`
	TaskID int64  `json:"taskID"`
	Tag    string `json:"websocketTag,omitempty"`
}

// handleExecute serves entrance/execute and entrance/submit: it stores the
// job, replies with its ids, and then starts it.
func (s *Server) handleExecute(ctx context.Context, r *request) (*Envelope, *apiError) {
	if s.isClosing() {
		return nil, errShuttingDown()
	}
	if aerr := s.submits.allow(r.user); aerr != nil {
		return nil, aerr
	}
	sub, aerr := s.parseSubmission(r.params, r.user)
	if aerr != nil {
		return nil, aerr
	}
	j, aerr := s.createJob(ctx, sub, r.tag)
	if aerr != nil {
		return nil, aerr
	}
	r.afterReply = func() {
		if r.conn != nil {
			j.subscribe(r.conn, 1, "")
		}
		s.startJob(j)
	}
	return ok("execution request accepted",
		executeReply{ExecID: j.id.execID, TaskID: j.id.taskID, Tag: r.tag}), nil
}

// createJob checks the limits and stores a new job.
func (s *Server) createJob(ctx context.Context, sub *submission, tag string) (*job, *apiError) {
	if s.isClosing() {
		return nil, errShuttingDown()
	}
	if aerr := s.admit(sub.user); aerr != nil {
		return nil, aerr
	}
	now := time.Now()
	rec := &JobRecord{
		Instance: s.instance,
		User:     sub.user,
		Creator:  sub.creator,
		Engine:   sub.engine,
		RunType:  sub.runType,
		Code:     sub.code,
		Params:   sub.params,
		Source:   sub.source,
		Tag:      tag,
		Status:   StatusInited,
		Created:  now,
		Updated:  now,
	}
	taskID, err := s.store.CreateJob(ctx, rec)
	if err != nil {
		s.release(sub.user)
		s.logger.Error("store job failed", "user", sub.user, "error", err)
		return nil, errorf(ReplyError, ErrCodeInternal, "store job: %v", err)
	}
	rec.TaskID = taskID
	j, err := s.newJob(rec, sub.timeout)
	if err != nil {
		s.release(sub.user)
		return nil, errorf(ReplyError, ErrCodeInternal, "%v", fmt.Errorf("build job: %w", err))
	}
	return j, nil
}
