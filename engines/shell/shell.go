// Package shell is an entrance engine that runs the code of a job as a
// POSIX shell script in a process group of its own. Where the kernel lets
// the server create one, each job also gets a PID namespace of its own.
//
// Each job gets a fresh working directory, a scrubbed environment and,
// when configured, resource limits set with ulimit. The environment holds
// only PATH (DefaultPath), LANG=C.UTF-8, HOME and PWD (the job directory),
// TMPDIR (a directory inside it) and what Options.Env and Options.SetEnv
// add. Lines the script
// writes to stdout become info log lines and the rows of one text result
// set. Lines it writes to stderr become error log lines. When the job
// ends, by itself or because its context is cancelled, every process left
// in its process group is killed and the working directory is removed.
// In a PID namespace, the processes that left the group (with setsid, or
// by forking twice) are killed too. See Options.PIDNamespace.
//
// The engine runs jobs on Linux only, because it waits for the shell with
// waitid(2). On other systems Run and KillProcessGroup return an error.
package shell

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goentrance/entrance"
)

// Defaults used when a field of Options is zero.
const (
	DefaultShell        = "sh"
	DefaultKillGrace    = 2 * time.Second
	DefaultMaxLineBytes = 64 << 10

	// DefaultPath is the PATH of every job unless Options.Env or
	// Options.SetEnv sets another one.
	DefaultPath = "/usr/local/bin:/usr/bin:/bin"
)

// wrapperShell runs the ulimit commands before it starts Options.Shell. It
// is a fixed POSIX sh, so that ulimit -f counts 512-byte blocks whatever
// Options.Shell is. bash 5.2 outside POSIX mode counts 1024-byte blocks.
const wrapperShell = "/bin/sh"

// fileSizeBlock is the unit of "ulimit -f" in a POSIX sh. dash 0.5.12 and
// bash 5.2 in POSIX mode both use 512 bytes.
const fileSizeBlock = 512

// Options configure an Engine. A nil *Options or a zero field means the
// documented default.
type Options struct {
	// Shell is the program that runs the script, looked up in the job's
	// PATH. Defaults to "sh". It is started with the path of the script
	// file as its only argument.
	Shell string

	// WorkDir is the parent directory of the per-job working directories.
	// Defaults to os.TempDir().
	WorkDir string

	// Env lists names of variables that are copied from the server's
	// environment into each job when the server has them set. Defaults
	// to none.
	Env []string

	// SetEnv holds fixed "NAME=value" pairs added to each job's
	// environment. They override PATH, LANG and the variables of Env,
	// but not HOME, PWD and TMPDIR, which always point into the job's
	// directory.
	SetEnv []string

	// KillGrace is the time between SIGTERM and SIGKILL when a job is
	// cancelled. Defaults to 2 seconds.
	KillGrace time.Duration

	// CPUSeconds limits the CPU time of each process of a job (ulimit -t).
	// A process that reaches it gets SIGXCPU or SIGKILL. Zero means no
	// limit.
	CPUSeconds int

	// FileSizeBytes limits the size of each file a job's processes write
	// (ulimit -f). It is rounded up to a multiple of 512 bytes. A process
	// that writes past it gets SIGXFSZ. Zero means no limit.
	FileSizeBytes int64

	// MaxProcesses limits the number of processes (ulimit -u, or -p in
	// dash). Zero means no limit.
	// NOTE: the kernel does not apply the limit to root. It counts all
	// processes of the real user ID that runs the server, not only those
	// of one job, unless the job has a user namespace of its own (see
	// PIDNamespace). Linux 5.14 and later then count the job's processes.
	MaxProcesses int

	// MaxLineBytes is the maximum length of a line of stdout or stderr.
	// A longer line keeps its first MaxLineBytes bytes, cut back to a
	// whole UTF-8 character, followed by " [truncated from N bytes]".
	// Defaults to 64 KiB.
	MaxLineBytes int

	// PIDNamespace selects whether each job runs in a new PID namespace,
	// on Linux only. Defaults to PIDNamespaceAuto. New panics on a value
	// other than "" and the PIDNamespace constants.
	//
	// In a PID namespace, a wrapper sh is PID 1 and runs Shell as its
	// child. When that shell exits or the job is killed, the wrapper
	// exits and the kernel kills every process left in the namespace,
	// including those that left the job's process group. $$ in the script
	// is then 2, and the wrapper reports a shell killed by signal N as
	// exit code 128+N (see ExitError).
	//
	// A server without CAP_SYS_ADMIN also creates a user namespace for
	// each job, which maps only its own uid and gid. In it, files of
	// other users show the overflow ids (usually named nobody and
	// nogroup), and set-user-ID programs owned by another user, such as
	// sudo, run without their privileges.
	//
	// NOTE: jobs see the server's /proc, because the engine does not give
	// them a mount namespace. ps lists the host's processes, and the pids
	// in /proc are not the pids that the job uses in kill or $!.
	PIDNamespace PIDNamespaceMode

	// Logger receives what an operator needs to know and a job's log
	// cannot show, such as a working directory that could not be
	// removed. Defaults to slog.Default().
	Logger *slog.Logger
}

