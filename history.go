package entrance

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// taskView is a job as jobhistory returns it, with Linkis's field names.
type taskView struct {
	TaskID         int64   `json:"taskID"`
	ExecID         string  `json:"execId"`
	UmUser         string  `json:"umUser"`
	ExecuteUser    string  `json:"executeUser"`
	ExecutionCode  string  `json:"executionCode"`
	Status         Status  `json:"status"`
	Progress       float64 `json:"progress"`
	ErrCode        int     `json:"errCode"`
	ErrDesc        string  `json:"errDesc"`
	Engine         string  `json:"executeApplicationName"`
	Creator        string  `json:"requestApplicationName"`
	RunType        string  `json:"runType"`
	ParamsJSON     string  `json:"paramsJson"`
	SourceJSON     string  `json:"sourceJson"`
	ResultLocation string  `json:"resultLocation"`
	CreatedTime    int64   `json:"createdTime"`
	UpdatedTime    int64   `json:"updatedTime"`
	CostTime       int64   `json:"costTime"`
}

// viewTask builds the jobhistory view of a record. Times are
// milliseconds since the epoch; costTime is the running time so far.
func viewTask(rec *JobRecord) taskView {
	execID, _ := FormatExecID(rec.Creator, rec.Engine, rec.Instance, rec.User, rec.TaskID)
	paramsJSON, _ := json.Marshal(rec.Params)
	v := taskView{
		TaskID: rec.TaskID, ExecID: execID, UmUser: rec.User, ExecuteUser: rec.User,
		ExecutionCode: rec.Code, Status: rec.Status, Progress: rec.Progress,
		ErrCode: rec.ErrCode, ErrDesc: rec.ErrDesc, Engine: rec.Engine, Creator: rec.Creator,
		RunType: rec.RunType, ParamsJSON: string(paramsJSON), SourceJSON: string(rec.Source),
		ResultLocation: resultLocation(rec.TaskID),
		CreatedTime:    millis(rec.Created), UpdatedTime: millis(rec.Updated),
	}
	if !rec.Started.IsZero() {
		end := rec.Ended
		if end.IsZero() {
			end = time.Now()
		}
		v.CostTime = end.Sub(rec.Started).Milliseconds()
	}
	return v
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func (s *Server) handleHistoryGet(ctx context.Context, r *request) (*Envelope, *apiError) {
	taskID, err := strconv.ParseInt(r.id, 10, 64)
	if err != nil || taskID <= 0 {
		return nil, errorf(ReplyError, ErrCodeInvalidParam,
			"invalid taskID %q: want a positive integer", shorten(r.id, 100))
	}
	t, aerr := s.lookup(ctx, r)
	if aerr != nil {
		return nil, aerr
	}
	rec := t.rec
	if t.live != nil {
		// The live job's record holds the submission; the store holds
		// the current status and progress.
		if stored, err := s.store.Job(ctx, taskID); err == nil {
			rec = stored
		}
	}
	return ok("OK", map[string]any{"task": viewTask(rec)}), nil
}

// Paging bounds of jobhistory/list.
const (
	defaultHistoryPage = 20
	maxHistoryPage     = 1000
)

func (s *Server) handleHistoryList(ctx context.Context, r *request) (*Envelope, *apiError) {
	f, aerr := s.historyFilter(r)
	if aerr != nil {
		return nil, aerr
	}
	recs, total, err := s.store.ListJobs(ctx, f)
	if err != nil {
		s.logger.Error("list jobs failed", "user", r.user, "error", err)
		return nil, errorf(ReplyError, ErrCodeInternal, "list jobs: %v", err)
	}
	tasks := make([]taskView, len(recs))
	for i, rec := range recs {
		tasks[i] = viewTask(rec)
	}
	return ok("OK", map[string]any{"tasks": tasks, "totalPage": total}), nil
}

// historyFilter reads the parameters of jobhistory/list. A user gets only
// their own jobs. An admin gets every user's jobs, or one user's with
// executeUser.
func (s *Server) historyFilter(r *request) (JobFilter, *apiError) {
	p := r.params
	var f JobFilter
	status, aerr := p.str("status")
	if aerr != nil {
		return f, aerr
	}
	if f.Status = Status(status); status != "" && !f.Status.Valid() {
		return f, errorf(ReplyError, ErrCodeInvalidParam,
			"invalid parameter status %q: want Inited, Scheduled, Running, Succeed, Failed, Cancelled or Timeout",
			shorten(status, 40))
	}
	if f.Engine, aerr = p.str("executeApplicationName"); aerr != nil {
		return f, aerr
	}
	if f.User, aerr = p.str("executeUser"); aerr != nil {
		return f, aerr
	}
	if !s.isAdmin(r.user) {
		if f.User != "" && f.User != r.user {
			return f, errorf(ReplyForbidden, ErrCodeForbidden,
				"permission denied: cannot list the jobs of user %q", shorten(f.User, 100))
		}
		f.User = r.user
	}
	if aerr = readDateRange(p, &f); aerr != nil {
		return f, aerr
	}
	page, size, aerr := readPage(p, "pageNow", "pageSize", defaultHistoryPage, maxHistoryPage)
	if aerr != nil {
		return f, aerr
	}
	f.Offset, f.Limit = (page-1)*size, size
	return f, nil
}

func readDateRange(p params, f *JobFilter) *apiError {
	start, aerr := p.integer("startDate", 0)
	if aerr != nil {
		return aerr
	}
	end, aerr := p.integer("endDate", 0)
	if aerr != nil {
		return aerr
	}
	if start < 0 || end < 0 {
		return errorf(ReplyError, ErrCodeInvalidParam,
			"invalid date range %d..%d: want milliseconds since the epoch", start, end)
	}
	if start > 0 && end > 0 && start > end {
		return errorf(ReplyError, ErrCodeInvalidParam,
			"invalid date range: startDate %d is after endDate %d", start, end)
	}
	if start > 0 {
		f.From = time.UnixMilli(start)
	}
	if end > 0 {
		f.To = time.UnixMilli(end)
	}
	return nil
}

// readPage reads a page number (from 1) and a page size (1 to maxSize).
func readPage(p params, pageName, sizeName string, defSize, maxSize int64) (int64, int64, *apiError) {
	page, aerr := p.integer(pageName, 1)
	if aerr != nil {
		return 0, 0, aerr
	}
	size, aerr := p.integer(sizeName, defSize)
	if aerr != nil {
		return 0, 0, aerr
	}
	if page < 1 {
		return 0, 0, errorf(ReplyError, ErrCodeInvalidParam,
			"invalid parameter %s %d: pages are numbered from 1", pageName, page)
	}
	if size < 1 || size > maxSize {
		return 0, 0, errorf(ReplyError, ErrCodeInvalidParam,
			"invalid parameter %s %d: want 1 to %d", sizeName, size, maxSize)
	}
	if page-1 > math.MaxInt64/size {
		// The offset (page-1)*size would overflow.
		return 0, 0, errorf(ReplyError, ErrCodeInvalidParam,
			"invalid parameter %s %d: too large for %s %d", pageName, page, sizeName, size)
	}
	return page, size, nil
}

// maxKillJobs is the largest number of jobs one killJobs request may name.
const maxKillJobs = 1000

// handleKillJobs kills several jobs and returns one envelope per id in
// data.messages. idList and taskIDList are parallel lists, as Linkis
// clients send them: the i-th job is idList[i], or taskIDList[i] when
// idList is shorter. Each envelope is what entrance/{id}/kill returns for
// that id, so one job's error does not fail the others.
func (s *Server) handleKillJobs(ctx context.Context, r *request) (*Envelope, *apiError) {
	ids, aerr := killJobIDs(r.params)
	if aerr != nil {
		return nil, aerr
	}
	messages := make([]*Envelope, 0, len(ids))
	for _, id := range ids {
		sub := &request{method: jobMethod(id, "kill"), id: id, user: r.user, tag: r.tag}
		env, aerr := s.handleKill(ctx, sub)
		if aerr != nil {
			env = errorEnvelope(sub.method, r.tag, aerr)
		}
		env.Method, env.Tag = sub.method, r.tag
		messages = append(messages, env)
	}
	return ok("kill requested", map[string]any{"messages": messages}), nil
}

// killJobIDs reads the ids of a killJobs request.
func killJobIDs(p params) ([]string, *apiError) {
	var idList []jobIDItem
	var taskIDList []jobIDItem
	if aerr := p.decode("idList", &idList); aerr != nil {
		return nil, aerr
	}
	if aerr := p.decode("taskIDList", &taskIDList); aerr != nil {
		return nil, aerr
	}
	n := max(len(idList), len(taskIDList))
	switch {
	case n == 0:
		return nil, errorf(ReplyError, ErrCodeInvalidParam,
			"idList and taskIDList are empty: name the jobs to kill")
	case n > maxKillJobs:
		return nil, errorf(ReplyError, ErrCodeInvalidParam,
			"killJobs names %d jobs, over the limit of %d: split the request", n, maxKillJobs)
	}
	ids := make([]string, n)
	for i := range ids {
		if i < len(idList) && idList[i] != "" {
			ids[i] = string(idList[i])
		} else if i < len(taskIDList) {
			ids[i] = string(taskIDList[i])
		}
	}
	return ids, nil
}

// jobIDItem is one element of idList or taskIDList: an execID or a taskID,
// sent as a JSON string or number.
type jobIDItem string

// UnmarshalJSON accepts a string or an integer.
func (id *jobIDItem) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*id = jobIDItem(s)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want an execID string or a taskID number, got %s", shorten(string(b), 40))
	}
	*id = jobIDItem(strconv.FormatInt(n, 10))
	return nil
}
