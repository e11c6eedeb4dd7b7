package entrance

import (
	"context"
	"fmt"
	"time"
)

// ProcessEnder is implemented by engines that run jobs as processes. A
// server that starts after a crash calls EndProcess for every process
// group its predecessor recorded for a job that was running.
type ProcessEnder interface {
	EndProcess(pgid int) error
}

// recover takes over the unfinished jobs of the store. Jobs that were
// running end Failed, and their recorded processes are ended. Then the
// jobs that had not started run again, oldest first.
func (s *Server) recover() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.limits.StoreTimeout)
	defer cancel()
	recs, err := s.store.UnfinishedJobs(ctx)
	if err != nil {
		return fmt.Errorf("recover jobs: %w", err)
	}
	var queued []*JobRecord
	for _, rec := range recs {
		if rec.Status == StatusRunning {
			s.failInterrupted(ctx, rec)
		} else {
			queued = append(queued, rec)
		}
	}
	for _, rec := range queued {
		s.restart(ctx, rec)
	}
	return nil
}

// restart runs again a job that had not started when the previous server
// stopped.
func (s *Server) restart(ctx context.Context, rec *JobRecord) {
	if _, known := s.engines[rec.Engine]; !known {
		s.failRecovered(ctx, rec, ErrCodeEngineUnknown,
			fmt.Sprintf("engine %q is not available after the server restarted", rec.Engine))
		return
	}
	// NOTE: the store does not keep a request's jobRunningTimeout label,
	// so a recovered job runs under Limits.JobTimeout.
	j, err := s.newJob(rec, 0)
	if err != nil {
		s.failRecovered(ctx, rec, ErrCodeInternal, err.Error())
		return
	}
	s.admission.mu.Lock()
	s.admission.counts[rec.User]++
	s.admission.mu.Unlock()
	s.logger.Info("job recovered", "execID", j.id.execID, "taskID", rec.TaskID,
		"status", string(rec.Status))
	s.startJob(j)
}

// failInterrupted ends a job that was running when the previous server
// stopped, and ends the processes it left behind.
func (s *Server) failInterrupted(ctx context.Context, rec *JobRecord) {
	if rec.Process > 0 {
		if ender, ok := s.engines[rec.Engine].(ProcessEnder); ok {
			if err := ender.EndProcess(rec.Process); err != nil {
				s.logger.Error("end process of interrupted job failed", "taskID", rec.TaskID,
					"pgid", rec.Process, "error", err)
			}
		} else {
			s.logger.Warn("interrupted job left a process that its engine cannot end",
				"taskID", rec.TaskID, "engine", rec.Engine, "pgid", rec.Process)
		}
		if err := s.store.SetProcess(ctx, rec.TaskID, 0); err != nil {
			s.logger.Error("clear process of interrupted job failed", "taskID", rec.TaskID, "error", err)
		}
	}
	s.failRecovered(ctx, rec, ErrCodeServerStopped,
		"the server stopped while the job was running")
}

func (s *Server) failRecovered(ctx context.Context, rec *JobRecord, code int, desc string) {
	line := LogLine{Number: rec.LogLines + 1, Level: LevelError, Text: desc}
	if err := s.store.AppendLog(ctx, rec.TaskID, []LogLine{line}); err != nil {
		s.logger.Error("store log line failed", "taskID", rec.TaskID, "error", err)
	}
	err := s.store.UpdateStatus(ctx, rec.TaskID, StatusUpdate{
		Status: StatusFailed, ErrCode: code, ErrDesc: desc, At: time.Now()})
	if err != nil {
		s.logger.Error("store status failed", "taskID", rec.TaskID, "error", err)
		return
	}
	s.logger.Warn("job failed on recovery", "taskID", rec.TaskID, "errCode", code, "error", desc)
}