// Engine runs jobs with a shell. It is safe for concurrent use, and its
// settings do not change after New.
type Engine struct {
	shell        string
	workDir      string
	env          []string
	setEnv       []string
	killGrace    time.Duration
	maxLineBytes int
	pidNamespace PIDNamespaceMode
	wrapper      string // replaced by the shell, for jobs without a namespace
	nsWrapper    string // stays as PID 1 of the job's namespace
	logger       *slog.Logger

	namespaceWarning sync.Once
}

var (
	_ entrance.Engine       = (*Engine)(nil)
	_ entrance.RunTyper     = (*Engine)(nil)
	_ entrance.ProcessEnder = (*Engine)(nil)
)

// New returns an Engine with the given options, or with all defaults when
// opts is nil.
// New panics when an entry of SetEnv has no '=', a name in Env contains
// one, or PIDNamespace has an unknown value, because such a configuration
// can never work. New does not start any process. The first Run finds out
// whether PID namespaces can be created.
func New(opts *Options) *Engine {
	if opts == nil {
		opts = &Options{}
	}
	e := &Engine{
		shell:        opts.Shell,
		workDir:      opts.WorkDir,
		env:          append([]string(nil), opts.Env...),
		setEnv:       append([]string(nil), opts.SetEnv...),
		killGrace:    opts.KillGrace,
		maxLineBytes: opts.MaxLineBytes,
		pidNamespace: opts.PIDNamespace,
		wrapper:      wrapperScript(opts, false),
		nsWrapper:    wrapperScript(opts, true),
		logger:       opts.Logger,
	}
	if e.shell == "" {
		e.shell = DefaultShell
	}
	if e.workDir == "" {
		e.workDir = os.TempDir()
	}
	if e.killGrace <= 0 {
		e.killGrace = DefaultKillGrace
	}
	if e.maxLineBytes <= 0 {
		e.maxLineBytes = DefaultMaxLineBytes
	}
	if e.logger == nil {
		e.logger = slog.Default()
	}
	if e.pidNamespace == "" {
		e.pidNamespace = PIDNamespaceAuto
	}

	if !validMode(e.pidNamespace) {
		panic(fmt.Sprintf("shell: invalid Options.PIDNamespace %q: want auto, on or off", e.pidNamespace))
	}
	for _, name := range e.env {
		if name == "" || strings.Contains(name, "=") {
			panic(fmt.Sprintf("shell: invalid name %q in Options.Env", name))
		}
	}
	for _, kv := range e.setEnv {
		if name, _, ok := strings.Cut(kv, "="); !ok || name == "" {
			panic(fmt.Sprintf("shell: invalid entry %q in Options.SetEnv: want NAME=value", kv))
		}
	}

	return e
}

// DefaultRunType returns "sh". The engine runs every job with
// Options.Shell whatever its runType.
func (e *Engine) DefaultRunType() string { return "sh" }

