package entrance

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Causes of a job's cancellation; they decide its final status.
var (
	errKilled   = errors.New("killed by request")
	errTimeout  = errors.New("time limit exceeded")
	errShutdown = errors.New("server shut down")
	errRequeue  = errors.New("left for the next server start")
)

// testHookJobEnded, when set by a test, runs after a job's final status
// and before the job stops being live.
var testHookJobEnded func(taskID int64)

// job is a job while it is live in this server, from submission until its
// terminal status is stored and pushed.
type job struct {
	srv     *Server
	id      pushIdentity
	rec     *JobRecord
	engine  Engine
	timeout time.Duration
	ticket  *ticket // place in the scheduler

	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the job has ended

	// pubMu orders the pushes of the job and makes subscribing atomic
	// with respect to them.
	pubMu   sync.Mutex
	status  Status
	errCode int
	errDesc string
	ended   bool

	progress progressTracker
	log      logBuffer
	stored   atomic.Int64 // number of log lines stored and pushed
}

// newJob builds the live state of a stored job. timeout is the time
// limit the request set, 0 for none; Limits.JobTimeout caps it.
func (s *Server) newJob(rec *JobRecord, timeout time.Duration) (*job, error) {
	execID, err := FormatExecID(rec.Creator, rec.Engine, rec.Instance, rec.User, rec.TaskID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(s.jobsCtx)
	j := &job{
		srv:     s,
		id:      pushIdentity{execID: execID, taskID: rec.TaskID, tag: rec.Tag},
		rec:     rec,
		engine:  s.engines[rec.Engine],
		timeout: timeout,
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		status:  rec.Status,
	}
	if limit := s.limits.JobTimeout; j.timeout <= 0 || (limit > 0 && limit < j.timeout) {
		j.timeout = limit
	}
	j.log.init(j, rec.LogLines, s.limits)
	j.stored.Store(rec.LogLines)
	j.progress.fraction = rec.Progress
	j.progress.info = rec.ProgressInfo
	return j, nil
}

// startJob registers the job as live and runs it on a goroutine owned by
// the server. Once Shutdown has begun, the job is left as it is stored,
// so that the next server start runs it.
func (s *Server) startJob(j *job) {
	s.jobsMu.Lock()
	if s.jobsClosed {
		s.jobsMu.Unlock()
		s.release(j.rec.User)
		j.leave()
		return
	}
	s.jobs[j.id.taskID] = j
	s.wg.Add(1)
	s.jobsMu.Unlock()
	j.ticket = s.sched.enqueue(j)
	go func() {
		defer s.wg.Done()
		j.run()
	}()
}

// liveJob returns the live job with the taskID, or nil.
func (s *Server) liveJob(taskID int64) *job {
	s.jobsMu.Lock()
	defer s.jobsMu.Unlock()
	return s.jobs[taskID]
}

// run takes the job through its statuses. It owns the pump goroutine that
// stores and pushes log lines and progress.
func (j *job) run() {
	s := j.srv
	defer s.release(j.rec.User)
	defer close(j.done)
	defer func() {
		if testHookJobEnded != nil {
			testHookJobEnded(j.id.taskID)
		}
		s.jobsMu.Lock()
		delete(s.jobs, j.id.taskID)
		s.jobsMu.Unlock()
	}()

	j.setStatus(StatusInited, 0, "")
	spec, err := j.prepare()
	if err != nil {
		s.sched.abandon(j.ticket)
		j.finish(err)
		return
	}
	j.setStatus(StatusScheduled, 0, "")
	release, err := s.sched.wait(j.ticket)
	if errors.Is(err, errRequeue) || errors.Is(context.Cause(j.ctx), errRequeue) {
		j.leave()
		return
	}
	if err != nil {
		j.finish(err)
		return
	}
	defer release()

	j.setStatus(StatusRunning, 0, "")
	s.logger.Info("job started", "execID", j.id.execID, "taskID", j.id.taskID,
		"user", j.rec.User, "engine", j.rec.Engine)
	if j.timeout > 0 {
		t := time.AfterFunc(j.timeout, func() { j.cancel(errTimeout) })
		defer t.Stop()
	}
	j.log.startPump()
	err = j.runEngine(spec)
	j.finish(err)
}

// prepare substitutes the variables of the code and logs each
// substitution.
func (j *job) prepare() (*Job, error) {
	sub, err := SubstituteVariables(j.rec.Code, j.rec.RunType, j.rec.Params.Variable, time.Now())
	if err != nil {
		return nil, &JobError{Code: ErrCodeVariable, Desc: err.Error()}
	}
	for _, line := range sub.Log {
		j.Log(LevelInfo, line)
	}
	params := j.rec.Params
	params.Variable = sub.Variables
	return &Job{
		ExecID:  j.id.execID,
		TaskID:  j.id.taskID,
		User:    j.rec.User,
		Creator: j.rec.Creator,
		Engine:  j.rec.Engine,
		RunType: j.rec.RunType,
		Code:    sub.Code,
		Params:  params,
	}, nil
}

// runEngine calls the engine and turns a panic into an error, so that a
// faulty engine fails its job and not the server.
func (j *job) runEngine(spec *Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			j.srv.logger.Error("engine panicked", "execID", j.id.execID,
				"taskID", j.id.taskID, "panic", p)
			err = &JobError{Code: ErrCodeEngineFailed, Desc: "engine panicked: see the server log"}
		}
	}()
	return j.engine.Run(j.ctx, spec, j)
}