// ExitError is the cause of the *entrance.JobError that Run returns when
// the shell exits with a non-zero code or is killed by a signal. Use
// errors.As to get it.
//
// NOTE: in a PID namespace, the wrapper that runs the shell cannot tell a
// shell killed by signal N from one that called exit with 128+N, so Code
// is then 128+N and Signal is zero. Signal is set only when the wrapper
// itself was killed, for example by KillProcessGroup or the OOM killer.
type ExitError struct {
	// Code is the exit code, or -1 when a signal ended the shell.
	Code int

	// Signal is the signal that ended the shell, or zero.
	Signal syscall.Signal
}

func (e *ExitError) Error() string {
	if e.Signal != 0 {
		return fmt.Sprintf("killed by signal %d (%v)", int(e.Signal), e.Signal)
	}
	return "exit code " + strconv.Itoa(e.Code)
}

// jobError wraps an ExitError in the JobError a failed job reports.
func jobError(ee *ExitError) error {
	desc := fmt.Sprintf("shell exited with code %d", ee.Code)
	if ee.Signal != 0 {
		desc = fmt.Sprintf("shell killed by signal %d (%v)", int(ee.Signal), ee.Signal)
	}
	return &entrance.JobError{Code: entrance.ErrCodeEngineFailed, Desc: desc, Err: ee}
}

// Run runs job.Code as a script and returns when the shell has exited, its
// process group has been sent SIGKILL and its output has been read to EOF.
// A non-zero exit returns an *entrance.JobError that wraps an *ExitError.
// When ctx is cancelled, Run ends the process group (SIGTERM, then SIGKILL
// after Options.KillGrace) and returns an error that wraps ctx.Err().
// With PIDNamespaceOn, Run returns an error without starting the job when
// the server cannot create a PID namespace.
//
// In a PID namespace, every process of the job has ended and been reaped
// when Run returns. Without one, background children of the shell are
// reparented to the init process when the shell exits, so it is init that
// reaps them after the kill. Until it does, they stay in the process table
// as zombies of the group. A process that left the group survives the
// kill, and when it keeps a pipe open, reading stops 2 seconds after the
// kill.
func (e *Engine) Run(ctx context.Context, job *entrance.Job, out entrance.Output) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("run shell: %w", err)
	}

	setup, err := e.namespace()
	if err != nil {
		return fmt.Errorf("run shell: %w", err)
	}

	dir, err := e.makeJobDir(job)
	if err != nil {
		return err
	}
	defer e.removeJobDir(dir, job)

	script, err := writeScript(dir, job.Code)
	if err != nil {
		return err
	}

	p, err := startProcess(e.command(dir, script, setup != nil), setup)
	if err != nil {
		return fmt.Errorf("start shell: %w", err)
	}
	out.Process(p.pgid)
	defer out.Process(0)

	return e.finish(ctx, job, out, p)
}

// finish reads the output of a started process, waits for it and turns its
// end into the result of Run.
func (e *Engine) finish(ctx context.Context, job *entrance.Job, out entrance.Output, p *process) error {
	r := newOutputReader(ctx, out, e.maxLineBytes)
	r.start(p.stdout, p.stderr)

	state, cancelled, waitErr := p.wait(ctx, e.killGrace)
	if err := r.drain(p.stdout, p.stderr); err != nil {
		e.logger.Warn("shell output not read to the end",
			"exec_id", job.ExecID, "task_id", job.TaskID, "err", err)
	}
	resultErr := r.closeResults(context.WithoutCancel(ctx))

	switch {
	case cancelled:
		return fmt.Errorf("run shell: %w", ctx.Err())
	case waitErr != nil:
		return fmt.Errorf("wait for shell: %w", waitErr)
	}
	if ee := exitStatus(state); ee != nil {
		return jobError(ee)
	}
	return resultErr
}