// finish stores and pushes the final status. A job cancelled by a kill,
// its time limit or a shutdown ends for that reason whatever the engine
// returned.
func (j *job) finish(err error) {
	status, code, desc := StatusSucceed, 0, ""
	switch cause := context.Cause(j.ctx); {
	case errors.Is(cause, errKilled):
		status, code, desc = StatusCancelled, ErrCodeKilled, "job killed by request"
	case errors.Is(cause, errTimeout):
		status, code, desc = StatusTimeout, ErrCodeTimeout,
			"job ran past its time limit of "+j.timeout.String()
	case errors.Is(cause, errShutdown):
		status, code, desc = StatusCancelled, ErrCodeShutdownCancel,
			"server shut down before the job finished"
	case err != nil:
		status = StatusFailed
		code, desc = asJobError(err)
	}
	j.log.close(desc) // a failure's reason ends the log, past any cap
	if status == StatusSucceed {
		j.progress.succeed()
		j.pushProgress()
	}
	j.setStatus(status, code, desc)
	j.cancel(nil)
	j.srv.logger.Info("job ended", "execID", j.id.execID, "taskID", j.id.taskID,
		"status", string(status), "errCode", code)
}

// leave ends a job that never started without a status change, so that it
// stays Inited or Scheduled in the store and the next server start runs
// it.
func (j *job) leave() {
	j.log.close("")
	j.pubMu.Lock()
	j.ended = true
	j.srv.hub.Forget(j.id.taskID)
	j.pubMu.Unlock()
	j.cancel(nil)
	j.srv.logger.Info("job left for the next start", "execID", j.id.execID, "taskID", j.id.taskID)
}

// kill cancels the job; it ends Cancelled.
func (j *job) kill() { j.cancel(errKilled) }

// setStatus stores a status change and pushes it. A change that does not
// move forward is ignored.
func (j *job) setStatus(status Status, code int, desc string) {
	j.pubMu.Lock()
	current := j.status
	j.pubMu.Unlock()
	if status.rank() < current.rank() || (status == current && status != StatusInited) {
		return
	}
	ctx, cancel := j.srv.storeContext()
	defer cancel()
	err := j.srv.store.UpdateStatus(ctx, j.id.taskID,
		StatusUpdate{Status: status, ErrCode: code, ErrDesc: desc, At: time.Now()})
	if err != nil {
		j.srv.logger.Error("store status failed", "execID", j.id.execID,
			"taskID", j.id.taskID, "status", string(status), "error", err)
	}

	j.pubMu.Lock()
	defer j.pubMu.Unlock()
	j.status, j.errCode, j.errDesc = status, code, desc
	f := j.statusFrame()
	j.srv.hub.Publish(f)
	if f.Last {
		j.ended = true
		j.srv.hub.Forget(j.id.taskID)
	}
}

// snapshotStatus returns the current status and error of the job.
func (j *job) snapshotStatus() (Status, int, string) {
	j.pubMu.Lock()
	defer j.pubMu.Unlock()
	return j.status, j.errCode, j.errDesc
}

// pushProgress stores and pushes the progress if it changed.
func (j *job) pushProgress() {
	fraction, info, changed := j.progress.take()
	if !changed {
		return
	}
	ctx, cancel := j.srv.storeContext()
	defer cancel()
	err := j.srv.store.SetProgress(ctx, j.id.taskID, ProgressUpdate{Progress: fraction, Info: info})
	if err != nil {
		j.srv.logger.Error("store progress failed", "execID", j.id.execID,
			"taskID", j.id.taskID, "error", err)
	}
	j.publish(encodeJobPush(j.id, "progress", &jobPush{Progress: &fraction, ProgressInfo: info}))
}

// publish pushes f unless the job has ended.
func (j *job) publish(f *Frame) {
	j.pubMu.Lock()
	defer j.pubMu.Unlock()
	if !j.ended {
		j.srv.hub.Publish(f)
	}
}

// subscribe subscribes conn to the pushes of the job, with its log
// cursor at next (0: keep the connection's cursor, or start at the next
// push). seen is the status that the request's reply carries, "" for a
// reply without one. A status change that the client would miss, because
// it came after the reply was built, is sent after the reply. When the job
// has ended, conn gets the stored lines from next on and the final status
// instead of a subscription.
func (j *job) subscribe(conn *wsConn, next int64, seen Status) {
	j.pubMu.Lock()
	defer j.pubMu.Unlock()
	sub := &subscription{job: j, next: next, stored: j.stored.Load(), ended: j.ended}
	if j.status != seen && (seen != "" || j.ended) {
		sub.status = j.statusFrame()
	}
	conn.follow(sub)
	if !j.ended {
		j.srv.hub.Subscribe(j.id.taskID, conn)
	}
}

// statusFrame encodes the current status as a push. The caller holds
// pubMu.
func (j *job) statusFrame() *Frame {
	f := encodeJobPush(j.id, "status",
		&jobPush{Status: j.status, ErrCode: j.errCode, ErrDesc: j.errDesc})
	f.Last = j.status.Terminal()
	return f
}