// makeJobDir creates the job's working directory (mode 0700) with a tmp
// directory inside, and returns its absolute path.
func (e *Engine) makeJobDir(job *entrance.Job) (string, error) {
	dir, err := os.MkdirTemp(e.workDir, "task"+strconv.FormatInt(job.TaskID, 10)+"-*")
	if err != nil {
		return "", fmt.Errorf("create job directory: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("create job directory: %w", err)
	}
	if err := os.Mkdir(filepath.Join(abs, "tmp"), 0o700); err != nil {
		os.RemoveAll(abs)
		return "", fmt.Errorf("create job directory: %w", err)
	}
	return abs, nil
}

// removeJobDir removes the job's directory. A script may have taken the
// write or search permission from one of its subdirectories, so a failed
// removal gives them back and tries again.
func (e *Engine) removeJobDir(dir string, job *entrance.Job) {
	if os.RemoveAll(dir) == nil {
		return
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			os.Chmod(path, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		e.logger.Error("remove shell job directory failed",
			"exec_id", job.ExecID, "task_id", job.TaskID, "dir", dir, "err", err)
	}
}

// writeScript stores the code in the job directory and returns its path.
func writeScript(dir, code string) (string, error) {
	path := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(path, []byte(code), 0o600); err != nil {
		return "", fmt.Errorf("write script: %w", err)
	}
	return path, nil
}

// command builds the wrapper command that sets the limits and then runs
// Options.Shell on the script.
func (e *Engine) command(dir, script string, namespaced bool) *exec.Cmd {
	wrapper := e.wrapper
	if namespaced {
		wrapper = e.nsWrapper
	}
	cmd := exec.Command(wrapperShell, "-c", wrapper, e.shell, script)
	cmd.Dir = dir
	cmd.Env = e.environ(dir)
	return cmd
}

// wrapperScript returns the sh -c script that applies the limits and runs
// the shell ($0) on the script ($1). A ulimit that fails ends the job with
// sh's message on stderr.
//
// Outside a namespace the wrapper replaces itself with the shell. In a
// namespace it runs the shell as a child and stays as PID 1, because the
// kernel delivers to PID 1 only the signals it has a handler for, and
// SIGKILL and SIGSTOP that come from the kernel or from outside the
// namespace. A script shell at PID 1 would survive its own "kill $$", the
// engine's SIGTERM and SIGXFSZ. The trailing exit keeps sh from replacing
// itself with its last command, as bash 5.2 does when it is /bin/sh.
func wrapperScript(opts *Options, namespaced bool) string {
	var steps []string
	if opts.CPUSeconds > 0 {
		steps = append(steps, "ulimit -t "+strconv.Itoa(opts.CPUSeconds))
	}
	if opts.FileSizeBytes > 0 {
		blocks := (opts.FileSizeBytes + fileSizeBlock - 1) / fileSizeBlock
		steps = append(steps, "ulimit -f "+strconv.FormatInt(blocks, 10))
	}
	if opts.MaxProcesses > 0 {
		// bash 5.2 takes -u, but dash 0.5.12 rejects it and takes -p.
		n := strconv.Itoa(opts.MaxProcesses)
		steps = append(steps, "{ ulimit -u "+n+" 2>/dev/null || ulimit -p "+n+"; }")
	}
	if namespaced {
		steps = append(steps, `"$0" "$1"; exit $?`)
	} else {
		steps = append(steps, `exec "$0" "$1"`)
	}
	return strings.Join(steps, " && ")
}

// environ builds the job's environment. os/exec keeps the last entry of a
// name, so the order is the precedence: defaults, Options.Env,
// Options.SetEnv, then the variables that point into the job directory.
func (e *Engine) environ(dir string) []string {
	env := []string{"PATH=" + DefaultPath, "LANG=C.UTF-8"}
	for _, name := range e.env {
		if value, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+value)
		}
	}
	env = append(env, e.setEnv...)
	env = append(env,
		"HOME="+dir,
		"PWD="+dir,
		"TMPDIR="+filepath.Join(dir, "tmp"),
	)
	return env
}

// EndProcess ends a process group that a previous server recorded for a
// job that was running when it stopped, with KillProcessGroup. When the
// group's leader is the first process of the job's PID namespace, that
// kills every process of the namespace. It implements
// entrance.ProcessEnder.
func (e *Engine) EndProcess(pgid int) error { return KillProcessGroup(pgid) }
